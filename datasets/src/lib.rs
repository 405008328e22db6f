//! pairalign-datasets: decoding (symphonia), resampling (rubato), 80-bin log-mel, corpus readers, synthetic multi-voice speech, views and the feature cache (shared/DESIGN.md sections 3, 7). Filled in by issue 4.
//!
//! No code yet; this crate exists so that the workspace has its final shape and
//! dependencies point the way shared/DESIGN.md section 2 says.
