//! What is evaluated: a tokenizer (token strings, compared by normalized edit distance) or a
//! dense embedding (one vector per clip, compared by cosine similarity; the baseline the paper
//! sets against token strings); and the names that select one ([`SubjectName`]: `vq`, a
//! weights folder, `dense:DIR`, `vq-targets@RATE:DIR`).

use std::fmt;

use pairalign_models::vq::CODE_FRAME_MS;
use pairalign_models::{
    AnyTokenizer, PairAlignConfig, TokenString, Tokenizer, TokenizerKind, VqTokenizer,
};
use pairalign_train::pairalign::vq_targets;
use serde::Serialize;

use crate::{Error, Result};

/// A dense embedding of clips: one vector per clip, compared by cosine similarity.
pub trait Embedder {
    /// Name of the embedding, e.g. `dense:vq`.
    fn id(&self) -> String;

    /// Hex digest of the weights it runs with.
    fn weights_hash(&self) -> &str;

    /// Length of each vector.
    fn dim(&self) -> usize;

    /// One vector per clip of a batch of log-mels (each row-major `frames x N_MELS`, as the
    /// feature cache and `pairalign_datasets::mel::LogMel` give them).
    fn embed_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<Vec<f32>>>;
}

/// The dense baseline of a VQ tokenizer: its encoder's output before quantization, averaged
/// over the clip's 50 Hz frames ([`VqTokenizer::pooled_embeddings`]).
#[derive(Debug)]
pub struct PooledEncoder(pub VqTokenizer);

impl Embedder for PooledEncoder {
    fn id(&self) -> String {
        format!("dense:{}", self.0.id())
    }
    fn weights_hash(&self) -> &str {
        self.0.weights_hash()
    }
    fn dim(&self) -> usize {
        self.0.config().code_dim
    }
    fn embed_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<Vec<f32>>> {
        self.0.pooled_embeddings(mels)
    }
}

/// VQ frame codes compacted to a token rate exactly as PairAlign's VQ-derived training targets
/// are ([`pairalign_train::pairalign::vq_targets`]): the strings the PairAlign decoder learns
/// to emit in its bridge stage, evaluated as a tokenizer of their own (the `vq-targets` subject
/// of `pairalign eval`). What they keep of VQ's retrieval is what imitating them can reach.
#[derive(Debug)]
pub struct CompactedVq {
    vq: VqTokenizer,
    token_rate: f64,
    id: String,
    mel: pairalign_datasets::mel::LogMel,
}

impl CompactedVq {
    /// `vq`'s codes compacted to `token_rate` tokens per second.
    pub fn new(vq: VqTokenizer, token_rate: f64) -> CompactedVq {
        let id = format!("{}-targets@{token_rate}", vq.id());
        CompactedVq {
            vq,
            token_rate,
            id,
            mel: pairalign_datasets::mel::LogMel::new(),
        }
    }
}

impl Tokenizer for CompactedVq {
    fn id(&self) -> &str {
        &self.id
    }

    fn weights_hash(&self) -> &str {
        self.vq.weights_hash()
    }

    fn vocab_size(&self) -> u32 {
        self.vq.vocab_size()
    }

    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        let mels: Vec<Vec<f32>> = batch.iter().map(|w| self.mel.compute(w)).collect();
        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
        self.tokenize_mels(&refs)
    }

    fn tokenize_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(self
            .vq
            .frame_codes(mels)?
            .iter()
            .map(|codes| vq_targets(codes, self.token_rate))
            .collect())
    }
}

/// The model behind a [`Subject`].
pub enum Model {
    /// Token strings, compared by normalized edit distance.
    Tokens(Box<dyn Tokenizer>),
    /// Vectors, compared by cosine similarity.
    Dense(Box<dyn Embedder>),
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Model::Tokens(t) => write!(f, "Tokens({})", t.id()),
            Model::Dense(e) => write!(f, "Dense({})", e.id()),
        }
    }
}

