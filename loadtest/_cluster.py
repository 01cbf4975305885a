"""One `inferload load` run sent from several hosts: a coordinator and remote load workers over TCP.

    coordinator:  inferload load ... --workers 2 --listen 10.0.0.5:5600 --out results/run
    each other:   inferload load-worker --connect 10.0.0.5:5600 --out /tmp/load [--processes N]

Why: one load process tops out at a few thousand requests per second, and a generator sharing the
server's machine measures its own contention. The coordinator waits for its workers, gives each its
share of λ (proportional to its load processes; a sum of independent Poisson streams is Poisson at
the total rate) and a block of stream numbers, and starts everyone at one wall-clock instant once all
payload pools are built. Each worker runs `run_load` on its host and forwards its record streams as
they are flushed, so the coordinator's run directory holds every stream (each header names its
host) and a worker that dies mid-run leaves its records up to then; load.json covers all streams and
names lost workers. Open loop only: a closed loop's concurrency does not split into independent parts.

Messages are JSON lines. Worker -> coordinator: {"hello": {"host", "processes"}}, {"ready": {}},
{"append": {"file", "text"}}, {"done": <load.json>}, {"failed": "why"}. Coordinator -> worker:
{"assign": {"settings", "stream_offset"}}, {"start_at_ns": <time.time_ns() of the start>}.

Doors: coordinator and workers share a secret made for the run (`--secret-file`, or the environment
variable INFERLOAD_CLUSTER_SECRET; the coordinator makes one when given none and says where it is).
It never crosses the wire: each side proves it holds it (HMAC-SHA256 over both sides' fresh nonces,
`challenge` -> `hello.proof` -> `welcome`), and every later line carries an HMAC under a key derived
for that connection, with a sequence number. A peer without the secret is refused before it is given
anything; a line that fails its check ends that connection; so no record from an unauthenticated
peer (or altered on the way) ever enters the run, and a worker takes its settings (where to send
load) only from a coordinator that proved it knows the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._clock import wall_to_monotonic
from ._health import preflight
from ._runner import LoadError, check_cpus, run_load
from ._schema import read_run
from ._settings import LoadSettings
from ._summary import LoadSummary, summarize

__all__ = ["SECRET_ENV", "ClusterError", "WorkerError", "cluster_secret", "parse_address", "run_load_cluster",
           "serve_as_worker"]

JOIN_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 300.0  # remote payload pools take as long as local ones
START_MARGIN_S = 0.5  # from "everyone is ready" to the first arrival: room for the start message
TAIL_INTERVAL_S = 0.25
FINISH_GRACE_S = 15.0  # after the coordinator's own load: remote drains, last records, load.json


SECRET_ENV = "INFERLOAD_CLUSTER_SECRET"
HANDSHAKE_TIMEOUT_S = 10.0


class ClusterError(LoadError):
    """The multi-host run cannot start or lost its workers before the start."""


class WorkerError(LoadError):
    """A remote load worker cannot join its coordinator (or was told to stop)."""


def cluster_secret(secret_file: str | Path | None, *, create: bool) -> tuple[bytes, str]:
    """(the run's shared secret, where it is, for messages). From `secret_file`, else the environment
    variable INFERLOAD_CLUSTER_SECRET; with `create` (the coordinator), a missing file is made with a
    fresh secret (mode 0600), and with neither a new file is made in a private temp directory."""
    if secret_file is None and os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV].strip().encode(), f"the environment variable {SECRET_ENV}"
    if secret_file is None:
        if not create:
            raise WorkerError(f"the coordinator's secret is needed to join: give --secret-file PATH (a "
                              "copy of "
                              f"the file the coordinator names) or set {SECRET_ENV}")
        secret_file = Path(tempfile.mkdtemp(prefix="inferload-cluster-")) / "secret"
    path = Path(secret_file)
    if create and not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        value = path.read_text().strip().encode()
    except OSError as exc:
        raise (ClusterError if create else WorkerError)(
            f"cannot read the run's secret file {path}: {exc.strerror or exc}") from None
    if len(value) < 16:
        raise (ClusterError if create else WorkerError)(
            f"the secret in {path} is too short ({len(value)} characters, at least 16): make a new one")
    return value, f"the file {path}"


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).hexdigest()


class _Channel:
    """JSON lines with an HMAC each (a key of this connection, a sequence number per direction)."""

    def __init__(self, stream: IO[str], key: bytes, role: str) -> None:
        self.stream = stream
        self.key = key
        self.out_label, self.in_label = (role, "worker" if role == "coordinator" else "coordinator")
        self.sent = 0
        self.received = 0
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.lock:
            body = json.dumps(message)
            mac = _mac(self.key, self.out_label, str(self.sent), body)
            self.sent += 1
            self.stream.write(json.dumps({"m": body, "mac": mac}) + "\n")
            self.stream.flush()

    def receive(self) -> dict[str, Any] | None:
        """The next message, None at the end of the stream; ValueError for a line that fails its check."""
        line = self.stream.readline()
        if not line:
            return None
        frame = json.loads(line)
        body = str(frame.get("m", ""))
        expected = _mac(self.key, self.in_label, str(self.received), body)
        if not hmac.compare_digest(expected, str(frame.get("mac", ""))):
            raise ValueError("a message failed its authentication check")
        self.received += 1
        message: dict[str, Any] = json.loads(body)
        return message

    def __iter__(self) -> Any:
        while True:
            message = self.receive()
            if message is None:
                return
            yield message


def parse_address(text: str, *, what: str) -> tuple[str, int]:
    """`HOST:PORT` or `[v6]:PORT` -> (host, port), with an error naming the flag."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} {text!r}: expected HOST:PORT, e.g. 10.0.0.5:5600")
    return host, int(port)


