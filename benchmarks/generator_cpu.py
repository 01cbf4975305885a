"""The generator's CPU per request against a real server, and where it goes (perf, py-spy).

    nice -n 19 python benchmarks/generator_cpu.py --artifacts artifacts/64x262144-s0 \\
        [--protocol grpc] [--rate 100] [--duration 4] [--reps 5] \\
        [--variant NAME='{"grpc.http2.bdp_probe": 0}'] [--variant NAME='{"_server": {...}}'] \\
        [--profile DIR --profiler perf|py-spy|py-spy-native|strace]
    nice -n 19 python benchmarks/generator_cpu.py --endpoint trivial --protocol rest-binary --rate 2000

Starts tfs-compat on free ports with the artifacts (full size: 1 MiB per request), then runs one
`inferload load` worker process (open loop, the real engine and transport) per repetition and
variant, and reports its CPU seconds (user, system) per request from the worker's own accounting:
from the common start to the end of its drain, so imports and payload building are not in it.
CPU time, unlike wall-clock latency, stays meaningful on a machine shared with other work.

Also per request: minor page faults, context switches (all threads) and the server's CPU. Variants run
interleaved with the base, repetition by repetition. A variant's JSON adds gRPC channel options to the
generator's own (loadtest._spec.GRPC_CHANNEL_OPTIONS); its keys starting with "_" are experiments:
"_env" (environment for the worker, e.g. MALLOC_MMAP_THRESHOLD_), "_server" (extra gRPC server options
for tfs-compat: a server of its own), "_gc_threshold". --endpoint trivial: nginx `return 200` (the
generator alone, as in generator_capacity.py). --profile records the first repetition of each variant
with the --profiler (perf: native frames with kernel names, the least intrusive; py-spy: Python
frames, --nonblocking; py-spy-native: both, but it pauses the process and inflates its CPU) and
writes the collapsed stacks and a summary: shares by category (page faults, sendmsg, copies, thread
hand-offs, grpc core, Python), by thread, and the top frames. Results: benchmarks/results/profiles/.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER_SHIM = """
import json, os, sys
import grpc
extra = list(json.loads(os.environ["GENERATOR_CPU_SERVER_OPTIONS"]).items())
server = grpc.server
def with_extra(*args, options=(), **kwargs):
    return server(*args, options=[*options, *extra], **kwargs)
