"""PairAlign Search in Python: an audio archive to add recordings to and search by example.

``Archive`` opens (or creates) an archive folder for adding and searching; ``Reader`` opens one
read only, beside its writer; ``tokenize`` turns audio into the token string the index stores,
and ``Tokenizer`` keeps a tokenizer loaded for repeated work (``query``: a clip tokenized once
for many archives; ``prepare_file``: a file made ready for ``ShardWriter``, the writer of a
sharded archive). ``pairalign.ray`` runs bulk indexing and sharded search on Ray. Errors raise
``Error`` or one of its subclasses, with the message of the Rust library. The types are in
``pairalign.pyi`` (this package is typed: ``py.typed``).
"""

from .pairalign import (
    CUDA,
    DEFAULT_TOKENIZER,
    Archive,
    ConflictError,
    CorruptError,
    DecodeError,
    Error,
    InvalidInputError,
    IoError,
    Query,
    Reader,
    ShardWriter,
    Tokenizer,
    TokenizerMismatchError,
    __version__,
    decode,
    shard_dirs,
    shard_of,
    tokenize,
)

__all__ = [
    "CUDA",
    "DEFAULT_TOKENIZER",
    "Archive",
    "ConflictError",
    "CorruptError",
    "DecodeError",
    "Error",
    "InvalidInputError",
    "IoError",
    "Query",
    "Reader",
    "ShardWriter",
    "Tokenizer",
    "TokenizerMismatchError",
    "__version__",
    "decode",
    "shard_dirs",
    "shard_of",
    "tokenize",
]