@dataclass
class _Peer:
    """One connected, authenticated remote worker, seen from the coordinator."""

    sock: socket.socket
    channel: _Channel
    host: str
    processes: int
    offset: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    done: dict[str, Any] | None = None
    failed: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except OSError:
            self.finished.set()

    def label(self) -> str:
        return f"load worker on {self.host} (streams {self.offset}-{self.offset + self.processes - 1})"


def _handshake(sock: socket.socket, secret: bytes) -> _Peer | str:
    """The coordinator's side: challenge, check the worker's proof, prove ours. The peer, or why not."""
    sock.settimeout(HANDSHAKE_TIMEOUT_S)  # a peer that connects and says nothing cannot hold the door
    stream = sock.makefile("rw", encoding="utf-8", newline="\n")
    ours = secrets.token_hex(16)
    try:
        stream.write(json.dumps({"challenge": ours}) + "\n")
        stream.flush()
        hello = json.loads(stream.readline() or "{}").get("hello") or {}
        theirs = str(hello.get("nonce", ""))
        proof = _mac(secret, "worker", ours, theirs)
        if not theirs or not hmac.compare_digest(proof, str(hello.get("proof", ""))):
            stream.write(json.dumps({"refused": "this peer does not know the run's secret"}) + "\n")
            stream.flush()
            return "it does not know the run's secret"
        stream.write(json.dumps({"welcome": _mac(secret, "coordinator", theirs, ours)}) + "\n")
        stream.flush()
    except (OSError, ValueError) as exc:
        return f"it broke off the handshake ({exc})"
    sock.settimeout(None)
    channel = _Channel(stream, bytes.fromhex(_mac(secret, "session", ours, theirs)), "coordinator")
    return _Peer(sock, channel, str(hello.get("host", "?")), int(hello.get("processes", 1)))


def _accept(server: socket.socket, count: int, timeout_s: float, address: str, secret: bytes) -> list[_Peer]:
    peers: list[_Peer] = []
    deadline = time.monotonic() + timeout_s
    while len(peers) < count:
        server.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            sock, _ = server.accept()
        except TimeoutError:
            for peer in peers:
                peer.sock.close()
            raise ClusterError(
                f"only {len(peers)} of {count} load worker(s) joined within {timeout_s:g} s: run "
                f"`inferload load-worker --connect {address} --out DIR` on each generator host, check "
                "that they reach this address (firewall, --listen address) or lower --workers"
            ) from None
        joined = _handshake(sock, secret)
        if isinstance(joined, str):
            where = _peer_address(sock, address)
            sock.close()
            print(f"inferload load: refused a peer from {where}: {joined} "
                  "(its records, if any, never enter the run)", flush=True)
            continue
        peers.append(joined)
    return peers


def _peer_address(sock: socket.socket, fallback: str) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "an unknown address"
    return f"{host}:{port}" if host else fallback


def _receive(peer: _Peer, out_dir: Path) -> None:
    """Reader thread: ready, forwarded records (appended to the run directory), done or failure."""
    files: dict[str, IO[str]] = {}
    try:
        for message in peer.channel:  # a line that fails its check ends the connection here
            if "append" in message:
                name = Path(message["append"]["file"]).name  # never a path outside the run directory
                if name not in files:
                    files[name] = open(out_dir / name, "a", encoding="utf-8")  # noqa: SIM115
                files[name].write(message["append"]["text"])
                files[name].flush()
            elif "ready" in message:
                peer.ready.set()
            elif "done" in message:
                peer.done = message["done"]
            elif "failed" in message:
                peer.failed = str(message["failed"])
    except (OSError, ValueError):
        pass
    finally:
        for handle in files.values():
            handle.close()
        peer.ready.set()  # wake the start gate: it checks why
        peer.finished.set()


