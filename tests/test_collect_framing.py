"""Framing: lines, multiline groups and auditd serial groups, with byte ranges that checkpoints can trust."""

from __future__ import annotations

from sentinel.collect.framing import FramingSpec, LineFramer


def test_lines_keep_exact_byte_ranges_across_chunks() -> None:
    framer = LineFramer(100, 1024)
    frames = framer.feed(b"ab\ncd", 100) + framer.feed(b"e\n\nf", 105)
    assert [(f.offset, f.end, f.data) for f in frames] == [(100, 103, b"ab"), (103, 107, b"cde"), (107, 108, b"")]
    assert framer.pending_from == 108  # "f" has no newline yet: the checkpoint stays before it
    assert framer.flush(final=False) == []
    (last,) = framer.flush(final=True)
    assert (last.offset, last.end, last.data) == (108, 109, b"f")


def test_overlong_line_keeps_its_head_and_its_true_length() -> None:
    framer = LineFramer(0, 8)
    frames = framer.feed(b"0123456789abc", 0) + framer.feed(b"def\nok\n", 13)
    assert [(f.data, f.truncated, f.original_length, f.end) for f in frames] == [
        (b"01234567", True, 16, 17), (b"ok", False, 2, 20)]


def test_auditd_groups_by_node_and_serial_and_closes_on_eoe() -> None:
    framer = FramingSpec("auditd").framer(0, 1 << 16)
    data = (b"node=h1 type=SYSCALL msg=audit(1.0:5): a\n"
            b"node=h1 type=PATH msg=audit(1.0:5): b\n"
            b"node=h1 type=EOE msg=audit(1.0:5): \n"
            b"node=h2 type=SYSCALL msg=audit(1.0:5): c\n"
            b"type=USER_LOGIN msg=audit(2.0:6): d\n")
    frames = framer.feed(data, 0)
    assert [f.data.count(b"\n") + 1 for f in frames] == [3, 1]  # h2's record with the same serial is its own event
    assert framer.pending_from == frames[-1].end  # the last group waits: more records may share its serial
    (last,) = framer.flush(final=False)
    assert last.data == b"type=USER_LOGIN msg=audit(2.0:6): d"


def test_multiline_negated_pattern_starts_records_at_timestamps() -> None:
    framer = FramingSpec("multiline", pattern=r"^\d{4}-", negate=True).framer(0, 1 << 16)
    frames = framer.feed(b"2026-01-01 boom\nTraceback\n  File x\n2026-01-01 ok\n", 0) + framer.flush(final=False)
    assert [f.data for f in frames] == [b"2026-01-01 boom\nTraceback\n  File x", b"2026-01-01 ok"]
