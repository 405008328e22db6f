//! pairalign-python: PairAlign Search as the Python module `pairalign` (PyO3, abi3 for
//! CPython 3.8 and later; built by maturin from `pyproject.toml`). It wraps the facade an
//! application embeds ([`pairalign_archive::Archive`]) as `pairalign.Archive`, and
//! `pairalign.tokenize`; errors become exceptions under `pairalign.Error` with the Rust error's
//! message; every call that does work releases the GIL. `pairalign.pyi` holds the types,
//! `tests/` the pytest suite (`tests/pytest.rs` runs it under `cargo test`).

mod archive;
mod convert;
mod error;
mod read;
mod reader;
mod shards;
mod tokenize;

use pyo3::prelude::*;

pub use archive::PyArchive;
pub use error::{Error, Kind, Result};

/// The `pairalign` extension module (`pairalign.pairalign`, re-exported by the package's
/// `__init__.py`).
#[pymodule]
fn pairalign(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<PyArchive>()?;
    module.add_class::<reader::PyReader>()?;
    module.add_class::<tokenize::PyTokenizer>()?;
    module.add_class::<tokenize::PyQuery>()?;
    module.add_class::<shards::PyShardWriter>()?;
    module.add_function(wrap_pyfunction!(tokenize::tokenize, module)?)?;
    module.add_function(wrap_pyfunction!(tokenize::decode, module)?)?;
    module.add_function(wrap_pyfunction!(shards::shard_of, module)?)?;
    module.add_function(wrap_pyfunction!(shards::shard_dirs, module)?)?;
    for (name, class) in error::exceptions(py)?.named() {
        module.add(name, class.bind(py))?;
    }
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add("DEFAULT_TOKENIZER", pairalign_models::shipped::DEFAULT)?;
    module.add("CUDA", cfg!(feature = "cuda"))?;
    Ok(())
}
