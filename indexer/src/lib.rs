//! pairalign-indexer: walking archives, windowing audio, batched tokenization, writing segments and the metadata catalog, resumable jobs (shared/DESIGN.md section 3). Filled in by issue 6.
//!
//! No code yet; this crate exists so that the workspace has its final shape and
//! dependencies point the way shared/DESIGN.md section 2 says.
