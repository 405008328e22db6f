//! pairalign-query: clip -> tokens -> candidates -> verification -> hits: the library API a media asset manager embeds (shared/DESIGN.md section 5). Filled in by issue 6.
//!
//! No code yet; this crate exists so that the workspace has its final shape and
//! dependencies point the way shared/DESIGN.md section 2 says.