grpc.server = with_extra
sys.argv[0] = "tfs-compat"
from serving.tfs_compat.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def start_tfs_compat(
    artifacts: Path, workdir: Path, server_options: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], int, int]:
    """tfs-compat on free ports; server_options: extra gRPC server options (an experiment)."""
    grpc_port, rest_port = free_port(), free_port()
    shim = [sys.executable, "-c", SERVER_SHIM]
    program = shim if server_options else [sys.executable, "-m", "serving.tfs_compat"]
    argv = [
        *program, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
        "--model_name=linear", f"--model_base_path={(artifacts / 'tfserving' / 'linear').resolve()}",
        "--host=127.0.0.1",
    ]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the child's
    env = {**os.environ, "GENERATOR_CPU_SERVER_OPTIONS": json.dumps(server_options)}
    server = subprocess.Popen(
        argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", rest_port)) == 0:
                return server, grpc_port, rest_port
        if server.poll() is not None:
            raise SystemExit(f"tfs-compat exited: see {workdir / 'server.log'}")
        time.sleep(0.5)
    server.kill()
    raise SystemExit("tfs-compat did not listen within 180 s")


PROFILER = "py-spy"
WORKER_SHIM = """
import json, os, sys
import loadtest._worker
from loadtest import _spec
extra = json.loads(os.environ["GENERATOR_CPU_EXTRA_OPTIONS"])
if "_gc_threshold" in extra:
    import gc
    gc.set_threshold(*extra.pop("_gc_threshold"))
_spec.GRPC_CHANNEL_OPTIONS.extend(extra.items())
sys.exit(loadtest._worker.main(sys.argv[1:]))
"""


def one_run(
    settings: Any, out: Path, extra: dict[str, Any], profile: Path | None, rate_hz: int
) -> dict[str, Any]:
    """One worker process through the runner's own protocol; returns its `done` event."""
    from loadtest._runner import _read_events, _send, _WorkerState

    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", WORKER_SHIM, "--stream", "0", "--streams", "1", "--out", str(out)]
    extra = dict(extra)
    env = {**os.environ, **extra.pop("_env", {}), "PYTHONUNBUFFERED": "1",
           "GENERATOR_CPU_EXTRA_OPTIONS": json.dumps(extra)}
    log_path = out / "worker.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                   text=True, env=env, cwd=REPO_ROOT)
    state = _WorkerState(process=process, log_path=log_path)
    threading.Thread(target=_read_events, args=(state,), daemon=True).start()
    _send(process.stdin, {"settings": settings.model_dump(mode="json")})
    if not state.ready.wait(300) or not state.ready_info:
        process.kill()
        raise SystemExit(f"worker failed:\n{state.log_tail()}")
    spy = None
    if profile is not None:  # attached for the run only: imports and payload building stay out of it
        executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        seconds = str(max(1, int(settings.warmup_s + settings.duration_s)))
        if PROFILER == "perf":  # native frames with names (kernel included where permitted)
            command = ["perf", "record", "-F", str(rate_hz), "-g", "-p", str(process.pid),
                       "-o", str(profile.with_suffix(".data")), "--", "sleep", seconds]
        elif PROFILER == "strace":  # system calls by count, all threads
            command = ["timeout", "-s", "INT", seconds, "strace", "-f", "-c", "-o", str(profile), "-p",
                       str(process.pid)]
        else:
            mode = ["--native"] if PROFILER == "py-spy-native" else ["--nonblocking"]
            command = [executable, "record", *mode, "--threads", "--pid", str(process.pid), "--rate",
                       str(rate_hz), "--format", "raw", "--output", str(profile), "--duration", seconds]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached before the schedule starts
    _send(process.stdin, {"start_ns": time.monotonic_ns() + 500_000_000})
    process.wait(settings.warmup_s + settings.duration_s + 120)
    time.sleep(0.2)
    if spy is not None:
        spy.wait(60)
    if not state.done:
        raise SystemExit(f"worker ended without its result:\n{state.log_tail()}")
    return state.done


def lateness_ms(out: Path) -> tuple[float, float]:
    """Lateness (sent - scheduled) p50 and p99 of the measured requests (read through the records'
    owner, nearest rank like every percentile of ours): wall clock, so only meaningful on a quiet
    machine."""
    from loadtest import read_run
    from loadtest._percentiles import percentile

    records = read_run(out).records
    sent = records[records["in_window"] & (records["status"] != "dropped")]["lateness_ms"]
    p50, p99 = percentile(sent, 50), percentile(sent, 99)
    if p50 is None or p99 is None:
        return float("nan"), float("nan")
    return p50, p99


def write_perf_report(data: Path, collapsed: Path) -> None:
    """perf's samples as collapsed stacks (thread;outer;...;leaf count), like py-spy's raw format."""
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,ip,sym,dso"],
                            capture_output=True, text=True, check=False).stdout
    stacks: collections.Counter[str] = collections.Counter()
    for block in script.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines()]
        if not lines:
            continue
        head, frames = lines[0], []
        for line in lines[1:]:
            parts = line.split(None, 1)
            rest = parts[1] if len(parts) > 1 else "?"
            symbol, _, dso = rest.rpartition(" (")
            frames.append(f"{symbol or '?'} ({Path(dso.rstrip(')')).name})")
        stacks[";".join([f"thread {head}", *reversed(frames)])] += 1
    collapsed.write_text("".join(f"{stack} {count}\n" for stack, count in stacks.items()))


# (label, substrings of a stack): a sample goes to the first category any of whose substrings its stack
# holds, so the shares add up to 100 %. Native names come from perf (py-spy --native cannot name the
# kernel's frames); grpc core is statically linked into cygrpc without symbols.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("page faults (fresh pages for a new buffer)", ("asm_exc_page_fault",)),
    ("sendmsg: kernel TCP send (loopback delivery included)", ("sendmsg",)),
    ("receive: recv/recvmsg/recvfrom", ("recvmsg", "recvfrom", "__libc_recv", "sock_recv")),
    ("memmove: the body copied into gRPC's own buffer", ("__memmove_avx_unaligned_erms",)),
    ("mmap/munmap (Python 3.11 frame stacks of finished greenlets)", ("munmap", "__mmap")),
    ("thread hand-offs: futex, eventfd/pipe write/read, epoll", (
        "futex", "epoll_wait", "epoll_pwait", "__GI___libc_write", "__libc_read", "pthread_cond")),
    ("scheduler switches (finish_task_switch: the cost of being switched in)", ("finish_task_switch",)),
    ("grpc core (cygrpc, no symbols)", ("cygrpc",)),
    ("Python garbage collector", ("gc_collect_main",)),
    ("gevent / greenlet / libev", ("greenlet", "gevent", "libev", "corecext")),
    ("uvloop / asyncio", ("uvloop", "loop.cpython")),
    ("other system calls", ("entry_SYSCALL",)),
    ("Python interpreter and objects", ("libpython",)),
)