/// One thing to evaluate, under the name the user gave it.
pub struct Subject {
    /// The name on the command line (`vq`, a weights folder, `dense`).
    pub name: String,
    /// The model.
    pub model: Model,
    /// Frames per second before repeats collapse, where the tokenizer has frames (VQ: 50).
    pub frame_rate_hz: Option<f64>,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("Subject")
            .field("name", &info.name)
            .field("tokenizer", &info.tokenizer)
            .field("kind", &info.kind)
            .finish_non_exhaustive()
    }
}

/// Whether a subject gives token strings or vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Token strings.
    Tokens,
    /// A dense embedding.
    Dense,
}

/// The keys every report starts with: which subject it is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubjectInfo {
    /// The name the user gave (`vq`, a folder, `dense`).
    pub name: String,
    /// The tokenizer's id (`vq`), or `dense:<id>` for an embedding.
    pub tokenizer: String,
    /// `tokens` or `dense`.
    pub kind: Kind,
    /// Hex digest of the weights.
    pub weights_hash: String,
}

impl Subject {
    /// A tokenizer under `name`.
    pub fn tokens(name: impl Into<String>, tokenizer: Box<dyn Tokenizer>) -> Self {
        Subject {
            name: name.into(),
            model: Model::Tokens(tokenizer),
            frame_rate_hz: None,
        }
    }

    /// A dense embedding under `name`.
    pub fn dense(name: impl Into<String>, embedder: Box<dyn Embedder>) -> Self {
        Subject {
            name: name.into(),
            model: Model::Dense(embedder),
            frame_rate_hz: None,
        }
    }

    /// Sets the frame rate reported for a frame-synchronous tokenizer.
    pub fn with_frame_rate(mut self, hz: f64) -> Self {
        self.frame_rate_hz = Some(hz);
        self
    }

    /// The tokenizer, for a token subject.
    pub fn tokenizer(&self) -> Option<&dyn Tokenizer> {
        match &self.model {
            Model::Tokens(t) => Some(t.as_ref()),
            Model::Dense(_) => None,
        }
    }

    /// Which subject this is, for the reports.
    pub fn info(&self) -> SubjectInfo {
        let (tokenizer, kind, weights_hash) = match &self.model {
            Model::Tokens(t) => (t.id().to_string(), Kind::Tokens, t.weights_hash()),
            Model::Dense(e) => (e.id(), Kind::Dense, e.weights_hash()),
        };
        SubjectInfo {
            name: self.name.clone(),
            tokenizer,
            kind,
            weights_hash: weights_hash.to_string(),
        }
    }
}

/// A subject as named on the command line (`pairalign eval --tokenizer NAME`): the language
/// of subject names, parsed before any weights are loaded.
#[derive(Clone, Debug, PartialEq)]
pub enum SubjectName {
    /// A tokenizer as `AnyTokenizer::open` takes it: `vq`, `vq-v2`, `pairalign`,
    /// `pairalign-v2`, `pairalign-v3` or a weights folder of either kind.
    Tokenizer(String),
    /// `dense` or `dense:DIR`: the mean-pooled encoder output of the shipped VQ or of the VQ
    /// weights in `DIR` ([`PooledEncoder`], the dense baseline).
    Dense {
        /// The VQ tokenizer whose encoder is pooled.
        weights: String,
    },
    /// `vq-targets[@RATE][:DIR]`: VQ codes compacted to `RATE` tokens/s (default: PairAlign's
    /// token rate, 12.7) as PairAlign's VQ-derived training targets are ([`CompactedVq`]).
    VqTargets {
        /// Tokens per second, in (0, 50].
        rate: f64,
        /// The VQ tokenizer whose codes are compacted (`vq` by default).
        weights: String,
    },
}

