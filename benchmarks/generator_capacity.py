"""How fast can ONE load process go and still keep its schedule? (the instrument's own limit)

Steps the open-loop Poisson rate up against a trivial loopback endpoint that answers at once
(nginx `return 200` when installed, else an aiohttp app; a grpc.aio server with a generic
handler for gRPC), each in its own process, and reports the highest rate one generator process
sustains with lateness p99 under 1 ms, per protocol. In the same run, stock Locust HttpUser and
FastHttpUser (closed loop, wait_time = constant(0), N users, 1 process) at their own maximum,
for comparison, and a compiled open-loop generator on the same HTTP endpoint: httperf (Debian's
package; Poisson session arrivals with `--period e`, one POST of the same body per session, so one
TCP connection per request where ours keeps connections alive; `apt-get install httperf`), the
reference the table measures us against (vegeta and wrk2 do not install from the registries this
project reaches; `wrk` is closed loop). Writes benchmarks/results/generator_capacity.json and
prints a table; `--before FILE` puts an earlier run's table into the same file (e.g. the engine
before a change, measured in a run of its own).

Each step also records the generator's CPU per request (its CPU time / requests sent: robust to
other work on the machine, unlike the rates) and the 1-minute load average before and after it.
Other work on the machine is sampled during the whole run (benchmarks/busy.py: CPU taken by processes
outside this benchmark's own process tree). A busy run is said so in the table and the file
(`machine.busy`, with the reason, and `machine.other_work`), and is written to
generator_capacity.busy.json unless --out names a file: a busy run never replaces the quiet results
with silently worse numbers.

    python benchmarks/generator_capacity.py [--duration 3] [--max-rate 12000] [--users 32] [--rates 1000,4000]
        [--before benchmarks/results/generator_capacity.before-engine.json] [--no-reference]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy import OtherWork  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "generator_capacity.json"
BUSY_RESULTS = RESULTS.with_suffix(".busy.json")
LATENESS_P99_LIMIT_MS = 1.0  # the strict criterion asked for
VALIDITY_LATENESS_P99_MS = 5.0  # inferload's default validity limit (LoadSettings.lateness_p99_limit_ms)
KEEPS_UP = 0.95  # send rate at least 95 % of the target, no drops, no errors
FEATURES = 1024  # the small model's body: 4 KiB raw float32
DEFAULT_RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000)


# -- trivial endpoints --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_http_aiohttp(port: int) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"ok")

    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_grpc(port: int) -> None:
    import grpc

    def reply(request: bytes, context: Any) -> bytes:
        return b"\x0a\x02ok"  # PredictionResponse{prediction: "ok"}

    class AnyMethod(grpc.GenericRpcHandler):
        def service(self, handler_call_details: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(reply)

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 2**20)])
        server.add_generic_rpc_handlers((AnyMethod(),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    import uvloop

    uvloop.run(main())  # the faster loop: the endpoint saturates before the generator does


def start_http_endpoint(workdir: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        conf = workdir / "nginx.conf"
        conf.write_text(
            textwrap.dedent(
                f"""
                worker_processes 1;
                pid {workdir}/nginx.pid;
                error_log {workdir}/nginx-error.log;
                events {{ worker_connections 8192; }}
                http {{
                    access_log off;
                    client_body_temp_path {workdir};
                    keepalive_requests 10000000;
                    keepalive_timeout 600;
                    client_max_body_size 64m;
                    server {{
                        listen 127.0.0.1:{port};
                        location / {{ return 200 "ok"; }}
                    }}
                }}
                """
            )
        )
        command = [nginx, "-p", str(workdir), "-c", str(conf), "-g", "daemon off; master_process off;"]
        kind = "nginx (return 200)"
    else:
        command = [sys.executable, __file__, "--serve-http", str(port)]
        kind = "aiohttp"
    process = subprocess.Popen(command, start_new_session=True)
    wait_listening(port)
    return process, port, kind


def start_grpc_endpoint() -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve-grpc", str(port)], start_new_session=True)
    wait_listening(port)
    return process, port, "grpc.aio generic handler"


def wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the trivial endpoint did not listen on 127.0.0.1:{port} within {timeout_s} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- the machine's own wake-up lateness ------------------------------------------------------------
def wakeup_floor(seconds: float = 3.0, rate: float = 300.0) -> dict[str, float]:
    """Lateness of a bare timerfd sleep (Poisson instants at `rate`, timer slack 1 us, nothing else
    to do): what the kernel and the virtual machine add to any generator's wake-ups, the floor under
    every lateness in the table."""
    import select

    import numpy as np

    from loadtest._timerfd import Timerfd, tighten_timer_slack

    tighten_timer_slack()
    timer, poller = Timerfd(), select.epoll()
    poller.register(timer.fd, select.EPOLLIN)
    rng = np.random.default_rng(0)
    late, end = [], time.monotonic_ns() + int(seconds * 1e9)
    while time.monotonic_ns() < end:
        due = time.monotonic_ns() + int(rng.exponential(1e9 / rate))
        timer.arm(due)
        poller.poll(1.0)
        timer.consume()
        late.append((time.monotonic_ns() - due) / 1e6)
    timer.close()
    poller.close()
    values = np.array(late)
    return {"p50_ms": round(float(np.percentile(values, 50)), 3),
            "p99_ms": round(float(np.percentile(values, 99)), 3),
            "max_ms": round(float(values.max()), 3), "wakeups": len(values)}


# -- our generator ------------------------------------------------------------------------------
def step_rates(
    protocol: str, port: int, rates: list[int], duration_s: float, out: Path, endpoint_pid: int | None = None
) -> list[dict[str, Any]]:
    """Our generator at each rate until it falls behind. `endpoint_pid`: the endpoint's CPU is recorded
    per step (near 100 %: the endpoint, not the generator, sets the limit)."""
    import psutil

    from loadtest import LoadSettings, run_load

    steps = []
    for rate in rates:
        settings = LoadSettings(
            server="torchserve",  # raw float32 POST /predictions/linear, or the TorchServe gRPC method
            protocol=protocol,  # type: ignore[arg-type]
            port=port,
            rate=rate,
            duration_s=duration_s,
            warmup_s=0.5,
            features=FEATURES,
            max_in_flight=1024,
            lateness_p99_limit_ms=VALIDITY_LATENESS_P99_MS,
            run=f"capacity-{protocol}-{rate}",
        )
        load_before = os.getloadavg()[0]
        endpoint = psutil.Process(endpoint_pid) if endpoint_pid else None
        endpoint_before = sum(endpoint.cpu_times()[:2]) if endpoint else 0.0
        summary = run_load(settings, out / f"{protocol}-{rate}", progress=False)
        endpoint_cpu = (
            round(100 * (sum(endpoint.cpu_times()[:2]) - endpoint_before) / (duration_s + 0.5), 1)
            if endpoint else None
        )
        errors = summary.counts["error"] + summary.counts["timeout"]
        p99 = summary.lateness_ms["p99"]
        keeps_up = (
            summary.achieved_send_rate >= KEEPS_UP * summary.achieved_arrival_rate
            and summary.counts["dropped"] == 0
            and errors == 0
        )
        sent = summary.counts["ok"] + errors
        cpu_us = (
            1e6 * summary.generator_cpu_percent_total / 100 / summary.achieved_send_rate
            if summary.achieved_send_rate > 0
            else None
        )
        step = {
            "rate": rate,
            "achieved_send_rate": round(summary.achieved_send_rate, 1),
            "ok": summary.counts["ok"],
            "errors": errors,
            "dropped": summary.counts["dropped"],
            "lateness_p50_ms": summary.lateness_ms["p50"],
            "lateness_p99_ms": p99,
            "generator_cpu_percent": round(summary.generator_cpu_percent_total, 1),
            "cpu_us_per_request": round(cpu_us, 1) if cpu_us is not None else None,
            "sent": sent,
            "keeps_up": keeps_up,
            "p99_under_1ms": keeps_up and p99 is not None and p99 < LATENESS_P99_LIMIT_MS,
            "valid": keeps_up and summary.valid,
            "invalid_reasons": summary.invalid_reasons,
            "loadavg_1min": round(os.getloadavg()[0], 2),
            "loadavg_1min_before": round(load_before, 2),
            "endpoint_cpu_percent": endpoint_cpu,
        }
        steps.append(step)
        print(
            f"  {protocol:11s} {rate:>6}/s: sent {step['achieved_send_rate']:>8}/s  lateness p50 "
            f"{(step['lateness_p50_ms'] or 0):6.3f} p99 {(p99 or 0):7.3f} ms  CPU "
            f"{step['generator_cpu_percent']:5.1f}% ({step['cpu_us_per_request'] or 0:.0f} us/req)  "
            f"load {step['loadavg_1min_before']:.1f}->{step['loadavg_1min']:.1f}  "
            f"endpoint CPU {endpoint_cpu}%  "
            f"{'keeps up' if keeps_up else 'FALLS BEHIND'}{', valid' if step['valid'] else ''}",
            flush=True,
        )
        if not keeps_up or summary.generator_cpu_percent_total > 95:
            break
    return steps


# -- a compiled open-loop reference: httperf ------------------------------------------------------
def httperf_steps(port: int, rates: list[int], duration_s: float, workdir: Path) -> list[dict[str, Any]]:
    """httperf at each step rate (Poisson session arrivals, one POST per session) until it falls
    behind. Its own report gives the achieved request rate, errors and its CPU time."""
    executable = shutil.which("httperf")
    if executable is None:
        print("  httperf not installed (apt-get install httperf): no compiled reference", flush=True)
        return []
    sessions = workdir / "httperf-session.txt"
    sessions.write_text(f"/predictions/linear method=POST contents='{'a' * 4 * FEATURES}'\n")
    steps = []
    for rate in rates:
        count = max(1, round(rate * duration_s))
        command = [
            executable, "--server", "127.0.0.1", "--port", str(port), "--hog", "--timeout", "5",
            "--add-header", "Content-Type: application/octet-stream\\n",
            f"--wsesslog={count},0,{sessions}", f"--period=e{1 / rate:.9f}",
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=duration_s * 3 + 30)
        except subprocess.TimeoutExpired:  # stuck (e.g. out of descriptors: it selects on at most 1024)
            step = {"rate": rate, "sessions": count, "ok": 0, "errors": None, "duration_s": None,
                    "achieved_send_rate": 0.0, "cpu_us_per_request": None, "keeps_up": False,
                    "exit_code": None, "note": f"did not finish within {duration_s * 3 + 30:g} s"}
            steps.append(step)
            print(f"  httperf     {rate:>6}/s: did not finish (FALLS BEHIND)", flush=True)
            break
        step = parse_httperf(result.stdout, rate, count)
        step["exit_code"] = result.returncode
        steps.append(step)
        print(
            f"  httperf     {rate:>6}/s: sent {step['achieved_send_rate']:>8}/s  errors {step['errors']:>5}  "
            f"CPU {step['cpu_us_per_request'] or 0:.0f} us/req  "
            f"{'keeps up' if step['keeps_up'] else 'FALLS BEHIND'}",
            flush=True,
        )
        if not step["keeps_up"]:
            break
    return steps


def parse_httperf(report: str, rate: int, count: int) -> dict[str, Any]:
    """httperf's summary: requests, replies, errors, duration, its CPU time (user + system)."""
    import re

    def number(pattern: str) -> float:
        found = re.search(pattern, report)
        return float(found.group(1)) if found else float("nan")

    replies = number(r"Total: connections \d+ requests \d+ replies (\d+)")
    duration = number(r"test-duration ([\d.]+) s")
    errors = number(r"Errors: total (\d+)")
    ok = number(r"Reply status: 1xx=\d+ 2xx=(\d+)")
    cpu_s = number(r"CPU time \[s\]: user ([\d.]+)") + number(r"CPU time \[s\]: user [\d.]+ system ([\d.]+)")
    send_rate = replies / duration if duration and duration == duration else 0.0
    # open loop: all sessions created on their Poisson schedule, so a generator that falls behind
    # stretches the run (the last arrival is due at ~count / rate)
    keeps_up = ok == count and errors == 0 and duration <= 1.05 * count / rate + 0.1
    return {
        "rate": rate,
        "sessions": count,
        "ok": int(ok) if ok == ok else 0,
        "errors": int(errors) if errors == errors else None,
        "duration_s": duration,
        "achieved_send_rate": round(send_rate, 1),
        "cpu_us_per_request": round(1e6 * cpu_s / replies, 1) if replies and cpu_s == cpu_s else None,
        "keeps_up": bool(keeps_up),
    }


