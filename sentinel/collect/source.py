"""What the pipeline drives: any source of records with a checkpoint that commits in the batch transaction.

The file tailer is one; the journal follower and the network receivers are others. A source hands out
records in order and, right after each read, the checkpoints that exactly cover what it handed out;
the pipeline commits both in one transaction, so a restart resumes where the last commit ended.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Protocol

from sentinel.events.records import Checkpoint, RawRecord


class Source(Protocol):
    @property
    def source(self) -> str:
        """The source's name: every record and checkpoint it makes carries it."""
        ...

    @property
    def patterns(self) -> Sequence[str]:
        """Globs whose directories file notifications should watch (none for a non-file source)."""
        ...

    @property
    def framing(self) -> object:
        """How bytes become records (files); with ``settings``, what a reload compares to keep a source."""
        ...

    @property
    def settings(self) -> object: ...

    @property
    def active(self) -> Sized:
        """What is followed right now (files, a reader process, connections), for the followed gauge."""
        ...

    def restore(self, checkpoints: list[Checkpoint]) -> None:
        """Resume after the committed checkpoints (all sources' checkpoints: take your own)."""
        ...

    def rewind(self, checkpoints: list[Checkpoint]) -> None:
        """A batch rolled back: go back to the committed checkpoints, to hand the same records out again
        (a source that cannot, such as a network receiver, says what it lost)."""
        ...

    def discover(self) -> None:
        """Periodic housekeeping between batches: new files, a reader to restart."""
        ...

    def read(self, budget: int) -> list[RawRecord]:
        """Up to about ``budget`` records, without blocking."""
        ...

    @property
    def bytes_read(self) -> int:
        """Bytes the last ``read`` consumed: it may move on without a record yet (a very long line)."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """Checkpoints covering exactly the records read so far that moved since the last call."""
        ...

    def lag(self) -> list[tuple[str, int, float]]:
        """(what, bytes behind, seconds behind) per followed input, where that is knowable."""
        ...

    def close(self) -> None: ...
