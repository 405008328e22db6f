//! Helpers shared by the end-to-end tests of the `pairalign` binary.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary with `args` and waits for it.
pub fn pairalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A test path as `&str` (temp and repository paths are UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// What the command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One JSON value per line of stdout.
pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Starts the binary with `args` (output discarded), sends it SIGKILL after `delay_ms`, and
/// reaps it. Returns whether it was still running when killed.
pub fn kill_after<S: AsRef<std::ffi::OsStr>>(args: &[S], delay_ms: u64) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    let running = child.try_wait().expect("the child can be polled").is_none();
    child.kill().expect("SIGKILL is delivered"); // SIGKILL on Unix
    child.wait().expect("the child is reaped");
    running
}