# -- stock Locust -------------------------------------------------------------------------------
STOCK_LOCUSTFILE = """
from locust import FastHttpUser, HttpUser, constant, task

BODY = bytes(4 * {features})
HEADERS = {{"Content-Type": "application/octet-stream"}}


class StockHttpUser(HttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post("/predictions/linear", data=BODY, headers=HEADERS)


class StockFastHttpUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post("/predictions/linear", data=BODY, headers=HEADERS)
"""


def stock_locust(user_class: str, port: int, users: int, duration_s: float, workdir: Path) -> dict[str, Any]:
    locustfile = workdir / "stock_locustfile.py"
    locustfile.write_text(STOCK_LOCUSTFILE.format(features=FEATURES))
    prefix = workdir / user_class
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration_s + 1:g}s",
        "--host",
        f"http://127.0.0.1:{port}",
        "--csv",
        str(prefix),
        user_class,
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 120)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    entry = {
        "user_class": user_class.removeprefix("Stock"),
        "users": users,
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "requests_per_s": round(float(row["Requests/s"]), 1),
        "median_ms": float(row["Median Response Time"]),
        "exit_code": result.returncode,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(
        f"  stock Locust {entry['user_class']:13s} ({users} users, closed loop): "
        f"{entry['requests_per_s']:>8}/s",
        flush=True,
    )
    return entry


def highest(steps: list[dict[str, Any]], key: str) -> int | None:
    passing = [s["rate"] for s in steps if s[key]]
    return max(passing) if passing else None


def cpu_per_request_at(steps: list[dict[str, Any]], rate: int) -> float | None:
    """The generator's CPU per request (us) at one step rate, for before/after comparisons."""
    return next((s["cpu_us_per_request"] for s in steps if s["rate"] == rate), None)


def capacity(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "max_rate_lateness_p99_under_1ms": highest(steps, "p99_under_1ms"),
        "max_rate_valid_lateness_p99_under_5ms": highest(steps, "valid"),
        "max_rate_keeping_up": highest(steps, "keeps_up"),
        "steps": steps,
    }


def table_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline rows of one results file: req/s per criterion, CPU per request at 1,000/s."""
    rows = []
    for protocol, label in (("http", "HTTP"), ("grpc", "gRPC")):
        row = results["inferload_open_loop"][protocol]
        rows.append({
            "generator": f"inferload open loop, {label}",
            "p99_under_1ms": row["max_rate_lateness_p99_under_1ms"],
            "p99_under_5ms": row["max_rate_valid_lateness_p99_under_5ms"],
            "keeps_up": row["max_rate_keeping_up"],
            "cpu_us_per_request_at_1000": cpu_per_request_at(row["steps"], 1000),
        })
    reference = results.get("compiled_open_loop_reference")
    if reference and reference["steps"]:
        rows.append({
            "generator": "httperf open loop, HTTP (connection per request)",
            "p99_under_1ms": None, "p99_under_5ms": None,
            "keeps_up": reference["max_rate_keeping_up"],
            "cpu_us_per_request_at_1000": cpu_per_request_at(reference["steps"], 1000),
        })
    for entry in results["stock_locust_closed_loop"]:
        rows.append({
            "generator": f"stock Locust {entry['user_class']} ({entry['users']} users, closed)",
            "p99_under_1ms": None, "p99_under_5ms": None,
            "keeps_up": round(entry["requests_per_s"]), "cpu_us_per_request_at_1000": None,
        })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("One generator process against a trivial loopback endpoint (req/s)")
    print(f"{'generator':52s} {'p99<1ms':>8} {'p99<5ms':>8} {'keeps up':>9} {'CPU us/req @1000/s':>19}")
    for row in rows:
        cpu = row["cpu_us_per_request_at_1000"]
        print(
            f"{row['generator']:52s} {row['p99_under_1ms'] or '-':>8} {row['p99_under_5ms'] or '-':>8} "
            f"{row['keeps_up'] or '-':>9} {cpu if cpu is not None else '-':>19}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="measuring seconds per step")
    parser.add_argument("--max-rate", type=int, default=DEFAULT_RATES[-1])
    parser.add_argument("--users", type=int, default=32, help="stock Locust users (closed loop)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default {RESULTS.name}; {BUSY_RESULTS.name} on a busy machine)")
    parser.add_argument("--rates", default="", help="comma-separated step rates (default: standard steps)")
    parser.add_argument("--before", type=Path, default=None,
                        help="an earlier results file: its table goes into this run's file as `before`")
    parser.add_argument("--no-reference", action="store_true", help="skip the httperf reference")
    parser.add_argument("--serve-http", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-grpc", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_http:
        serve_http_aiohttp(args.serve_http)
        return 0
    if args.serve_grpc:
        serve_grpc(args.serve_grpc)
        return 0

    rates = [int(r) for r in args.rates.split(",") if r] or [r for r in DEFAULT_RATES if r <= args.max_rate]
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "schema": "inferload.benchmark.generator_capacity",
        "schema_version": 1,
        "criteria": {
            "max_rate_lateness_p99_under_1ms": "keeps up and lateness p99 < 1 ms",
            "max_rate_valid_lateness_p99_under_5ms": "keeps up and valid (lateness p99 < 5 ms, CPU < 95 %)",
            "max_rate_keeping_up": "send rate >= 95 % of arrivals, no drops, no errors (lateness ignored)",
            "stock_locust": "closed loop, wait_time = constant(0): its own maximum req/s",
        },
        "one_generator_process": True,
        "body_bytes": 4 * FEATURES,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "note": "2 shared cores: other work on the machine adds lateness; numbers are a lower bound",
        },
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    floor_before = wakeup_floor()
    print(f"this machine's wake-up lateness (bare timerfd): p50 {floor_before['p50_ms']} p99 "
          f"{floor_before['p99_ms']} max {floor_before['max_ms']} ms", flush=True)
    with OtherWork() as other, tempfile.TemporaryDirectory(prefix="inferload-capacity-") as tmp:
        workdir = Path(tmp)
        http, http_port, http_kind = start_http_endpoint(workdir)
        try:
            print(f"HTTP endpoint: {http_kind} on 127.0.0.1:{http_port}", flush=True)
            http_steps = step_rates("rest-binary", http_port, rates, args.duration, workdir / "runs",
                                    http.pid)
            stock = [
                stock_locust(cls, http_port, args.users, args.duration, workdir)
                for cls in ("StockHttpUser", "StockFastHttpUser")
            ]
            reference = [] if args.no_reference else httperf_steps(http_port, rates, args.duration, workdir)
        finally:
            stop(http)
        grpc_server, grpc_port, grpc_kind = start_grpc_endpoint()
        try:
            print(f"gRPC endpoint: {grpc_kind} on 127.0.0.1:{grpc_port}", flush=True)
            grpc_steps = step_rates("grpc", grpc_port, rates, args.duration, workdir / "runs",
                                    grpc_server.pid)
        finally:
            stop(grpc_server)
    results["endpoints"] = {"http": http_kind, "grpc": grpc_kind}
    results["inferload_open_loop"] = {"http": capacity(http_steps), "grpc": capacity(grpc_steps)}
    results["stock_locust_closed_loop"] = stock
    results["compiled_open_loop_reference"] = {
        "tool": "httperf (Debian), --wsesslog one POST per session, --period e (Poisson arrivals), --hog",
        "note": "one TCP connection per request (httperf's open loop creates sessions); ours keep "
        "connections alive. No per-request lateness: keeps up = every session answered 2xx, no errors, "
        "and the run not stretched past 105 % of the schedule",
        "max_rate_keeping_up": highest(reference, "keeps_up"),
        "steps": reference,
    }
    if args.before is not None:
        before = json.loads(args.before.read_text())
        results["before"] = {"file": str(args.before), "created_at": before.get("created_at"),
                             "table": table_of(before)}
    results["table"] = table_of(results)
    results["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["wakeup_lateness"] = {"before": floor_before, "after": wakeup_floor()}
    busy = other.busy_reason
    results["machine"]["busy"] = busy is not None
    results["machine"]["busy_reason"] = busy
    results["machine"]["other_work"] = other.result()
    results["cpu_us_per_request"] = {
        protocol: {str(rate): cpu_per_request_at(steps, rate) for rate in rates}
        for protocol, steps in (("http", http_steps), ("grpc", grpc_steps))
    }
    out = args.out or (BUSY_RESULTS if busy else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    if busy:
        print(f"\nBUSY MACHINE: {busy}. The rates below are a lower bound, not the generator's capacity.")
    if "before" in results:
        print(f"\nBEFORE ({results['before']['file']}, {results['before']['created_at']})")
        print_table(results["before"]["table"])
        print("\nAFTER (this run)")
    print_table(results["table"])
    floor = results["machine"]["wakeup_lateness"]
    print(f"this machine's wake-up lateness p99 (bare timerfd, no work): {floor['before']['p99_ms']} ms "
          f"before, {floor['after']['p99_ms']} ms after: no generator here can be below it")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