def _collapsed_stacks(collapsed: Path) -> Iterator[tuple[str, int]]:
    """(stack, sample count) per line of a collapsed profile (`frame;frame;... count`)."""
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack, int(count_text)


def categorize(collapsed: Path) -> list[tuple[str, float]]:
    """Share of samples per CATEGORIES entry (first match wins), 'other' last."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, count in _collapsed_stacks(collapsed):
        total += count
        label = next((name for name, keys in CATEGORIES if any(k in stack for k in keys)), "other")
        shares[label] += count
    order = [name for name, _ in CATEGORIES] + ["other"]
    return [(name, 100 * shares[name] / total) for name in order if shares[name]] if total else []


def summarize_profile(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive shares of the top frames in py-spy's collapsed ('raw') output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, count in _collapsed_stacks(collapsed):
        frames = stack.split(";")
        total += count
        by_thread[frames[0]] += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            inclusive[frame] += count
    if not total:
        return "no samples\n"
    lines = [f"samples: {total}", "", "by category (first match in the stack; native profiles only):"]
    lines += [f"  {share:5.1f} %  {name}" for name, share in categorize(collapsed)]
    lines += ["", "by thread (share of all samples):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in by_thread.most_common(8)]
    lines += ["", "self (the frame itself was on CPU or waiting in it):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive (the frame was on the stack):"]
    lines += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artifacts", type=Path, default=REPO_ROOT / "artifacts" / "64x262144-s0")
    parser.add_argument("--protocol", default="grpc", choices=("grpc", "rest-binary", "rest-json"))
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=JSON object of extra gRPC channel options (repeatable; its '_env' object: "
                        "extra "
                        "environment for the worker); 'base' always runs")
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy profiles")
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--endpoint", choices=("tfs-compat", "trivial"), default="tfs-compat",
                        help="trivial: nginx answering 200 at once (rest-binary only; --features: the body)")
    parser.add_argument("--features", type=int, default=None, help="with --endpoint trivial (default 1024)")
    parser.add_argument("--max-in-flight", type=int, default=1024)
    parser.add_argument("--profiler", choices=("py-spy", "py-spy-native", "perf", "strace"), default="py-spy")
    args = parser.parse_args(argv)
    global PROFILER
    PROFILER = args.profiler

    from loadtest import LoadSettings

    if args.endpoint == "trivial":
        model = {"features": args.features or 1024}
    else:
        from models.artifacts import ArtifactLayout

        model = {"features": ArtifactLayout(args.artifacts).read_model_json().features}
    variants: dict[str, dict[str, Any]] = {"base": {}}
    for text in args.variant:
        name, _, options = text.partition("=")
        variants[name] = json.loads(options)
    results: dict[str, Any] = {
        "benchmark": "generator_cpu", "protocol": args.protocol, "features": model["features"],
        "rate": args.rate, "duration_s": args.duration, "reps": args.reps,
        "runs": [],
    }
    server_sets = {name: extra.pop("_server", {}) for name, extra in variants.items()}
    with tempfile.TemporaryDirectory(prefix="generator-cpu-") as tmp:
        workdir = Path(tmp)
        servers: dict[str, tuple[subprocess.Popen[bytes], int, int]] = {}
        try:
            if args.endpoint == "trivial":  # the generator alone: nginx `return 200` (generator_capacity's)
                sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
                from generator_capacity import start_http_endpoint

                (workdir / "nginx").mkdir()
                nginx, port, _ = start_http_endpoint(workdir / "nginx")
                servers = {json.dumps(o, sort_keys=True): (nginx, port, port) for o in server_sets.values()}
            for options in server_sets.values():  # one server per distinct set of server options
                key = json.dumps(options, sort_keys=True)
                if key not in servers:
                    (workdir / str(len(servers))).mkdir()
                    servers[key] = start_tfs_compat(args.artifacts, workdir / str(len(servers)), options)
            for rep in range(args.reps):
                for name, extra in variants.items():  # interleaved: drift in the load hits all alike
                    server, grpc_port, rest_port = servers[json.dumps(server_sets[name], sort_keys=True)]
                    settings = LoadSettings(
                        server="tfserving" if args.endpoint == "tfs-compat" else "torchserve",
                        protocol=args.protocol, host="127.0.0.1", max_in_flight=args.max_in_flight,
                        port=grpc_port if args.protocol == "grpc" else rest_port,
                        rate=args.rate, duration_s=args.duration, warmup_s=args.warmup,
                        features=model["features"],
                        timeout_s=30.0, lateness_p99_limit_ms=1000.0, run="generator-cpu",
                    )
                    profile = None
                    if args.profile is not None and rep == 0:
                        args.profile.mkdir(parents=True, exist_ok=True)
                        profile = args.profile / f"{args.protocol}-{name}.collapsed.txt"
                    server_cpu = psutil.Process(server.pid).cpu_times()
                    with OtherWork() as other:
                        done = one_run(settings, workdir / f"{name}-{rep}", extra, profile, args.profile_rate)
                    server_after = psutil.Process(server.pid).cpu_times()
                    requests = max(1, int(done["counters"]["done"]))
                    lateness = lateness_ms(workdir / f"{name}-{rep}")
                    server_s = server_after.user - server_cpu.user + server_after.system - server_cpu.system
                    run = {
                        "variant": name, "rep": rep, "profiled": profile is not None, "requests": requests,
                        "ok": done["counters"]["ok"], "errors": done["counters"]["errors"],
                        "dropped": done["counters"]["dropped"],
                        "cpu_us_per_request": 1e6 * done["cpu_s"] / requests,
                        "user_us_per_request": 1e6 * done.get("cpu_user_s", 0.0) / requests,
                        "system_us_per_request": 1e6 * done.get("cpu_system_s", 0.0) / requests,
                        "minor_faults_per_request": done.get("minor_faults", 0) / requests,
                        "context_switches_per_request": done.get("context_switches", 0) / requests,
                        "server_cpu_us_per_request": 1e6 * server_s / requests,
                        "lateness_p50_ms": lateness[0], "lateness_p99_ms": lateness[1],
                        "other_work": other.result(),
                    }
                    results["runs"].append(run)
                    print(
                        f"{name:10s} rep {rep}{' (profiled)' if profile else '':11s} {requests:4d} req (ok "
                        f"{run['ok']}, dropped {run['dropped']})  CPU "
                        f"{run['cpu_us_per_request']:5.0f} us/req (user "
                        f"{run['user_us_per_request']:4.0f} sys {run['system_us_per_request']:4.0f})  faults "
                        f"{run['minor_faults_per_request']:3.0f}  switches "
                        f"{run['context_switches_per_request']:4.1f}"
                        f"  server {run['server_cpu_us_per_request']:5.0f} us/req  lateness p50/p99 "
                        f"{lateness[0]:.2f}/{lateness[1]:.2f} ms  other work "
                        f"{run['other_work']['other_cpu_percent_mean']} %{' BUSY' if other.busy else ''}",
                        flush=True,
                    )
                    if profile is not None and PROFILER == "perf":
                        write_perf_report(profile.with_suffix(".data"), profile)
                    if profile is not None and profile.exists() and PROFILER != "strace":
                        summary = profile.with_name(profile.name.replace(".collapsed.txt", ".summary.txt"))
                        summary.write_text(summarize_profile(profile))
        finally:
            for server, _, _ in servers.values():
                if args.endpoint == "trivial":
                    from generator_capacity import stop

                    stop(server)
                    break
                server.terminate()
                server.wait(30)
    print()
    for name in variants:
        runs = [r for r in results["runs"] if r["variant"] == name and not r["profiled"]]
        for key in ("cpu_us_per_request", "minor_faults_per_request", "server_cpu_us_per_request"):
            values = [r[key] for r in runs]
            if values:
                print(f"{name:10s} {key:28s} median {statistics.median(values):6.0f}  "
                      f"min {min(values):6.0f}  "
                      f"max {max(values):6.0f}  n={len(values)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
