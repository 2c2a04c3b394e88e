"""What collection hands on and the store keeps: framed records with their byte range, and stream checkpoints.

They live in events, beside the event model, because decode reads records and the store writes checkpoints,
and neither may depend on collect."""

from __future__ import annotations

from dataclasses import dataclass

# The journal source marks the record a lost stretch becomes with this field, and the decoder reads it back
# (journal fields never start with "_S" + this name).
GAP_FIELD = "_SENTINEL_GAP"


@dataclass(slots=True)
class RawRecord:
    """One framed record (a line, or lines joined by multiline/auditd framing) from a stream."""

    source: str
    stream: str
    path: str
    offset: int
    end: int
    data: bytes
    truncated: bool = False
    original_length: int = 0
    reference_time: float = 0.0


@dataclass(slots=True)
class Checkpoint:
    """How far a stream (a file's content lineage, or a non-file source) has been committed."""

    stream: str
    source: str
    path: str
    dev: int
    ino: int
    fp_len: int
    fp_hash: str
    offset: int
    finished: bool = False
    updated: float = 0.0
    # Where a non-file source resumes (a journal cursor, an API page token); empty for files.
    cursor: str = ""