def _start_gate(peers: list[_Peer]) -> int:
    """Wait for every worker's payload pool, then tell all the same wall-clock start."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for peer in peers:
        peer.ready.wait(max(0.0, deadline - time.monotonic()))
        if peer.failed or peer.finished.is_set() or not peer.ready.is_set():
            if peer.failed:
                why = peer.failed
            elif peer.ready.is_set():
                why = "it disconnected"
            else:
                why = f"it was not ready after {READY_TIMEOUT_S:g} s"
            raise ClusterError(f"{peer.label()} failed before the start: {why}")
    start_wall_ns = time.time_ns() + round(START_MARGIN_S * 1e9)
    for peer in peers:
        peer.send({"start_at_ns": start_wall_ns})
    return wall_to_monotonic(start_wall_ns)


def run_load_cluster(
    settings: LoadSettings,
    out_dir: str | Path,
    *,
    listen: str,
    workers: int,
    join_timeout_s: float = JOIN_TIMEOUT_S,
    progress: bool = True,
    secret_file: str | Path | None = None,
) -> LoadSummary:
    """Coordinate `workers` remote load workers plus this host's own `settings.processes` streams;
    only workers that prove they hold the run's secret (`cluster_secret`) take part."""
    if settings.mode != "open":
        raise ClusterError("load from several hosts is open loop only (--rate): a closed loop's "
                           "concurrency cannot be split into independent parts")
    if settings.early_stop is not None:
        raise ClusterError("early_stop judges the latencies of one load process; load from several "
                           "hosts cannot use it: drop early_stop, or run the load from one host")
    out = Path(out_dir)
    check_cpus(settings)
    preflight(settings)
    host, port = parse_address(listen, what="--listen")
    secret, where = cluster_secret(secret_file, create=True)
    print(f"inferload load: workers join with the run's secret from {where} (copy it to each generator host: "
          f"`inferload load-worker --connect {listen} --secret-file PATH`, or set {SECRET_ENV})", flush=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as server:
        peers = _accept(server, workers, join_timeout_s, listen, secret)
    out.mkdir(parents=True, exist_ok=True)
    total = settings.processes + sum(p.processes for p in peers)
    assert settings.rate is not None
    offset = settings.processes
    threads = []
    for peer in peers:
        peer.offset, offset = offset, offset + peer.processes
        share = settings.model_copy(update={"rate": settings.rate * peer.processes / total, "cpus": None})
        peer.send({"assign": {"settings": share.model_dump(mode="json"), "stream_offset": peer.offset}})
        threads.append(threading.Thread(target=_receive, args=(peer, out), daemon=True))
        threads[-1].start()
    local = settings.model_copy(update={"rate": settings.rate * settings.processes / total})
    try:
        local_summary = run_load(local, out, progress, start_gate=lambda: _start_gate(peers))
        deadline = time.monotonic() + FINISH_GRACE_S + settings.timeout_s
        for peer in peers:
            peer.finished.wait(max(0.0, deadline - time.monotonic()))
    finally:
        for peer in peers:
            peer.sock.close()
        for thread in threads:
            thread.join(5.0)
    return _summarize_all(settings, out, local_summary, peers, total)


def _summarize_all(
    settings: LoadSettings, out: Path, local: LoadSummary, peers: list[_Peer], total: int
) -> LoadSummary:
    cpu = list(local.generator_cpu_percent)
    applied = list(local.cpus_applied)
    for peer in peers:
        if peer.done:
            cpu += list(peer.done.get("generator_cpu_percent") or [])
            applied += list(peer.done.get("cpus_applied") or [])
    whole = settings.model_copy(update={"processes": total})
    summary = summarize(whole, read_run(out), cpu_percent=cpu, interrupted=local.interrupted,
                        cpus_applied=applied)
    silent = [p for p in peers if p.done is None]
    if silent:
        named = [f"{p.label()}: {p.failed or 'its connection ended before it finished'}" for p in silent]
        known = [w for w in summary.lost_workers if not any(f"host {p.host} " in w for p in silent)]
        summary = summary.model_copy(update={
            "lost_workers": known + named,
            "valid": False,
            "invalid_reasons": [r for r in summary.invalid_reasons if not r.startswith("lost ")]
            + [f"lost {len(known) + len(named)} load worker(s) during the run (their records up to then "
               f"are kept): " + "; ".join(known + named)],
        })
    summary.write(out / "load.json")
    return summary


class _Tail:
    """Forwards the new complete lines of every records file in a directory (a worker's side)."""

    def __init__(self, out_dir: Path, send: Any) -> None:
        self.out_dir = out_dir
        self.send = send
        self.offsets: dict[str, int] = {}

    def forward(self) -> None:
        for path in sorted(self.out_dir.glob("requests*.jsonl")):
            start = self.offsets.get(path.name, 0)
            with open(path, "rb") as handle:
                handle.seek(start)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            if complete:
                self.send({"append": {"file": path.name, "text": complete.decode()}})
                self.offsets[path.name] = start + len(complete)


def _connect(host: str, port: int, timeout_s: float, address: str) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.create_connection((host, port), timeout=max(0.1, min(2.0, timeout_s)))
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"cannot reach the load coordinator at {address} ({exc.strerror or type(exc).__name__}) "
                    f"after {timeout_s:g} s: start `inferload load --workers N --listen {address} ...` there "
                    "first, check the address and that the port is open between the hosts "
                    "(--connect-timeout waits longer)"
                ) from None
            time.sleep(0.25)


