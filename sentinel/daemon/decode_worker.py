"""A decode worker process: reads batches of records on stdin, writes decoded batches on stdout.

Started by :class:`sentinel.daemon.decode_pool.DecodePool` as ``python -m sentinel.daemon.decode_worker``.
The first message maps each source to its decoder's (spec, zone, host name, source type); each further one is
(records, now) and is answered with a DecodedBatch, in order.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
from typing import Any

from sentinel.daemon.decode_pool import decode_records
from sentinel.daemon.gctune import tune_gc
from sentinel.daemon.worker_protocol import read_message, write_message
from sentinel.decode.engine import Decoder


def main() -> int:
    # Ctrl-C reaches the whole process group and systemd's stop the whole cgroup; the parent decides
    # (it commits what this process still holds first), and this process ends when its stdin does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The descriptors, not sys.stdin/sys.stdout: nothing is read or written through Python's buffers (see
    # worker_protocol).
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    init = read_message(stdin)
    if init is None:
        return 0
    decoders = {name: Decoder(spec, zone, host, kind) for name, (spec, zone, host, kind) in init.items()}
    tune_gc()
    # Requests are read ahead on a thread: the parent may be writing the next batch while this process
    # is still writing the previous result, and neither may wait for the other.
    requests: queue.Queue[Any] = queue.Queue()

    def read_all() -> None:
        try:
            while (message := read_message(stdin)) is not None:
                requests.put(message)
        finally:  # at the end of stdin, or a message that cannot be read: this process ends, the parent sees it
            requests.put(None)

    threading.Thread(target=read_all, name="requests", daemon=True).start()
    try:
        while (request := requests.get()) is not None:
            records, now = request
            write_message(stdout, decode_records(decoders, records, now, keep_events=False))
            del request, records  # answered: not held while waiting for the next batch
    except BrokenPipeError:
        pass  # the parent is gone (stopped or killed): what was not committed is read again at its start
    return 0


if __name__ == "__main__":
    sys.exit(main())
