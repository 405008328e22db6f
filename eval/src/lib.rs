//! pairalign-eval: how good a tokenizer is for search, measured the way the paper does
//! (shared/DESIGN.md section 1; issue 7), for any [`Tokenizer`](pairalign_models::Tokenizer)
//! and for a dense embedding as the baseline. Six protocols, each a module with its options,
//! its report and `outputs` (a markdown table and SVG plots):
//!
//! - [`retrieval`]: clips of 3 s in two views; view 1 of each clip queries a database of view 0
//!   of all clips, ranked by normalized edit distance (NED; cosine for a dense subject).
//! - [`consistency`]: NED between the two views of a clip against unrelated clips, token rate,
//!   length difference between views, vocabulary use.
//! - [`compaction`]: tokens and bytes per hour of audio in an engine database, and the
//!   reduction against VQ.
//! - [`sweep`]: a 3 s window shifted in 100 ms steps; distance to the unshifted window's
//!   string and token count against shift.
//! - [`locate`]: modified 3 s excerpts of long recordings searched in a database of the
//!   recordings: source found first, start-time error.
//! - [`content`]: the same words said by different voices: every clip queries the clips of the
//!   other voices; relevant are those saying its words (issue 22, part 3).
//!
//! The data come from a [`Source`]: a feature cache of paired views or a corpus (folder,
//! LibriSpeech, TIMIT, synthetic manifest). Ties in rankings are counted by expectation
//! ([`metrics`]): a tokenizer that gives every clip the same string scores chance.
//!
//! # JSON keys
//!
//! Every report serializes to one flat JSON object (`pairalign eval ... --json` prints one per
//! subject and line; `--out DIR` writes them as an array in `results.json`). Keys are stable;
//! a figure that does not apply to a subject is `null`. Shares are in 0..1, reductions in
//! percent, times in seconds unless the key says `_ms`.
//!
//! - All: `name` (as given: `vq`, a weights folder, `dense`), `tokenizer` (its id, `dense:<id>`
//!   for an embedding), `kind` (`tokens` or `dense`), `weights_hash`, `protocol`, `wall_s`.
//! - retrieval: `clips`, `seconds` (audio per view), `tokens_per_s`, `score` (`ned` or
//!   `cosine`), `p_at_1`, `mrr`, `map`, `recall_at_10`.
//! - consistency: `clips`, `seconds`, `unrelated_pairs`, `frame_rate_hz`, `tokens_per_s`,
//!   `perplexity`, `vocab_used`, `vocab_size`, `length_diff_views` (median relative length
//!   difference between views), `length_diff_views_p90`, `ned_views`, `ned_views_median`,
//!   `ned_unrelated`, `ned_unrelated_median` (means unless `_median`), `cos_views`,
//!   `cos_views_median`, `cos_unrelated`, `cos_unrelated_median` (dense), `separation`
//!   (chance that a same-clip pair is closer than an unrelated pair).
//! - compaction: `reference` (the VQ row the reductions are against), `recordings`, `hours`,
//!   `tokens`, `tokens_per_s`, `tokens_per_hour`, `bytes`, `bytes_per_hour`,
//!   `token_bytes_per_hour`, `time_bytes_per_hour`, `posting_bytes_per_hour`,
//!   `other_bytes_per_hour`, `archive_reduction_vs_vq` (tokens), `bytes_reduction_vs_vq`.
//! - sweep: `sweeps`, `window_s`, `shift_ms` (array), `overlap` (array), `score`, `distance`
//!   (array), `distance_at_100ms`, `distance_at_500ms`, `distance_at_1000ms`, `edit_distance`
//!   (array), `tokens` (array: tokens per window), `tokens_per_s`, `length_cv`.
//! - locate: `recordings`, `hours`, `queries`, `found_first`, `found_in_top`, `located` (first
//!   and within 300 ms), `start_error_ms_median`, `start_error_ms_p90`, `search_ms_median`.
//! - content: `set`, `silence` (`keep` or `trim`), `match` (`global` or `infix`), `clips`,
//!   `groups`, `voices`, `seconds_per_clip`, `tokens_per_clip`, `queries`, `unanswerable`
//!   (clips whose words no other voice says), `candidates` (per query, mean), `p_at_1`, `mrr`
//!   (of the first relevant candidate), `p_at_10` (relevant among the first 10, over 10),
//!   `chance_p_at_1`.

pub mod compaction;
pub mod consistency;
pub mod content;
mod error;
pub mod locate;
pub mod metrics;
mod output;
mod pairs;
mod plot;
pub mod retrieval;
pub mod source;
mod subject;
pub mod sweep;
mod windows;

pub use compaction::{compaction, CompactionOptions, CompactionReport};
pub use consistency::{consistency, Consistency, ConsistencyOptions, ConsistencyReport};
pub use content::{
    content, ContentClip, ContentMetrics, ContentOptions, ContentReport, ContentSet, Match, Silence,
};
pub use error::{Error, Result};
pub use locate::{locate, Condition, LocateOptions, LocateReport, CONDITIONS};
pub use metrics::{
    average_precision, infix_ned, ned, separation, GroupRankStats, RankStats, RetrievalMetrics,
    Summary,
};
pub use output::Outputs;
pub use retrieval::{retrieval, RetrievalReport};
pub use source::{Layout, PairedViews, Recording, Source, ViewOptions, DEFAULT_VIEW_SPACE};
pub use subject::{
    CompactedVq, Embedder, Kind, Model, PooledEncoder, Subject, SubjectInfo, SubjectName,
};
pub use sweep::{sweep, SweepOptions, SweepReport};
pub use windows::tokenize_recordings;
