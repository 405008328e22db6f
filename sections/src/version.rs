//! The version rule every sectioned format follows (tantivy `directory/footer.rs`): a file states
//! the format version of its writer and the oldest reader version that can read it, and a reader
//! reads it with the newest layout that both know.

use crate::error::{Error, Result};

/// The layout version that a reader whose format version is `current` reads a file with: the
/// newest that both know, `min(found, current)`.
///
/// `found` is the file's format version and `oldest_supported` the oldest reader version it
/// allows, which must be in 1..=`found` ([`Error::OldestVersionOutOfRange`] otherwise). A file
/// whose `oldest_supported` is above `current` needs a newer reader
/// ([`Error::UnsupportedVersion`]). The format maps the result to one of the layouts it reads, and
/// refuses a version it no longer reads as unsupported too.
pub fn readable_version(found: u32, oldest_supported: u32, current: u32) -> Result<u32> {
    if oldest_supported > current {
        return Err(Error::UnsupportedVersion {
            found,
            oldest_supported,
        });
    }
    if oldest_supported == 0 || oldest_supported > found {
        return Err(Error::OldestVersionOutOfRange {
            found,
            oldest_supported,
        });
    }
    Ok(found.min(current))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn examples() {
        // The same file, by readers of versions 1 and 3.
        assert_eq!(readable_version(2, 1, 1), Ok(1));
        assert_eq!(readable_version(2, 1, 3), Ok(2));
        assert_eq!(readable_version(1, 1, 1), Ok(1));
        assert_eq!(
            readable_version(2, 2, 1),
            Err(Error::UnsupportedVersion {
                found: 2,
                oldest_supported: 2
            })
        );
        assert_eq!(
            readable_version(0, 1, 1),
            Err(Error::OldestVersionOutOfRange {
                found: 0,
                oldest_supported: 1
            })
        );
        assert_eq!(
            readable_version(1, 0, 1),
            Err(Error::OldestVersionOutOfRange {
                found: 1,
                oldest_supported: 0
            })
        );
    }

    proptest! {
        /// Against the rule spelled out: the reader reads the newest version both know, and only
        /// files that allow it.
        #[test]
        fn matches_the_rule(found in 0u32..6, oldest in 0u32..6, current in 1u32..6) {
            let got = readable_version(found, oldest, current);
            let consistent = (1..=found).contains(&oldest);
            let allowed = oldest <= current;
            match got {
                Ok(v) => {
                    prop_assert!(consistent && allowed);
                    prop_assert!(v <= found && v <= current && v >= oldest);
                    prop_assert!(v == found || v == current);
                }
                Err(Error::UnsupportedVersion { .. }) => prop_assert!(!allowed),
                Err(Error::OldestVersionOutOfRange { .. }) => prop_assert!(allowed && !consistent),
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
