//! What a protocol hands back besides its reports: a markdown table and SVG plots, and writing
//! them with the JSON into a folder (`--out DIR`: `results.json`, `results.md`, `*.svg`).

use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

/// The files a protocol writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outputs {
    /// One JSON object per subject (one line each, keys in the report's order), as `--json`
    /// prints them.
    pub json: Vec<String>,
    /// The results as a markdown table (with a line saying what ran).
    pub markdown: String,
    /// SVG plots: file name and content.
    pub plots: Vec<(String, String)>,
}

impl Outputs {
    /// The JSON objects of `reports`, one line each.
    pub fn json_of<T: Serialize>(reports: &[T]) -> Vec<String> {
        reports
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_else(|_| "null".into()))
            .collect()
    }

    /// Writes `results.json` (an array of the objects), `results.md` and the plots into `dir`,
    /// creating it.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = format!("[\n  {}\n]", self.json.join(",\n  "));
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| Error::io(path, e))
        };
        write("results.json", &(json + "\n"))?;
        write("results.md", &self.markdown)?;
        for (name, svg) in &self.plots {
            write(name, svg)?;
        }
        Ok(())
    }
}

/// A markdown table: a header row and rows of cells.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// A number with `digits` decimals, or a dash for none.
pub(crate) fn num(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "—".to_string(),
    }
}

/// A subject's label in tables and plots: the name given, and the tokenizer id when it says
/// more (`dense` is shown as `dense:vq`).
pub(crate) fn label(info: &crate::SubjectInfo) -> String {
    if info.tokenizer.starts_with(&info.name) {
        info.tokenizer.clone()
    } else {
        format!("{} ({})", info.name, info.tokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_numbers() {
        let t = table(&["a", "b"], &[vec!["1".into(), num(Some(0.12345), 3)]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 0.123 |\n");
        assert_eq!(num(None, 2), "—");
        assert_eq!(num(Some(f64::NAN), 2), "—");
    }

    #[test]
    fn writes_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = Outputs {
            json: vec![r#"{"tokenizer":"t","p_at_1":1.0}"#.into(), "{}".into()],
            markdown: "| x |\n".into(),
            plots: vec![("p.svg".into(), "<svg/>".into())],
        };
        let target = dir.path().join("new/sub");
        out.write(&target).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(target.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(json[0]["p_at_1"], 1.0);
        assert_eq!(json.as_array().unwrap().len(), 2);
        assert!(target.join("results.md").is_file());
        assert_eq!(
            std::fs::read_to_string(target.join("p.svg")).unwrap(),
            "<svg/>"
        );
    }
}
