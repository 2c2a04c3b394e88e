"""A real single-node Elasticsearch for tests, assembled from Maven Central (no Docker, no downloads).

The server jar, the transport-netty4 HTTP module and the test framework's ``MockNode`` are resolved by
Maven (``tests/elasticsearch/pom.xml``); ``SentinelTestNode`` (Java, same folder) starts the node.

Library use (pytest)::

    from tests.elasticsearch.node import start_node
    node = start_node(tmp_path / "es")     # builds with Maven on first use, waits until ready
    ...  Elasticsearch(node.url) ...
    node.pause(); node.resume()            # SIGSTOP / SIGCONT: an unresponsive cluster
    node.stop(); node.restart()            # outage: stopped, then back with its data and port
    node.stop()

By hand, from the project root::

    python -m tests.elasticsearch.node [--workdir DIR] [--http-port N] [--java-home DIR]

Pure standard library. Environment: ``SENTINEL_ES_JAVA_HOME`` (else ``JAVA_HOME``, else ``java`` on
PATH) picks the JDK (17 works; 8.19 runs on 17..24), ``SENTINEL_ES_MVN`` the Maven command.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MAIN_CLASS = "sentinel.testing.SentinelTestNode"
HERE = Path(__file__).resolve().parent
DEFAULT_PROJECT_ROOT = HERE.parent.parent
JVM_FLAGS = [
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-Dfile.encoding=UTF-8",
    "-Djava.locale.providers=CLDR",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
]
READY_RE = re.compile(rb"SENTINEL_ES_READY (http://\S+)")
FAILED_MARK = b"SENTINEL_ES_FAILED"

_live_nodes: list[ElasticsearchNode] = []


class ElasticsearchNodeError(RuntimeError):
    """The node could not be built or did not come up; the message carries the log tail."""


# --------------------------------------------------------------------------------------------- build


def _es_dir(project_root: Path) -> Path:
    return Path(project_root) / "tests" / "elasticsearch"


def _java_executable(java_home: str | None) -> str:
    home = java_home or os.environ.get("SENTINEL_ES_JAVA_HOME") or os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not java.exists():
            raise ElasticsearchNodeError(f"no java at {java}")
        return str(java)
    java = shutil.which("java")
    if not java:
        raise ElasticsearchNodeError("no java on PATH; set JAVA_HOME or SENTINEL_ES_JAVA_HOME")
    return java


def _is_stale(es_dir: Path) -> bool:
    target = es_dir / "target"
    cp_file = target / "classpath.txt"
    main_class = target / "classes" / (MAIN_CLASS.replace(".", "/") + ".class")
    stamp = target / ".built"  # written by build() after a successful mvn run
    if not cp_file.exists() or not main_class.exists() or not stamp.exists():
        return True
    built = stamp.stat().st_mtime
    sources = [es_dir / "pom.xml", *(es_dir / "src").rglob("*")]
    if any(p.is_file() and p.stat().st_mtime > built for p in sources):
        return True
    # a new machine or a wiped ~/.m2: the listed jars are gone
    return not all(Path(j).exists() for j in cp_file.read_text().strip().split(os.pathsep) if j)


def build(project_root: Path = DEFAULT_PROJECT_ROOT, *, java_home: str | None = None) -> list[str]:
    """Build with Maven if needed; return the java command prefix (``java <flags> -cp ... MainClass``)."""
    es_dir = _es_dir(project_root)
    target = es_dir / "target"
    target.mkdir(exist_ok=True)
    with open(target / ".build.lock", "w") as lock:  # parallel test workers: one build at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_stale(es_dir):
            mvn = shlex.split(os.environ.get("SENTINEL_ES_MVN", "mvn"))
            if not shutil.which(mvn[0]):
                raise ElasticsearchNodeError("Maven (mvn) not found: apt-get install maven")
            cmd = [*mvn, "-q", "-B", "-f", str(es_dir / "pom.xml"), "package"]
            env = dict(os.environ)
            if java_home:
                env["JAVA_HOME"] = java_home
            proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ElasticsearchNodeError(
                    f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                )
            (target / ".built").touch()
            if _is_stale(es_dir):
                raise ElasticsearchNodeError(f"{shlex.join(cmd)} succeeded but left no classpath/classes")
    classpath = os.pathsep.join([str(target / "classes"), (target / "classpath.txt").read_text().strip()])
    return [_java_executable(java_home), *JVM_FLAGS, "-cp", classpath, MAIN_CLASS]


# ---------------------------------------------------------------------------------------------- node


def _http_json(url: str, timeout: float) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass(eq=False)
class ElasticsearchNode:
    """A running (or stopped) node. ``url`` and the data dir stay the same across ``restart()``."""

    url: str
    http_port: int
    pid: int
    log_path: Path
    workdir: Path
    command: list[str] = field(repr=False)
    timeout: float = 180.0
    process: subprocess.Popen | None = field(default=None, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP the JVM: connections are accepted by the kernel but nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM: shards flushed); SIGKILL if it takes longer than ``timeout``."""
        if not self.is_running():
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            os.kill(self.pid, signal.SIGCONT)  # a paused JVM cannot act on SIGTERM
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash. Acknowledged writes survive (translog is fsynced per request)."""
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
        self._reap()

    def restart(self, timeout: float | None = None) -> ElasticsearchNode:
        """Stop if running, start again on the same data dir and HTTP port, wait until ready."""
        self.stop()
        self._launch(self.http_port, timeout if timeout is not None else self.timeout)
        return self

    def __enter__(self) -> ElasticsearchNode:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------------

    def health(self, timeout: float = 10.0) -> dict:
        return _http_json(f"{self.url}/_cluster/health", timeout)

    def log_tail(self, max_bytes: int = 6000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no log>"
        return data[-max_bytes:].decode("utf-8", "replace")

    def _reap(self) -> None:
        if self.process is not None and self.process.stdin:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        if self in _live_nodes and not self.is_running():
            _live_nodes.remove(self)

    def _launch(self, http_port: int, timeout: float) -> None:
        home = self.workdir / "home"
        tmp = self.workdir / "tmp"
        for d in (home, tmp, self.workdir / "data"):
            d.mkdir(parents=True, exist_ok=True)
        java, *rest = self.command
        cmd = [
            java,
            f"-Djava.io.tmpdir={tmp}",
            *rest,
            "--home", str(home),
            "--data", str(self.workdir / "data"),
            "--http-port", str(http_port),
            "--transport-port", "0",
            "--exit-on-stdin-eof",
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(cmd)}\n".encode())
            log.flush()
            offset = log.tell()
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,  # closed when we die: the node's watchdog then exits
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C in the terminal is ours to handle, not the JVM's
            )
        self.pid = self.process.pid
        _live_nodes.append(self)
        try:
            self._wait_ready(offset, timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # 1. the launcher's ready line (HTTP bound, node started)
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                out = f.read()
            m = READY_RE.search(out)
            if m:
                self.url = m.group(1).decode()
                self.http_port = int(self.url.rsplit(":", 1)[1])
                break
            if FAILED_MARK in out or self.process.poll() is not None:
                raise ElasticsearchNodeError(
                    f"Elasticsearch exited with {self.process.poll()} during start; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise ElasticsearchNodeError(
                    f"Elasticsearch not ready after {timeout:.0f}s; log {self.log_path}:\n" + self.log_tail()
                )
            time.sleep(0.2)
        # 2. every primary shard (of the data it came back with) active, nothing initialising:
        #    green unless some index asks for replicas, which a single node leaves unassigned (yellow)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            try:
                h = _http_json(
                    f"{self.url}/_cluster/health?wait_for_status=yellow"
                    f"&wait_for_no_initializing_shards=true&timeout={left}s",
                    timeout=left + 10,
                )
                if not h.get("timed_out") and h.get("status") in ("yellow", "green"):
                    return
                last_error = ElasticsearchNodeError(f"cluster health: {h}")
            except (urllib.error.URLError, OSError, ValueError) as e:
                last_error = e
                if self.process.poll() is not None:
                    break
                time.sleep(0.5)
        raise ElasticsearchNodeError(
            f"Elasticsearch not healthy after {timeout:.0f}s ({last_error}); log {self.log_path}:\n"
            + self.log_tail()
        )


def start_node(
    workdir: Path,
    *,
    java_home: str | None = None,
    timeout: float = 180,
    http_port: int = 0,
    project_root: Path = DEFAULT_PROJECT_ROOT,
    settings: dict[str, object] | None = None,
) -> ElasticsearchNode:
    """Build if needed, start a node with its data in ``workdir``, return once it serves requests.

    ``http_port=0`` lets the node bind a free port itself (no pick-then-bind race); ``restart()`` then
    reuses the bound one. ``settings`` are extra node settings (``-Ekey=value``), e.g.
    ``{"action.destructive_requires_name": "false"}`` to allow wildcard index deletes.
    Raises ``ElasticsearchNodeError`` with the log tail on failure.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    command = build(project_root, java_home=java_home)
    for key, value in (settings or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        command.append(f"-E{key}={value}")
    node = ElasticsearchNode(
        url="",
        http_port=http_port,
        pid=0,
        log_path=workdir / "elasticsearch.log",
        workdir=workdir,
        command=command,
        timeout=timeout,
    )
    node._launch(http_port, timeout)
    return node


@atexit.register
def _stop_leftovers() -> None:
    for node in list(_live_nodes):
        with contextlib.suppress(Exception):
            node.stop(timeout=15)


# ----------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.elasticsearch.node", description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, help="data + logs here (kept); default: a temp dir, removed on exit")
    ap.add_argument("--http-port", type=int, default=9200, help="0 = any free port (default 9200)")
    ap.add_argument("--java-home", help="JDK to run on (default: $SENTINEL_ES_JAVA_HOME, $JAVA_HOME, PATH)")
    ap.add_argument("--timeout", type=float, default=180)
    args = ap.parse_args(argv)

    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="sentinel-es-")
        workdir = Path(tmp.name)
    t0 = time.monotonic()
    print(f"building/starting Elasticsearch in {workdir} ...", flush=True)
    try:
        node = start_node(workdir, java_home=args.java_home, timeout=args.timeout, http_port=args.http_port)
    except ElasticsearchNodeError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"Elasticsearch ready at {node.url}  (pid {node.pid}, {time.monotonic() - t0:.1f}s)", flush=True)
    print(f"log: {node.log_path}\nCtrl-C to stop.", flush=True)
    try:
        while node.is_running():
            time.sleep(1)
        print(f"node exited ({node.process.returncode}); log tail:\n{node.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        node.stop()
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