impl SubjectName {
    /// Reads a subject name; an error for a malformed `vq-targets` name.
    pub fn parse(name: &str) -> Result<SubjectName> {
        if let Some(rest) = name.strip_prefix("vq-targets") {
            let (rate, weights) = rest.split_once(':').unwrap_or((rest, "vq"));
            let rate = match rate.strip_prefix('@') {
                Some(r) => r
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0 && *r <= 50.0)
                    .ok_or_else(|| {
                        Error::BadSubject(format!("{name}: the rate after @ is 0 to 50 tokens/s"))
                    })?,
                None if rate.is_empty() => PairAlignConfig::default().token_rate,
                None => {
                    return Err(Error::BadSubject(format!(
                        "{name}: expected vq-targets[@RATE][:WEIGHTS]"
                    )))
                }
            };
            return Ok(SubjectName::VqTargets {
                rate,
                weights: weights.to_string(),
            });
        }
        Ok(match name.strip_prefix("dense") {
            Some("") => SubjectName::Dense {
                weights: "vq".into(),
            },
            Some(rest) if rest.starts_with(':') => SubjectName::Dense {
                weights: rest[1..].to_string(),
            },
            _ => SubjectName::Tokenizer(name.to_string()),
        })
    }

    /// The tokenizer to open for this subject (a shipped name or a weights folder).
    pub fn weights(&self) -> &str {
        match self {
            SubjectName::Tokenizer(name) => name,
            SubjectName::Dense { weights } | SubjectName::VqTargets { weights, .. } => weights,
        }
    }

    /// The subject, under `name` (as the user gave it), over `tokenizer` (opened from
    /// [`SubjectName::weights`]). A VQ tokenizer evaluated as itself reports its frame rate;
    /// the dense baseline and `vq-targets` need VQ weights.
    pub fn subject(&self, name: &str, tokenizer: AnyTokenizer) -> Result<Subject> {
        let needs_vq = |what: &str| {
            Error::BadSubject(format!(
                "{what} needs VQ weights; {} is not",
                self.weights()
            ))
        };
        Ok(match self {
            SubjectName::Tokenizer(_) => {
                let frames = tokenizer.kind() == TokenizerKind::Vq;
                let subject = Subject::tokens(name, Box::new(tokenizer));
                if frames {
                    subject.with_frame_rate(1000.0 / f64::from(CODE_FRAME_MS))
                } else {
                    subject
                }
            }
            SubjectName::Dense { .. } => {
                let vq = tokenizer
                    .into_vq()
                    .ok_or_else(|| needs_vq("the dense baseline"))?;
                Subject::dense(name, Box::new(PooledEncoder(vq)))
            }
            SubjectName::VqTargets { rate, .. } => {
                let vq = tokenizer.into_vq().ok_or_else(|| needs_vq("vq-targets"))?;
                Subject::tokens(name, Box::new(CompactedVq::new(vq, *rate)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_names_parse() {
        let parse = |name: &str| SubjectName::parse(name).unwrap();
        assert_eq!(parse("vq"), SubjectName::Tokenizer("vq".into()));
        assert_eq!(parse("runs/pa"), SubjectName::Tokenizer("runs/pa".into()));
        // A folder whose name starts with `dense` but has no colon is a tokenizer folder.
        assert_eq!(parse("denser"), SubjectName::Tokenizer("denser".into()));
        assert_eq!(
            parse("dense"),
            SubjectName::Dense {
                weights: "vq".into()
            }
        );
        assert_eq!(parse("dense:runs/vq").weights(), "runs/vq");
        let default_rate = PairAlignConfig::default().token_rate;
        assert_eq!(
            parse("vq-targets"),
            SubjectName::VqTargets {
                rate: default_rate,
                weights: "vq".into()
            }
        );
        assert_eq!(
            parse("vq-targets@25:runs/vq"),
            SubjectName::VqTargets {
                rate: 25.0,
                weights: "runs/vq".into()
            }
        );
        assert_eq!(parse("vq-targets:vq-v2").weights(), "vq-v2");
        for bad in [
            "vq-targets@0",
            "vq-targets@51",
            "vq-targets@x:vq",
            "vq-targets12",
        ] {
            let err = SubjectName::parse(bad).unwrap_err();
            assert!(matches!(err, Error::BadSubject(_)), "{bad}: {err}");
            assert!(err.to_string().starts_with(bad), "{err}");
        }
    }
}
