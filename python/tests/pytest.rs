//! The Python package's pytest suite (`tests/test_*.py`) under `cargo test`: builds the wheel
//! with maturin in the dev profile (its dependencies are optimized all the same:
//! `[profile.dev.package."*"]`), stripped, unpacks it into a temporary folder and runs pytest
//! with that folder on `PYTHONPATH`: the package as pip installs it (module, `__init__.py`,
//! stubs, `py.typed`), with nothing installed anywhere.
//!
//! Needs a Python 3 with maturin, pytest and numpy: the interpreter `PAIRALIGN_PYTHON` names,
//! else the virtual environment `scripts/setup-python.sh` makes (`target/py-venv`), else
//! `python3` on the PATH. Without one the test says why and passes, unless
//! `PAIRALIGN_REQUIRE_PYTHON=1`, which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder cargo builds into (`CARGO_TARGET_DIR` or the workspace's `target/`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target folder")
        .to_path_buf()
}

/// Skips the test with `why`, or fails it when Python is required.
fn skip(why: &str) {
    let message = format!(
        "skipping the Python package's tests: {why}. scripts/setup-python.sh installs maturin, \
         pytest and numpy into {}",
        target_dir().join("py-venv").display()
    );
    if std::env::var("PAIRALIGN_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
        panic!("{message} (PAIRALIGN_REQUIRE_PYTHON=1)");
    }
    eprintln!("{message}");
}

/// The first interpreter that imports maturin, pytest and numpy, or why there is none.
fn python() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("PAIRALIGN_PYTHON") {
        Some(named) => vec![PathBuf::from(named)],
        None => vec![
            target_dir().join("py-venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    let mut reasons = Vec::new();
    for python in candidates {
        match Command::new(&python)
            .args(["-c", "import maturin, numpy, pytest"])
            .output()
        {
            Ok(out) if out.status.success() => return Ok(python),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().last().unwrap_or("failed");
                reasons.push(format!("{}: {last}", python.display()));
            }
            Err(e) => reasons.push(format!("{}: {e}", python.display())),
        }
    }
    Err(reasons.join("; "))
}

/// Runs `command`, and panics with its output when it fails; its output goes to the test's
/// (shown by `cargo test` for a failure or with `--nocapture`).
fn run(what: &str, command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{what}:\n{text}");
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    out
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let python = match python() {
        Ok(python) => python,
        Err(why) => return skip(&format!("no Python with maturin, pytest and numpy ({why})")),
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary folder");
    let wheels = work.path().join("wheels");
    let site = work.path().join("site");

    // The same target folder and profile as `cargo test`'s own build: only the module itself
    // and pyo3 (whose build script sees maturin's settings) are built again.
    run(
        "maturin build",
        Command::new(&python)
            .args(["-m", "maturin", "build", "--locked", "--strip"])
            .args(["--auditwheel", "skip", "--manifest-path"])
            .arg(crate_dir.join("Cargo.toml"))
            .arg("--interpreter")
            .arg(&python)
            .arg("--target-dir")
            .arg(target_dir())
            .arg("--out")
            .arg(&wheels),
    );
    let wheel = std::fs::read_dir(&wheels)
        .expect("maturin's output folder")
        .map(|entry| entry.expect("a wheel").path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .expect("maturin wrote a wheel");
    run(
        "unpacking the wheel",
        Command::new(&python)
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&site),
    );
    for file in ["__init__.py", "pairalign.pyi", "py.typed"] {
        assert!(
            site.join("pairalign").join(file).is_file(),
            "the wheel lacks pairalign/{file}"
        );
    }

    // From the temporary folder, so that the source folder `python/pairalign` (which lacks the
    // compiled module) is not the package imported, and with nothing written into the sources.
    run(
        "pytest",
        Command::new(&python)
            .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs"])
            .arg(crate_dir.join("tests"))
            .current_dir(work.path())
            .env("PYTHONPATH", &site)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
}
