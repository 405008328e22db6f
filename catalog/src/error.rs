//! The catalog's error type.

/// Result alias used across the catalog.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the catalog can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database the catalog is checked against failed (cannot be read).
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),
    /// The metadata catalog (`<db>/catalog/`) cannot be opened, read or written.
    #[error("catalog: {0}")]
    Catalog(String),
    /// The metadata catalog is damaged or disagrees with the database: a file whose checksum
    /// does not match, a file missing (`meta.json` among them), counts that do not add up, a
    /// panic of the catalog library on its files, or a live document without its entry (or
    /// with another token count). Nothing is answered from it and no writer touches it;
    /// `pairalign repair --db DIR` rebuilds it from the database and the files' sidecars and
    /// keeps the damaged folder beside it.
    #[error(
        "the metadata catalog {} is damaged: {}; `pairalign repair --db {}` rebuilds it \
         (the damaged folder is kept)",
        .catalog.display(),
        .problems.join("; "),
        .db.display()
    )]
    CatalogDamaged {
        /// The catalog folder.
        catalog: std::path::PathBuf,
        /// The database folder, for the repair command.
        db: std::path::PathBuf,
        /// What is wrong, each naming the file or the document concerned.
        problems: Vec<String>,
    },
    /// A metadata filter does not parse or names an unknown field.
    #[error("bad filter: {0}")]
    Filter(String),
}
