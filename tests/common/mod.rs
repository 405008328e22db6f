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

/// Starts the binary with `args`, sends it SIGKILL after `delay_ms` unless it ended first, and
/// reaps it. Returns whether it was still running when killed.
pub fn kill_after<S: AsRef<std::ffi::OsStr>>(args: &[S], delay_ms: u64) -> bool {
    run_killed(args, std::time::Duration::from_millis(delay_ms)).running
}

/// What a killed run printed (its complete JSON lines) and whether the kill landed while it ran.
pub struct Killed {
    pub lines: Vec<Value>,
    pub running: bool,
}

/// Runs the binary with `args`, collecting the JSON lines it prints, and sends it SIGKILL after
/// `delay` unless it ended first.
pub fn run_killed<S: AsRef<std::ffi::OsStr>>(args: &[S], delay: std::time::Duration) -> Killed {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    // Lines are read as they come: what was read before the kill was printed before it.
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<_>>()
    });
    let deadline = std::time::Instant::now() + delay;
    let mut running = true;
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("the child can be polled").is_some() {
            running = false;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if running {
        running = child.try_wait().expect("the child can be polled").is_none();
        child.kill().expect("SIGKILL is delivered"); // SIGKILL on Unix
    }
    child.wait().expect("the child is reaped");
    // A line cut by the kill is not JSON: it was never acknowledged.
    let lines = reader
        .join()
        .expect("the reader thread ends")
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Killed { lines, running }
}
