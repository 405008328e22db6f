"""Types of the extension module ``pairalign.pairalign`` (re-exported by ``pairalign``).

The dict types below (``Hit``, ``SearchResults``, ...) exist for type checkers only: import them
under ``if typing.TYPE_CHECKING:``. Their fields are those of the HTTP API's JSON.
"""

import os
import pathlib
from types import TracebackType
from typing import List, Optional, Sequence, Tuple, Type, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str
CUDA: bool
"""Whether this module was built with CUDA (``--features cuda``): ``Tokenizer(device="cuda")``."""
DEFAULT_TOKENIZER: str
"""The tokenizer of a new archive and of ``tokenize`` without one: ``pairalign-v2``."""

_Path = Union[str, "os.PathLike[str]"]
_Samples = npt.ArrayLike
"""Mono samples, floats in [-1, 1]: a 1-D numpy array (converted to float32) or a sequence."""
_Budget = Union[int, float]
"""An edit budget: an integer number of edits, or a fraction of the query's length in [0, 1)."""

class Hit(TypedDict):
    id: str
    """The document: a file's canonical path, or the id it was added under."""
    start: int
    """First matched token."""
    end: int
    """One past the last matched token."""
    start_ms: int
    end_ms: int
    distance: int
    """Edit distance between the query and the matched tokens."""
    norm_distance: float
    """``distance`` divided by the query's length."""

class SearchResults(TypedDict):
    hits: List[Hit]
    """Best first: by distance, then id, then start."""
    query_tokens: int
    k: Optional[int]
    """The absolute edit budget used (None: unbounded)."""
    lossless: bool
    """True when the result equals an exhaustive search."""
    tokenize_ms: Optional[float]
    """None for token queries."""
    search_ms: float

class Asset(TypedDict, total=False):
    id: str
    path: Optional[str]
    """Where the audio was read from; None for files added under an id and for samples."""
    file_name: Optional[str]
    title: Optional[str]
    tags: List[str]
    duration_s: float
    format: Optional[str]
    sample_rate: Optional[int]
    content_hash: str
    tokens: int
    indexed_at: str
    file_size: int
    modified_ns: int

class AssetPage(TypedDict):
    total: int
    assets: List[Asset]

class TokenizerRecord(TypedDict):
    id: str
    weights_hash: str

class Duplicate(TypedDict):
    path: str
    of: str

class FileProblem(TypedDict):
    path: str
    reason: str

class IndexReport(TypedDict):
    files_found: int
    indexed: int
    skipped: int
    replaced: int
    duplicates: List[Duplicate]
    failed: List[FileProblem]
    batches: int
    audio_s: float
    tokens: int
    wall_s: float
    realtime: float
    walk_s: float
    decode_s: float
    tokenize_s: float
    storage_s: float
    tokenizer: TokenizerRecord
    interrupted: bool
    compacted: bool

class DeleteReport(TypedDict):
    deleted: List[str]
    missing: List[str]

class StorageBytes(TypedDict):
    tokens: int
    times: int
    postings: int
    documents: int
    catalog: int
    other: int

class Stats(TypedDict):
    tokenizer: Optional[TokenizerRecord]
    docs: int
    hours: float
    tokens: int
    tokens_per_s: float
    bytes: int
    bytes_per_hour: float
    storage: StorageBytes
    versus: None

