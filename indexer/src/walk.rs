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
///
/// Nothing is left out without a word: a named path that is neither a regular file nor a folder
/// (a FIFO, `/dev/zero`, a socket), an entry with an audio extension that is not a regular file,
/// and a named folder with no audio file in it (a folder called `take.wav`) each become a
/// [`FileProblem`] saying why it was skipped. Reading a FIFO or a device would block or never
/// end.
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
            Ok(meta) if meta.is_dir() => {
                let before = (found.files.len(), found.problems.len());
                walk_folder(root, &mut found);
                if (found.files.len(), found.problems.len()) == before {
                    found.problems.push(FileProblem {
                        path: root.to_path_buf(),
                        reason: format!(
                            "a folder with no audio file in it (extensions {}): skipped",
                            AUDIO_EXTENSIONS.join(", ")
                        ),
                    });
                }
            }
            Ok(meta) => found.problems.push(not_regular(root, &meta.file_type())),
        }
    }
    found
}

/// The problem of a path that is neither a regular file nor a folder.
fn not_regular(path: &Path, kind: &std::fs::FileType) -> FileProblem {
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        }
    };
    #[cfg(not(unix))]
    let what = {
        let _ = kind;
        "not a regular file"
    };
    FileProblem {
        path: path.to_path_buf(),
        reason: format!("{what}, not an audio file: skipped"),
    }
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
            // A FIFO or device named like audio: said, not read (it could block forever).
            Ok(e)
                if !e.file_type().is_file()
                    && !e.file_type().is_dir()
                    && is_audio_path(e.path()) =>
            {
                found.problems.push(not_regular(e.path(), &e.file_type()));
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

    /// Issue 21: a FIFO, `/dev/zero` and a folder named `x.wav` were skipped without a word.
    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_empty_folders_are_reported_as_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.wav");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let folder = dir.path().join("x.wav");
        std::fs::create_dir(&folder).unwrap();
        let zero = Path::new("/dev/zero");
        let found = find_audio_files(&[fifo.as_path(), zero, folder.as_path()]);
        assert!(found.files.is_empty(), "{:?}", found.files);
        let reasons: Vec<(&Path, &str)> = found
            .problems
            .iter()
            .map(|p| (p.path.as_path(), p.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].0 == fifo && reasons[0].1.contains("FIFO"),
            "{reasons:?}"
        );
        assert!(reasons[1].0 == zero && reasons[1].1.contains("character device"));
        assert!(reasons[2].0 == folder && reasons[2].1.contains("no audio file"));
        // Met inside a walked folder, the FIFO is reported too (and the folder is not empty).
        std::fs::write(dir.path().join("real.wav"), b"").unwrap();
        let found = find_audio_files(&[dir.path()]);
        assert_eq!(found.files, vec![dir.path().join("real.wav")]);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert_eq!(found.problems[0].path, fifo);
    }

    #[test]
    fn a_named_file_is_taken_whatever_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recording.raw");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(find_audio_files(&[&file]).files, vec![file]);
    }
}
