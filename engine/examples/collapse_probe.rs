//! Writes a copy of a database whose documents have every run of one symbol collapsed to its
//! first token (with that token's time), for measuring search on run-collapsed strings
//! (issue 23: pause runs dominate the postings and the near-budget hits).
//!
//! ```text
//! cargo run --release -p pairalign-engine --example collapse_probe -- SRC DST
//! ```
//! `PROBE_CAP=n` keeps the first `n` tokens of each run (default 1); `PROBE_SYMBOL=s` caps only
//! the runs of symbol `s`.

use std::path::Path;

use pairalign_engine::{DatabaseWriter, NewDoc, Searcher};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = &args[..] else {
        return Err("usage: collapse_probe SRC DST".into());
    };
    let searcher = Searcher::open(Path::new(src))?;
    let mut writer = DatabaseWriter::create(Path::new(dst), searcher.config())?;
    if let Some(t) = searcher.tokenizer() {
        writer.set_tokenizer(t.clone())?;
    }
    let cap: usize = std::env::var("PROBE_CAP").map_or(Ok(1), |c| c.parse())?;
    let only: Option<u16> = std::env::var("PROBE_SYMBOL")
        .ok()
        .map(|s| s.parse())
        .transpose()?;
    let (mut before, mut after) = (0u64, 0u64);
    for segment in searcher.segments()?.iter() {
        let mut batch = Vec::new();
        for doc in segment.docs() {
            let times = doc.times_ms.to_vec();
            let mut tokens = Vec::new();
            let mut kept_times = Vec::new();
            let mut run = 0;
            for (i, &t) in doc.tokens.iter().enumerate() {
                run = if i > 0 && doc.tokens[i - 1] == t {
                    run + 1
                } else {
                    1
                };
                if run <= cap || only.is_some_and(|s| s != t) {
                    tokens.push(t);
                    kept_times.push(times[i]);
                }
            }
            before += doc.tokens.len() as u64;
            after += tokens.len() as u64;
            batch.push(NewDoc {
                id: doc.name.to_string(),
                tokens,
                times_ms: Some(kept_times),
                duration_ms: Some(doc.duration_ms),
            });
        }
        writer.add_tokens(&batch)?;
        writer.commit()?;
    }
    println!(
        "{before} tokens -> {after} ({:.3})",
        after as f64 / before as f64
    );
    Ok(())
}
