"""A decode worker paused and resumed while it answers (SIGSTOP / SIGCONT: a debugger or profiler attaching,
a cgroup freeze, job control) loses nothing: every batch comes back whole and in order.

Found with py-spy: attaching to a running daemon's decode worker made the daemon fail to unpickle a batch,
or wait forever for one, after a few seconds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from sentinel.daemon.collectors import load_collectors
from sentinel.daemon.decode_pool import DecodePool, RecordTuple, decode_records
from sentinel.daemon.worker_protocol import read_message, write_message
from sentinel.decode.engine import Decoder
from tests.ingest_helpers import sshd

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "sentinel" / "shipped"
LINES = 3000  # per batch: its answer is about a MiB, so the worker waits on a full pipe while it writes
BATCHES = 16


def _decoder() -> Decoder:
    loaded, errors = load_collectors(SHIPPED / "collectors")
    assert not errors
    return Decoder(loaded["linux-auth"].spec, "UTC", "test")


def _batch(k: int) -> list[RecordTuple]:
    out: list[RecordTuple] = []
    for i in range(LINES):
        n = k * LINES + i
        line = sshd(n).encode()
        out.append(("linux-auth", "stream", "/var/log/auth.log", n * 200, n * 200 + len(line), line, False, 0, 0.0))
    return out


def _pause_and_resume(pids: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(0.004)
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.006)


def test_a_worker_paused_and_resumed_while_it_answers_returns_every_batch_whole_and_in_order() -> None:
    decoder = _decoder()
    now = 1_764_000_000.0
    batches = [_batch(k) for k in range(BATCHES)]
    expected = [decode_records({"linux-auth": decoder}, b, now, keep_events=False).rows for b in batches]
    got = []
    stop = threading.Event()
    with DecodePool({"linux-auth": decoder}, workers=1) as pool:
        got += [b.rows for b in pool.submit(batches[0], now)]  # decoded here while the worker starts
        pauser = threading.Thread(target=_pause_and_resume, args=(pool.pids, stop))
        pauser.start()
        try:
            for b in batches[1:]:
                got += [d.rows for d in pool.submit(b, now)]
                time.sleep(0.15)  # busy elsewhere, as the daemon is with the rules: the answers fill the pipe
            got += [d.rows for d in pool.drain()]
        finally:
            stop.set()
            pauser.join()
            for pid in pool.pids:
                os.kill(pid, signal.SIGCONT)
    assert len(got) == BATCHES
    assert got == expected


def test_messages_cross_a_pipe_whole_when_the_reader_is_slow_and_the_writer_is_paused(tmp_path: Path) -> None:
    """The protocol alone, both ways round: a parent writing large messages to a child that echoes them back."""
    read_end, write_end = os.pipe()
    back_read, back_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: echo every message until the end of its input
        os.close(write_end)
        os.close(back_read)
        try:
            while (message := read_message(read_end)) is not None:
                write_message(back_write, message)
        finally:
            os._exit(0)
    os.close(read_end)
    os.close(back_write)
    stop = threading.Event()
    pauser = threading.Thread(target=_pause_and_resume, args=([pid], stop))
    sent = [(i, bytes([i % 251]) * (300_000 + 7919 * i)) for i in range(40)]
    received = []

    def receive() -> None:
        while (message := read_message(back_read)) is not None:
            received.append(message)
            time.sleep(0.01)  # a slow reader: the child waits on a full pipe while it writes

    reader = threading.Thread(target=receive)
    reader.start()
    pauser.start()
    try:
        for message in sent:
            write_message(write_end, message)
    finally:
        os.close(write_end)
        reader.join(timeout=120)
        stop.set()
        pauser.join()
        os.kill(pid, signal.SIGCONT)
        os.waitpid(pid, 0)
        os.close(back_read)
    assert received == sent