class Archive:
    """An audio archive: a folder holding the database, its metadata catalog and the tokenizer
    it records, opened for adding and searching (created on first use). One process writes a
    folder at a time: its lock is held until ``close()``, the end of a ``with`` block, or the
    object is gone. Searches see what is committed, and run in parallel from several threads
    (the GIL is released) while another thread adds."""

    def __init__(
        self, dir: _Path, tokenizer: Optional[str] = None, *, phases: Optional[int] = None
    ) -> None:
        """Opens the archive in ``dir``, creating it when missing. ``tokenizer``, for a new
        archive: ``pairalign-v3`` (the default), ``pairalign-v2``, ``pairalign``, ``vq``,
        ``vq-v2`` or a weights folder; an existing archive keeps the one it records (naming
        another raises ``TokenizerMismatchError``). ``phases``: the grid phases a clip search
        tokenizes the clip at, each searched (PairAlign models; default the model's, 4 for the
        shipped ones; 2 halves the search for a point or two of recall); files are indexed as
        always. A VQ tokenizer takes only 1 (``InvalidInputError``)."""
    @classmethod
    def open(
        cls, dir: _Path, tokenizer: Optional[str] = None, *, phases: Optional[int] = None
    ) -> "Archive":
        """The same as ``Archive(dir, tokenizer, phases=phases)``."""
    @property
    def path(self) -> pathlib.Path:
        """The archive's folder."""
    @property
    def tokenizer(self) -> str:
        """The tokenizer's id."""
    @overload
    def add_file(
        self,
        path: _Path,
        id: None = None,
        *,
        title: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> IndexReport:
        """Indexes the audio file or folder at ``path``, each file under its canonical path
        (files already indexed are skipped, changed ones re-indexed, bad ones listed under
        ``failed``)."""
    @overload
    def add_file(
        self,
        path: _Path,
        id: str,
        *,
        title: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> Asset:
        """Adds the one file under ``id`` (its path is not recorded). Raises ``ConflictError``
        when the id is taken or the same content is indexed."""
    def add_samples(
        self,
        samples: _Samples,
        rate: int,
        id: str,
        *,
        title: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        file_name: Optional[str] = None,
    ) -> Asset:
        """Adds a recording given as mono samples at ``rate`` Hz under ``id``. Raises
        ``ConflictError`` when the id is taken or the same samples are indexed."""
    def search_audio(
        self,
        samples: _Samples,
        rate: int,
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults:
        """Where the clip (0.5 to 60 s of mono samples at ``rate`` Hz) occurs. ``k`` defaults to
        0.9 of the query's length, ``top`` to 10; ``filter`` is a metadata filter such as
        ``tags:interview AND duration:>60``."""
    def search_file(
        self,
        path: _Path,
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults:
        """Where the clip in the audio file at ``path`` occurs; as ``search_audio``."""
    def search_tokens(
        self,
        tokens: Union[Sequence[int], npt.NDArray[np.integer]],
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults:
        """Where a token string occurs (``k`` defaults to 0.4 of its length). Raises
        ``InvalidInputError`` for a symbol outside the archive's vocabulary."""
    def search_query(
        self,
        query: "Query",
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults:
        """Where a clip tokenized by ``Tokenizer.query`` occurs; as ``search_audio``."""
    def asset(self, id: str) -> Optional[Asset]:
        """The catalog entry of a live document."""
    def assets(
        self, filter: Optional[str] = None, *, offset: int = 0, limit: int = 100
    ) -> AssetPage:
        """The catalog entries ``filter`` selects (all when None), sorted by id, one page."""
    def delete(self, ids: Sequence[str]) -> DeleteReport:
        """Deletes documents by id, committed before it returns."""
    def compact(self) -> None:
        """Merges all segments into one, dropping deleted documents."""
    def stats(self) -> Stats:
        """Documents, hours, tokens per second and bytes."""
    def close(self) -> None:
        """Releases the folder's lock; later calls raise ``Error``."""
    def __enter__(self) -> "Archive": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

class Reader:
    """An archive opened read only, without its lock (a writer may be adding meanwhile).
    Searches see the state committed when it was opened, until ``reload()``. Has the reading
    methods of ``Archive``: ``search_audio``, ``search_file``, ``search_tokens``,
    ``search_query``, ``asset``, ``assets``, ``stats``."""

    def __init__(
        self, dir: _Path, tokenizer: Optional[str] = None, *, phases: Optional[int] = None
    ) -> None:
        """Opens the archive in ``dir``; ``tokenizer`` (for clip searches) defaults to the one
        it records; ``phases`` as ``Archive``'s."""
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def generation(self) -> int:
        """The MANIFEST generation of the state it searches (every commit increments it)."""
    def reload(self) -> bool:
        """Moves to the latest committed state when it is newer: True when it moved."""
    def search_audio(
        self,
        samples: _Samples,
        rate: int,
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults: ...
    def search_file(
        self,
        path: _Path,
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults: ...
    def search_tokens(
        self,
        tokens: Union[Sequence[int], npt.NDArray[np.integer]],
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults: ...
    def search_query(
        self,
        query: "Query",
        *,
        k: Optional[_Budget] = None,
        top: Optional[int] = None,
        filter: Optional[str] = None,
    ) -> SearchResults: ...
    def asset(self, id: str) -> Optional[Asset]: ...
    def assets(
        self, filter: Optional[str] = None, *, offset: int = 0, limit: int = 100
    ) -> AssetPage: ...
    def stats(self) -> Stats: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Reader": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

class Query:
    """A clip tokenized for searching (``Tokenizer.query``): one string per grid phase and the
    tokenizer that made them. Pickles, to travel to other processes (the shards of a sharded
    search)."""

    @property
    def tokens(self) -> npt.NDArray[np.uint16]:
        """The tokens of the clip windowed like a file."""
    @property
    def phases(self) -> int: ...
    @property
    def tokenizer(self) -> str: ...
    @property
    def tokenize_ms(self) -> float: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> "Query": ...
    def __len__(self) -> int: ...

class Tokenizer:
    """A tokenizer loaded once, for repeated work: a worker of a distributed indexer
    (``prepare_file``), the front of a sharded search (``query``)."""

    def __init__(
        self, name: Optional[str] = None, *, device: str = "cpu", phases: Optional[int] = None
    ) -> None:
        """``pairalign-v3`` (the default), ``pairalign-v2``, ``pairalign``, ``vq``, ``vq-v2``
        or a weights folder, on ``device``: ``cpu``, ``cuda`` or ``cuda:N`` (a module built
        with the ``cuda`` feature). ``phases``: the grid phases ``query`` tokenizes a clip at,
        as ``Archive``'s."""
    @property
    def id(self) -> str: ...
    @property
    def weights_hash(self) -> str: ...
    @property
    def vocab_size(self) -> int: ...
    def tokenize(
        self, audio: Union[_Path, _Samples], rate: Optional[int] = None
    ) -> Tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]:
        """As ``pairalign.tokenize``."""
    def query(self, audio: Union[_Path, _Samples], rate: Optional[int] = None) -> Query:
        """The clip (a file, or samples with their rate; 0.5 to 60 s) tokenized for searching."""
    def query_bytes(self, data: bytes, name: Optional[str] = None) -> Query:
        """The clip in an encoded audio file's bytes, tokenized for searching."""
    def prepare_file(
        self,
        path: _Path,
        id: Optional[str] = None,
        *,
        title: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> bytes:
        """The file hashed, decoded and tokenized into what an archive stores for it, as bytes
        for ``ShardWriter.add``; ``id`` defaults to its canonical path. Raises ``DecodeError``
        with the reason when it cannot be indexed."""

class PlannedFile(TypedDict):
    path: str
    id: str
    shard: int

class Plan(TypedDict):
    files: List[PlannedFile]
    files_found: int
    skipped: int
    failed: List[FileProblem]
    walk_s: float

class ShardWriter:
    """The one writer of a sharded archive (a folder of databases ``shard-0000``, ...; a
    document goes to the shard ``shard_of(id, shards)``). Holds every shard's lock until
    ``finish()`` or ``close()``; as a context manager it finishes (or, after an exception,
    commits what is pending)."""

    def __init__(
        self,
        dir: _Path,
        shards: int = 0,
        *,
        tokenizer: Optional[str] = None,
        batch_files: int = 32,
        batch_seconds: float = 1800.0,
    ) -> None:
        """Opens the sharded archive in ``dir``, creating it with ``shards`` shards when
        missing (0: the count it has)."""
    @property
    def shards(self) -> int: ...
    @property
    def shard_dirs(self) -> List[pathlib.Path]: ...
    @property
    def tokenizer(self) -> str: ...
    def plan(self, paths: Sequence[_Path]) -> Plan:
        """The audio files under ``paths`` that need tokenizing (not committed unchanged)."""
    def add(self, recording: bytes) -> Union[str, Tuple[str, str]]:
        """Adds ``Tokenizer.prepare_file``'s bytes: ``"pending"``, ``"unchanged"`` or
        ``("duplicate", id)``."""
    def fail(self, path: _Path, reason: str) -> None: ...
    def flush(self) -> IndexReport:
        """Commits what every shard holds; the run's report so far."""
    def finish(self, compact_above: Optional[int] = 8) -> IndexReport:
        """Commits, merges the segments of shards with more than ``compact_above``, releases
        the locks."""
    def close(self) -> None:
        """Releases the locks without committing what is pending."""
    def __enter__(self) -> "ShardWriter": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

def decode(path: _Path) -> Tuple[npt.NDArray[np.float32], int]:
    """The audio file decoded as the index reads it: 16 kHz mono samples, and 16000."""

def shard_of(id: str, shards: int) -> int:
    """The shard of document ``id``: BLAKE3 of its UTF-8 bytes, first 8 bytes little-endian,
    modulo ``shards``."""

def shard_dirs(dir: _Path) -> List[pathlib.Path]:
    """The shard folders of the sharded archive in ``dir``, in order."""

def tokenize(
    audio: Union[_Path, _Samples],
    rate: Optional[int] = None,
    *,
    tokenizer: Optional[str] = None,
) -> Tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint32]]:
    """The tokens and their start times in ms of ``audio`` (a file, or mono samples with their
    ``rate``) as the index would store them. ``tokenizer`` defaults to ``DEFAULT_TOKENIZER``."""

class Error(Exception):
    """Base class of every error PairAlign raises; the message is the Rust library's."""

class InvalidInputError(Error, ValueError):
    """Bad arguments: clip length, options, filter, metadata, tokens outside the vocabulary."""

class DecodeError(InvalidInputError):
    """Audio that cannot be decoded: not audio, empty, damaged, too long."""

class ConflictError(Error):
    """The id is taken, the same content is indexed under another id, or another writer holds
    the database."""

class TokenizerMismatchError(Error):
    """The database was built with another tokenizer, or holds imported tokens."""

class IoError(Error, OSError):
    """An operating-system I/O call failed: a file missing or unreadable, a full disk."""

class CorruptError(Error):
    """A database, catalog or weights file is damaged or of an unreadable version."""
