//! Both views of every clip, encoded by one subject: token strings or vectors, and the distance
//! between a query (view 1 of a clip) and a database item (view 0 of a clip) that retrieval and
//! consistency rank by.

use pairalign_engine::Symbol;
use pairalign_models::TokenString;

use crate::metrics::{cosine, ned, ned_row};
use crate::source::PairedViews;
use crate::subject::{Model, Subject};
use crate::Result;

/// Clips per model call.
const CLIPS_PER_BATCH: usize = 64;

/// View 0 (`a`, the database) and view 1 (`b`, the queries) of every clip, encoded.
pub(crate) enum Encoded {
    /// Token strings, compared by normalized edit distance.
    Tokens {
        a: Vec<TokenString>,
        b: Vec<TokenString>,
        /// More strings of each query beside `b`'s (`[variant][clip]`,
        /// `Tokenizer::tokenize_mels_variants`): retrieval ranks by the best of them.
        b_more: Vec<Vec<TokenString>>,
    },
    /// Vectors, compared by cosine distance (1 - cosine similarity).
    Dense { a: Vec<Vec<f32>>, b: Vec<Vec<f32>> },
}

/// `f` over view `v` of every clip, [`CLIPS_PER_BATCH`] clips per call.
fn per_batch<T>(
    views: &PairedViews,
    v: usize,
    f: impl Fn(&[&[f32]]) -> pairalign_models::Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mels = views.mels(v);
    let mut out = Vec::with_capacity(mels.len());
    for chunk in mels.chunks(CLIPS_PER_BATCH) {
        let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        out.extend(f(&refs)?);
    }
    Ok(out)
}

impl Encoded {
    /// Encodes both views of `views` with `subject`.
    pub(crate) fn new(subject: &Subject, views: &PairedViews) -> Result<Encoded> {
        Ok(match &subject.model {
            Model::Tokens(t) => {
                // [clip][variant], then [variant][clip].
                let per_clip = per_batch(views, 1, |m| {
                    let variants = t.tokenize_mels_variants(m)?;
                    Ok((0..m.len())
                        .map(|c| variants.iter().map(|v| v[c].clone()).collect::<Vec<_>>())
                        .collect())
                })?;
                let variants = per_clip.first().map_or(1, Vec::len);
                let mut by_variant = vec![Vec::with_capacity(per_clip.len()); variants];
                for clip in per_clip {
                    for (v, s) in clip.into_iter().enumerate() {
                        by_variant[v].push(s);
                    }
                }
                let b = by_variant.remove(0);
                Encoded::Tokens {
                    a: per_batch(views, 0, |m| t.tokenize_mels(m))?,
                    b,
                    b_more: by_variant,
                }
            }
            Model::Dense(e) => Encoded::Dense {
                a: per_batch(views, 0, |m| e.embed_mels(m))?,
                b: per_batch(views, 1, |m| e.embed_mels(m))?,
            },
        })
    }

    /// Clips encoded.
    pub(crate) fn len(&self) -> usize {
        match self {
            Encoded::Tokens { a, .. } => a.len(),
            Encoded::Dense { a, .. } => a.len(),
        }
    }

    /// `score`: what the distances are.
    pub(crate) fn score(&self) -> &'static str {
        match self {
            Encoded::Tokens { .. } => "ned",
            Encoded::Dense { .. } => "cosine",
        }
    }

    /// Distances from query `i` (view 1) to view 0 of every clip.
    pub(crate) fn row(&self, i: usize) -> Vec<f64> {
        match self {
            Encoded::Tokens { a, b, b_more } => {
                let texts: Vec<&[Symbol]> = a.iter().map(|ts| ts.tokens.as_slice()).collect();
                let mut row = ned_row(&b[i].tokens, &texts);
                for more in b_more {
                    for (d, e) in row.iter_mut().zip(ned_row(&more[i].tokens, &texts)) {
                        *d = d.min(e);
                    }
                }
                row
            }
            Encoded::Dense { a, b } => a.iter().map(|x| 1.0 - cosine(&b[i], x)).collect(),
        }
    }

    /// Distance from query `i` (view 1) to view 0 of clip `j`.
    pub(crate) fn distance(&self, i: usize, j: usize) -> f64 {
        match self {
            Encoded::Tokens { a, b, .. } => ned(&b[i].tokens, &a[j].tokens),
            Encoded::Dense { a, b } => 1.0 - cosine(&b[i], &a[j]),
        }
    }

    /// The token strings, for a token subject.
    pub(crate) fn tokens(&self) -> Option<(&[TokenString], &[TokenString])> {
        match self {
            Encoded::Tokens { a, b, .. } => Some((a, b)),
            Encoded::Dense { .. } => None,
        }
    }
}
