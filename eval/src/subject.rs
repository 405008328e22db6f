//! What is evaluated: a tokenizer (token strings, compared by normalized edit distance) or a
//! dense embedding (one vector per clip, compared by cosine similarity; the baseline the paper
//! sets against token strings).

use std::fmt;

use pairalign_models::pairalign::vq_targets;
use pairalign_models::{TokenString, Tokenizer, VqTokenizer};
use serde::Serialize;

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
/// are ([`pairalign_models::pairalign::vq_targets`]): the strings the PairAlign decoder learns
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
