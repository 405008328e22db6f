"""PairAlign Search in Python: an audio archive to add recordings to and search by example.

``Archive`` opens (or creates) an archive folder; ``tokenize`` turns audio into the token
string the index stores. Errors raise ``Error`` or one of its subclasses, with the message of
the Rust library. The types are in ``pairalign.pyi`` (this package is typed: ``py.typed``).
"""

from .pairalign import (
    DEFAULT_TOKENIZER,
    Archive,
    ConflictError,
    CorruptError,
    DecodeError,
    Error,
    InvalidInputError,
    IoError,
    TokenizerMismatchError,
    __version__,
    tokenize,
)

__all__ = [
    "DEFAULT_TOKENIZER",
    "Archive",
    "ConflictError",
    "CorruptError",
    "DecodeError",
    "Error",
    "InvalidInputError",
    "IoError",
    "TokenizerMismatchError",
    "__version__",
    "tokenize",
]
