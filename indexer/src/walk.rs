//! Finding the audio files under the paths a user names: a recursive walk that follows symbolic
//! links (a loop is reported, not followed forever) and keeps files whose extension the front end
//! decodes. Unreadable entries and missing paths become [`FileProblem`]s; the walk goes on.

use std::path::{Path, PathBuf};

use pairalign_datasets::corpus::{walk_problem, AUDIO_EXTENSIONS};
use serde::Serialize;

/// A file (or walk entry) that was not indexed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    /// The path as met during the walk.
    pub path: PathBuf,
    /// What went wrong, for a person to act on.
    pub reason: String,
}

/// What a walk found.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// Audio files, in walk order (each named path in turn, file names sorted inside folders).
    pub files: Vec<PathBuf>,
    /// Paths that could not be walked: missing, unreadable, symlink loops, dangling links.
    pub problems: Vec<FileProblem>,
}

/// Whether `path` has one of the extensions the front end decodes
/// ([`AUDIO_EXTENSIONS`], ASCII case-insensitive).
pub fn is_audio_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// Lists the audio files under `paths`. A path naming a file is taken whatever its extension
/// (the user asked for it; decoding decides); folders are walked recursively and only files with
/// an audio extension are kept. Only paths are held, never audio, so the list stays small.
pub fn find_audio_files<P: AsRef<Path>>(paths: &[P]) -> Discovery {
    let mut found = Discovery::default();
    for root in paths {
        let root = root.as_ref();
        match std::fs::metadata(root) {
            Err(e) => found.problems.push(FileProblem {
                path: root.to_path_buf(),
                reason: e.to_string(),
            }),
            Ok(meta) if meta.is_file() => found.files.push(root.to_path_buf()),
            Ok(_) => walk_folder(root, &mut found),
        }
    }
    found
}

fn walk_folder(root: &Path, found: &mut Discovery) {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() && is_audio_path(e.path()) => {
                found.files.push(e.into_path());
            }
            Ok(_) => {}
            Err(e) => {
                let (path, reason) = walk_problem(&e, root);
                found.problems.push(FileProblem { path, reason });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_recursively_keeps_audio_and_reports_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        for name in ["x.wav", "y.FLAC", "notes.txt"] {
            std::fs::write(sub.join(name), b"").unwrap();
        }
        std::fs::write(dir.path().join("z.mp3"), b"").unwrap();
        let missing = dir.path().join("missing");
        let found = find_audio_files(&[dir.path().to_path_buf(), missing.clone()]);
        let names: Vec<_> = found
            .files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            vec![
                PathBuf::from("a/b/x.wav"),
                PathBuf::from("a/b/y.FLAC"),
                PathBuf::from("z.mp3")
            ]
        );
        assert_eq!(found.problems.len(), 1);
        assert_eq!(found.problems[0].path, missing);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_is_reported_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x.wav"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("back")).unwrap();
        let found = find_audio_files(&[dir.path()]);
        assert_eq!(found.files, vec![sub.join("x.wav")]);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(found.problems[0].reason.contains("loop"));
    }

    #[test]
    fn a_named_file_is_taken_whatever_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recording.raw");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(find_audio_files(&[&file]).files, vec![file]);
    }
}
