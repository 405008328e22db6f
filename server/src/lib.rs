//! pairalign-server: the axum HTTP API over query and indexer (shared/DESIGN.md section 8). Filled in by issue 6.
//!
//! No code yet; this crate exists so that the workspace has its final shape and
//! dependencies point the way shared/DESIGN.md section 2 says.