def serve_as_worker(
    connect: str,
    out_dir: str | Path,
    *,
    processes: int = 1,
    cpus: tuple[int, ...] | None = None,
    connect_timeout_s: float = 60.0,
    secret_file: str | Path | None = None,
) -> LoadSummary:
    """Join the coordinator at `connect` (both proving they hold the run's secret), run its share of
    the load here, forward every record."""
    out = Path(out_dir)
    host, port = parse_address(connect, what="--connect")
    secret, _ = cluster_secret(secret_file, create=False)
    if list(out.glob("requests*.jsonl")):
        raise WorkerError(f"{out} holds records of an earlier run: give load-worker an empty --out directory")
    sock = _connect(host, port, connect_timeout_s, connect)
    channel = _join(sock, secret, processes, connect)

    def send(message: dict[str, Any]) -> None:
        channel.send(message)

    assign = (channel.receive() or {}).get("assign")
    if not assign:
        raise WorkerError(f"the coordinator at {connect} closed the connection before assigning a share")
    settings = LoadSettings.model_validate({**assign["settings"], "processes": processes, "cpus": cpus})

    def gate() -> int:
        send({"ready": {}})
        start = (channel.receive() or {}).get("start_at_ns")
        if start is None:
            raise WorkerError(f"the coordinator at {connect} went away before the start")
        return wall_to_monotonic(int(start))

    tail = _Tail(out, send)
    stop = threading.Event()
    lost = threading.Event()

    def forward_loop() -> None:
        while not stop.wait(TAIL_INTERVAL_S):
            try:
                tail.forward()
            except OSError:  # the coordinator went away: stop this host's load as Ctrl-C would
                lost.set()
                os.kill(os.getpid(), signal.SIGINT)
                return

    forwarder = threading.Thread(target=forward_loop, daemon=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        forwarder.start()
        summary = run_load(settings, out, progress=False, stream_offset=int(assign["stream_offset"]),
                           start_gate=gate)
        stop.set()
        forwarder.join()
        tail.forward()
        send({"done": summary.model_dump(mode="json", by_alias=True)})
        return summary
    except KeyboardInterrupt:
        if lost.is_set():
            raise WorkerError(
                f"the coordinator at {connect} went away mid-run: this host's load stopped; its records "
                f"stay in {out}"
            ) from None
        raise
    except LoadError as exc:
        _tell(send, str(exc))
        raise
    except Exception as exc:  # the target refused us, etc.: the coordinator says so before the start
        _tell(send, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        stop.set()
        sock.close()


def _join(sock: socket.socket, secret: bytes, processes: int, address: str) -> _Channel:
    """The worker's side of the handshake: answer the challenge, check the coordinator's proof."""
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    stream = sock.makefile("rw", encoding="utf-8", newline="\n")
    try:
        challenge = str(json.loads(stream.readline() or "{}").get("challenge", ""))
        if not challenge:
            raise WorkerError(f"{address} did not greet as an inferload coordinator does")
        ours = secrets.token_hex(16)
        hello = {"host": os.uname().nodename, "processes": processes, "nonce": ours,
                 "proof": _mac(secret, "worker", challenge, ours)}
        stream.write(json.dumps({"hello": hello}) + "\n")
        stream.flush()
        answer = json.loads(stream.readline() or "{}")
    except (OSError, ValueError) as exc:
        raise WorkerError(f"the handshake with the coordinator at {address} broke off ({exc})") from None
    if "refused" in answer:
        raise WorkerError(f"the coordinator at {address} refused this worker: {answer['refused']}: give the "
                          f"secret file the coordinator printed (--secret-file) or {SECRET_ENV}")
    if not hmac.compare_digest(str(answer.get("welcome", "")), _mac(secret, "coordinator", ours, challenge)):
        raise WorkerError(f"the peer at {address} does not know the run's secret: not joining it (it "
                          "could send "
                          "this host's load anywhere)")
    sock.settimeout(None)
    return _Channel(stream, bytes.fromhex(_mac(secret, "session", challenge, ours)), "worker")


def _tell(send: Any, why: str) -> None:
    try:
        send({"failed": why})
    except OSError:
        pass
