"""An independent reference: perf_analyzer beside `inferload load`, same local server, same Poisson rate.

    python benchmarks/perf_analyzer_reference.py --artifacts DIR [--rate 30] [--duration 15] [--runs 2]
        [--pairs triton:grpc@20,triton:rest-binary@20,triton:rest-json@5,tfserving:grpc,...]

perf_analyzer (the tritonclient 2.41.0 wheel's binary, unpacked by `make setup` into .venv/tools/)
speaks Triton over HTTP and gRPC, TF Serving over gRPC only and TorchServe over HTTP only: the five
default pairs are every server x protocol it speaks against our local servers. `server:protocol@rate`
gives a pair its own Poisson rate (pick one well below that line's saturation; `--rate` otherwise).
For every server one stack is started, and both tools send Poisson arrivals at the pair's rate to it,
in alternating order over `--runs` repetitions (A B, B A, ...: a drifting machine then shows as
run-to-run spread instead of favouring one tool):
- inferload: `loadtest.run_load` (open loop, latency from each request's *scheduled* time; its
  service time, from the actual send, is perf_analyzer's definition) over `--duration` s after a
  warm-up, percentiles by loadtest's one method (nearest rank) over the window's ok requests;
- perf_analyzer: `--request-rate-range R:R:1 --request-distribution poisson`, three measurement windows
  of `--duration`/3 s (its stability rule relaxed, `-s 999`: at 10 % on p99 it rarely held within its
  trials here, and a fixed measured span is what inferload's window is); its own p50/p99 and
  throughput from its CSV, and the same figures recounted from its profile export (every request's
  send and response time): the responses in its last three windows, their latencies from the send.
How far the two agree, per repetition (the two tools' runs are independent measurements): the ratio
perf_analyzer / inferload of p50, p99 and achieved rate, each with a 95 % interval. Latency: each
tool's percentile with loadtest's correlation-aware order-statistic interval at 97.5 % (so both cover
at once with 0.975^2 > 95 %; `window_quantile_interval`, perf_analyzer's from its export), the ratio's
ends the quotient of opposite ends; an open end (too few effective samples for a p99 at that level)
leaves the ratio's end open. Achieved rate: the two response counts as Poisson counts over their
spans, the exact conditional (binomial, Clopper-Pearson) interval of the ratio of two Poisson rates.
Over repetitions: each ratio's range, and whether every repetition's interval holds 1 (agreement
within the noise) or some excludes it (a difference beyond it).
What each tool sends for the "same" protocol differs where perf_analyzer has its own encoding: for
TF Serving it builds its own PredictRequest (from its own random data), for TorchServe it uploads a
file as multipart form data (inferload: a raw octet-stream body); the results file says so per pair.
Triton and TorchServe get one standard-normal float32 row from perf_analyzer, as inferload's rows are
drawn (its default "random" data are random bytes, NaN and denormals among them). Its measurement
windows run longer than `-p` (each ends when its statistics are collected): the spans come from its
export's window boundaries, and its CSV's throughput is over those same spans. Written to
benchmarks/results/perf_analyzer_reference.json (and a table, .md) with the other work on the machine
during the run (benchmarks/busy.py, the one busyness rule): a busy run goes to
perf_analyzer_reference.busy.json (.busy.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

from busy import OtherWork  # noqa: E402

from inferload_formats.kinds import Protocol, Server  # noqa: E402
from loadtest import LoadSettings, read_run, run_load  # noqa: E402
from loadtest._percentiles import window_quantile_interval  # noqa: E402
from models.artifacts import ArtifactLayout  # noqa: E402
from models.triton_export import INPUT_NAME  # noqa: E402
from serving import Ports, ServerSettings, Stack, up  # noqa: E402
from serving.triton_install import perf_analyzer_binary, perf_analyzer_env  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
# Every server x protocol perf_analyzer speaks here, each at a rate well below that line's saturation at
# full size on 2 cores (the rates of the committed run; `--pairs` names others).
DEFAULT_PAIRS = ("triton:grpc@20,triton:rest-binary@20,triton:rest-json@5,tfserving:grpc@30,"
                 "torchserve:rest-binary@20")
CONFIDENCE = 0.95  # of each agreement interval
EACH = math.sqrt(CONFIDENCE)  # each tool's own interval: the two runs are independent, both hold at once
# What perf_analyzer sends for each pair, against inferload's body (loadtest/_payloads.py, _oip.py).
ENCODINGS = {
    ("triton", "grpc"): "both: ModelInferRequest with raw_input_contents",
    ("triton", "rest-binary"): "both: the binary tensor extension (JSON header + raw float32)",
    ("triton", "rest-json"): "both: V2 JSON with FP32 data (perf_analyzer: --input-tensor-format json)",
    ("tfserving", "grpc"): "inferload: PredictRequest with tensor_content; perf_analyzer: its own "
    "PredictRequest",
    ("torchserve", "rest-binary"): "inferload: raw float32 application/octet-stream body; perf_analyzer: "
    "the same bytes uploaded as a multipart/form-data file (its only TorchServe input form)",
}
TOOLS = ("inferload", "perf_analyzer")
SPLIT_COLUMNS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
                 "Server Compute Infer", "Server Compute Output", "Client Recv", "Avg latency")


def parse_pairs(text: str, default_rate: float) -> list[tuple[str, str, float]]:
    """`server:protocol[@rate],...` as (server, protocol, rate); a clear refusal for anything else."""
    known = ", ".join(f"{server}:{protocol}" for server, protocol in ENCODINGS)
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, rate_text = item.partition("@")
        server, _, protocol = name.partition(":")
        if (server, protocol) not in ENCODINGS:
            raise SystemExit(f"--pairs: {name!r} is not a server:protocol perf_analyzer speaks here; "
                             f"choose from {known}")
        try:
            rate = float(rate_text) if rate_text else default_rate
        except ValueError:
            raise SystemExit(f"--pairs: {item!r}: after @ comes a rate in requests per second, "
                             f"e.g. {name}@20") from None
        if not (math.isfinite(rate) and rate > 0):
            raise SystemExit(f"--pairs: {item!r}: the rate must be a positive number of requests per second")
        pairs.append((server, protocol, rate))
    if not pairs:
        raise SystemExit(f"--pairs: no pair given; choose from {known}")
    return pairs


def _port(ports: Ports, server: str, protocol: str) -> int:
    return int({
        ("triton", "grpc"): ports.triton_grpc, ("triton", "rest-binary"): ports.triton_http,
        ("triton", "rest-json"): ports.triton_http, ("tfserving", "grpc"): ports.tfserving_grpc,
        ("torchserve", "rest-binary"): ports.torchserve_inference,
    }[(server, protocol)])


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def latency_percentiles(latency_ms: np.ndarray, times: np.ndarray, window: tuple[float, float]
                        ) -> dict[str, Any]:
    """p50, p90 and p99 (nearest rank) of one run's latencies with loadtest's correlation-aware interval at
    the `EACH` level; `effective_n`: the independent samples the run is worth for it."""
    found: dict[str, Any] = {}
    for name, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        q = window_quantile_interval(latency_ms, times, window, p, confidence=EACH)
        found[f"{name}_ms"] = _round(q.value)
        found[f"{name}_interval_ms"] = [_round(q.low), _round(q.high)]
        found[f"{name}_effective_n"] = round(q.effective_n, 1)
    return found


def rate_interval(count: int, span_s: float, confidence: float = CONFIDENCE) -> list[float | None]:
    """The exact (Garwood) interval of a Poisson rate from `count` events over `span_s` seconds."""
    from scipy import stats

    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(stats.gamma.ppf(alpha / 2, count)) / span_s
    high = float(stats.gamma.ppf(1 - alpha / 2, count + 1)) / span_s
    return [_round(low, 2), _round(high, 2)]


def inferload_run(stack: Stack, server: str, protocol: str, rate: float, features: int,
                  args: argparse.Namespace, run: int, out: Path) -> dict[str, Any]:
    settings = LoadSettings(
        server=cast(Server, server), protocol=cast(Protocol, protocol),
        port=_port(stack.ports, server, protocol), features=features,
        rate=rate, duration_s=args.duration, warmup_s=args.warmup, seed=run, payload_seed=1 + run,
        lateness_p99_limit_ms=25.0, server_kind=stack.kind_of(server), max_in_flight=256,
    )
    summary = run_load(settings, out, progress=False)
    data = read_run(out)
    records = data.records
    window = records[records["in_window"]]
    ok = window[window["status"] == "ok"]
    start, end = data.window
    window_s = (end - start) / 1e9
    times = ok["scheduled_ns"].to_numpy(dtype=np.float64)
    bounds = (float(start), float(end))
    return {
        "tool": "inferload", "run": run, "requests": int(len(ok)), "errors": int(len(window) - len(ok)),
        "window_s": round(window_s, 2), "achieved_rate": round(len(ok) / window_s, 2),
        "achieved_rate_interval": rate_interval(len(ok), window_s),
        **latency_percentiles(ok["service_ms"].to_numpy(), times, bounds),
        "latency_from_schedule": {
            key: value
            for key, value in latency_percentiles(ok["latency_ms"].to_numpy(), times, bounds).items()
            if not key.endswith("effective_n")
        },
        "lateness_p99_ms": _round(window_quantile_interval(
            window["lateness_ms"].to_numpy(), window["scheduled_ns"].to_numpy(dtype=np.float64), bounds,
            99.0).value),
        "generator_valid": bool(summary.valid),
    }


def instance(features: int, path: Path) -> Path:
    """One input row as raw little-endian float32, drawn as inferload draws its bodies' rows (standard
    normal): perf_analyzer's default "random" data are random bytes (NaN, Inf and denormals among them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.random.default_rng(1).standard_normal(features, dtype=np.float32).astype("<f4").tofile(path)
    return path


def perf_analyzer_args(server: str, protocol: str, port: int, scratch: Path, features: int,
                       own_data: bool = True) -> list[str]:
    """perf_analyzer's arguments for one pair (its --service-kind, protocol and input form). With
    `own_data`, Triton gets the same kind of row inferload sends (a directory holding one raw file named
    after the input, perf_analyzer's binary input form); TF Serving keeps perf_analyzer's own data."""
    url = f"127.0.0.1:{port}"
    if server == "triton":
        args = ["--service-kind", "triton", "-i", "grpc" if protocol == "grpc" else "http", "-u", url]
        if protocol == "rest-json":
            args += ["--input-tensor-format", "json", "--output-tensor-format", "json"]
        if own_data:
            args += ["--input-data", str(instance(features, scratch / "input-data" / INPUT_NAME).parent)]
        return args
    if server == "tfserving":
        return ["--service-kind", "tfserving", "-i", "grpc", "-u", url]
    data = scratch / "torchserve-input.json"
    row = instance(features, scratch / "instance.bin")
    data.write_text(json.dumps({"data": [{"TORCHSERVE_INPUT": [str(row)]}]}))
    return ["--service-kind", "torchserve", "-i", "http", "-u", url, "--input-data", str(data)]


def perf_analyzer_run(stack: Stack, server: str, protocol: str, rate: float, features: int,
                      args: argparse.Namespace, run: int, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, export = out / "perf_analyzer.csv", out / "profile_export.json"
    window_ms = int(args.duration * 1000 / 3)
    refused = None
    for own_data in (True, False):  # perf_analyzer's own random data only if it refused our row
        command = [
            str(perf_analyzer_binary()), "-m", "linear", "-b", "1",
            *perf_analyzer_args(server, protocol, _port(stack.ports, server, protocol), out, features,
                                own_data),
            "--request-rate-range", f"{rate:g}:{rate:g}:1", "--request-distribution", "poisson",
            "--measurement-mode", "time_windows", "-p", str(window_ms), "--max-trials", "10",
            "--stability-percentage", "999", "--percentile", "99", "--max-threads", "16",
            "-f", str(csv_path), "--profile-export-file", str(export),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=perf_analyzer_env(), timeout=600)
        (out / "perf_analyzer.log").write_text(done.stdout + done.stderr)
        if done.returncode == 0 or server != "triton" or not own_data:
            break
        refused = (done.stdout + done.stderr)[-400:]
    if done.returncode != 0:
        return {"tool": "perf_analyzer", "run": run, "error": (done.stdout + done.stderr)[-800:]}
    with open(csv_path, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    measured = window_requests(json.loads(export.read_text()))
    found: dict[str, Any] = {"requests": None}
    if measured is not None:
        sends_ns, latency_ms, (start, end) = measured
        span_s = (end - start) / 1e9
        found = {
            "requests": int(latency_ms.size), "window_s": round(span_s, 3),
            "achieved_rate": round(latency_ms.size / span_s, 2),
            "achieved_rate_interval": rate_interval(int(latency_ms.size), span_s),
            **latency_percentiles(latency_ms, sends_ns, (float(start), float(end))),
        }
    return {
        "tool": "perf_analyzer", "run": run, **found,
        # its own figures, from its CSV (latency from the send; its throughput over its own durations)
        "csv": {"achieved_rate": round(float(row["Inferences/Second"]), 2),
                "p50_ms": round(float(row["p50 latency"]) / 1000, 3),
                "p90_ms": round(float(row["p90 latency"]) / 1000, 3),
                "p99_ms": round(float(row["p99 latency"]) / 1000, 3),
                # its average latency split (us): its client's send and receive, network + server, and
                # (Triton) the server's own queue and compute, from Triton's statistics
                "split_us": {key: float(value) for key, value in row.items()
                             if key in SPLIT_COLUMNS and value not in (None, "")}},
        "input": ("perf_analyzer's own random data" if server == "tfserving" or refused is not None
                  else "one standard-normal float32 row, as inferload's rows are drawn"),
        **({"own_data_refused": refused} if refused is not None else {}),
        "command": " ".join(command[1:]),
    }


def window_requests(export: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
    """From perf_analyzer's profile export: the requests with a response inside its last three
    measurement windows (what its figures cover), as their send times (ns), their latencies (ms, from
    the send to the last response) and those windows' bounds (ns). None when the export has no windows."""
    experiments = export.get("experiments") or []
    if not experiments:
        return None
    last = experiments[-1]
    bounds = last.get("window_boundaries") or []
    if len(bounds) < 4:
        return None
    start, end = int(bounds[-4]), int(bounds[-1])
    pairs = [(int(r["timestamp"]), int(r["response_timestamps"][-1])) for r in last.get("requests", [])
             if r.get("response_timestamps") and start <= r["response_timestamps"][-1] <= end]
    sends = np.array([send for send, _ in pairs], dtype=np.float64)
    latency_ms = np.array([(done - send) / 1e6 for send, done in pairs], dtype=np.float64)
    return sends, latency_ms, (start, end)


def latency_ratio(theirs: dict[str, Any], ours: dict[str, Any], name: str) -> dict[str, Any]:
    """perf_analyzer's percentile over inferload's, the interval's ends the quotients of opposite ends
    (each tool's interval at `EACH`, independent runs: both hold with CONFIDENCE); None: an open end."""
    value, (t_low, t_high), (o_low, o_high) = (
        theirs[f"{name}_ms"], theirs[f"{name}_interval_ms"], ours[f"{name}_interval_ms"])
    if value is None or not ours[f"{name}_ms"]:
        return {"ratio": None, "interval": [None, None]}
    low = t_low / o_high if t_low is not None and o_high else None
    high = t_high / o_low if t_high is not None and o_low else None
    return {"ratio": round(value / ours[f"{name}_ms"], 3), "interval": [_round(low), _round(high)]}


def rate_ratio(count_a: int, span_a: float, count_b: int, span_b: float,
               confidence: float = CONFIDENCE) -> dict[str, Any]:
    """(count_a / span_a) / (count_b / span_b) with the exact conditional interval of a ratio of two
    Poisson rates: given n = a + b, a ~ Binomial(n, p) with p = rho span_a / (rho span_a + span_b),
    rho the rate ratio; the Clopper-Pearson interval of p, mapped by rho = p / (1 - p) * span_b / span_a.
    Worked: 100 and 100 over equal spans: ratio 1, p in [0.4287, 0.5713], so rho in [0.750, 1.332]."""
    from scipy import stats

    alpha = 1.0 - confidence
    a, b = count_a, count_b
    p_low = 0.0 if a == 0 else float(stats.beta.ppf(alpha / 2, a, b + 1))
    p_high = 1.0 if b == 0 else float(stats.beta.ppf(1 - alpha / 2, a + 1, b))

    def rho(p: float) -> float:
        return p / (1 - p) * span_b / span_a

    return {"ratio": None if b == 0 else round((a / span_a) / (b / span_b), 3),
            "interval": [_round(rho(p_low)), None if p_high >= 1.0 else _round(rho(p_high))]}


def agreement_in_run(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """How far perf_analyzer's run is from inferload's run of the same repetition."""
    return {
        "p50_ms": latency_ratio(theirs, ours, "p50"),
        "p90_ms": latency_ratio(theirs, ours, "p90"),
        "p99_ms": latency_ratio(theirs, ours, "p99"),
        "achieved_rate": rate_ratio(theirs["requests"], theirs["window_s"],
                                    ours["requests"], ours["window_s"]),
    }


def holds_one(interval: list[float | None]) -> bool:
    """Does the interval hold 1 (no difference beyond this run's noise)? An open end holds anything."""
    low, high = interval
    return (low is None or low <= 1.0) and (high is None or high >= 1.0)


def verdict(runs: list[dict[str, Any]]) -> str:
    """Over repetitions: agreement within the noise only where every interval is closed and holds 1; a
    difference where some interval excludes 1; otherwise no verdict (an open end: too few samples)."""
    beyond = [r for r in runs if r["ratio"] is not None and not holds_one(r["interval"])]
    if not runs or any(r["ratio"] is None for r in runs):
        return "not measured in every repetition"
    if not beyond:
        open_ = sum(1 for r in runs if None in r["interval"])
        if open_:
            return (f"no difference shown, but no agreement either: {open_} of {len(runs)} intervals open "
                    "(too few effective samples for that end)")
        return "agree within the noise in every repetition"
    above = sum(1 for r in beyond if r["interval"][0] is not None and r["interval"][0] > 1.0)
    below = len(beyond) - above
    sides = ", ".join(part for part in (f"{above} with perf_analyzer higher" if above else "",
                                        f"{below} with perf_analyzer lower" if below else "") if part)
    return f"differ beyond the noise in {len(beyond)} of {len(runs)} repetitions ({sides})"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per tool: medians over runs and the run-to-run range; per repetition, perf_analyzer over inferload
    with its interval; over repetitions, the ratios' range and a verdict."""
    tools: dict[str, Any] = {}
    for tool in TOOLS:
        mine = [r for r in rows if r["tool"] == tool and "error" not in r and r.get("requests")]
        tools[tool] = {"runs": len(mine), "requests": [r["requests"] for r in mine]}
        for key in ("p50_ms", "p90_ms", "p99_ms", "achieved_rate"):
            values = [r[key] for r in mine if r.get(key) is not None]
            if values:
                tools[tool][key] = {"median": float(np.median(values)), "range": [min(values), max(values)]}
    per_run = []
    for run in sorted({r["run"] for r in rows}):
        pair = {r["tool"]: r for r in rows if r["run"] == run and "error" not in r and r.get("requests")}
        if set(pair) == set(TOOLS):
            per_run.append({"run": run, **agreement_in_run(pair["perf_analyzer"], pair["inferload"])})
    agreement: dict[str, Any] = {}
    for key in ("p50_ms", "p90_ms", "p99_ms", "achieved_rate"):
        runs = [r[key] for r in per_run]
        ratios = [r["ratio"] for r in runs if r["ratio"] is not None]
        agreement[key] = {
            "perf_analyzer_over_inferload": ratios,
            "intervals": [r["interval"] for r in runs],
            "range": [min(ratios), max(ratios)] if ratios else None,
            "verdict": verdict(runs),
        }
    return {"tools": tools, "agreement_per_run": per_run, "agreement": agreement}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _end(value: float | None) -> str:
    return "open" if value is None else f"{value:.2f}"


def _ratios(entry: dict[str, Any]) -> str:
    return "; ".join(
        f"{ratio:.2f} [{_end(low)}, {_end(high)}]"
        for ratio, (low, high) in zip(entry["perf_analyzer_over_inferload"], entry["intervals"], strict=True))


def _median(tools: dict[str, Any], tool: str, key: str) -> str:
    return _ms(tools[tool].get(key, {}).get("median"))


def table(document: dict[str, Any]) -> str:
    """The results as a Markdown table (medians over repetitions; ratios per repetition, 95 % interval)."""
    lines = [
        f"# perf_analyzer beside inferload ({document['status']}, {document['measured_at']})",
        "",
        f"Model {document['model']['classes']} x {document['model']['features']} float32, batch 1; "
        f"{document['settings']['runs']} repetitions per pair (tool order alternating), "
        f"{document['settings']['duration_s']:g} s measured per run (perf_analyzer: 3 windows of a third), "
        f"other work on the machine: {document['other_work']['other_cpu_percent_mean']} % of one core on "
        f"average, {document['other_work']['other_cpu_percent_max']} % at most "
        f"({'busy' if document['other_work']['busy'] else 'not busy'} by benchmarks/busy.py). Latency from "
        "the send to the response for both tools (medians over repetitions, ms); requests per run in the "
        "windows; ratio perf_analyzer / inferload per repetition with its 95 % interval (open: too few "
        "effective samples for that end).",
        "",
        "| server | protocol | rate/s | requests (inferload; perf_analyzer) | p50 inferload "
        "| p50 perf_analyzer | p50 ratio [95 %] | p90 inferload | p90 perf_analyzer | p90 ratio [95 %] "
        "| p99 inferload | p99 perf_analyzer | p99 ratio [95 %] "
        "| achieved/s inferload | achieved/s perf_analyzer (its CSV) | rate ratio [95 %] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in document["pairs"]:
        tools, agreement = pair["tools"], pair["agreement"]

        csv_rates = [r["csv"]["achieved_rate"] for r in pair["rows"]
                     if r["tool"] == "perf_analyzer" and "csv" in r]
        cells = [f"{pair['server']} ({pair['server_kind']})", pair["protocol"], f"{pair['rate']:g}",
                 f"{', '.join(map(str, tools['inferload']['requests']))}; "
                 f"{', '.join(map(str, tools['perf_analyzer']['requests']))}"]
        for key in ("p50_ms", "p90_ms", "p99_ms"):
            cells += [_median(tools, "inferload", key), _median(tools, "perf_analyzer", key),
                      _ratios(agreement[key])]
        theirs_csv = ", ".join(f"{v:g}" for v in csv_rates)
        cells += [_median(tools, "inferload", "achieved_rate"),
                  f"{_median(tools, 'perf_analyzer', 'achieved_rate')} ({theirs_csv})",
                  _ratios(agreement["achieved_rate"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Verdicts (per pair, over repetitions):", ""]
    for pair in document["pairs"]:
        verdicts = "; ".join(f"{key}: {entry['verdict']}" for key, entry in pair["agreement"].items())
        lines.append(f"- {pair['server']} {pair['protocol']}: {verdicts}")
    lines += ["", "perf_analyzer's own split of its average latency (its CSV, ms, per repetition: client "
              "send / network + server / client receive; Triton's own queue + compute from its "
              "statistics):", ""]
    for pair in document["pairs"]:
        splits = [r["csv"].get("split_us", {}) for r in pair["rows"]
                  if r["tool"] == "perf_analyzer" and "csv" in r]
        text = "; ".join(
            " / ".join(f"{split.get(key, float('nan')) / 1000:.2f}" for key in
                       ("Client Send", "Network+Server Send/Recv", "Client Recv"))
            + (f" (server {sum(split.get(key, 0.0) for key in SPLIT_COLUMNS[2:6]) / 1000:.2f})"
               if "Server Queue" in split else "")
            + f", average {split.get('Avg latency', float('nan')) / 1000:.2f}"
            for split in splits if split)
        lines.append(f"- {pair['server']} {pair['protocol']}: {text or 'not in its CSV'}")
    lines += ["", "What each tool sends:", ""]
    lines += [f"- {pair['server']} {pair['protocol']}: {pair['encoding']}" for pair in document["pairs"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=30.0,
                        help="Poisson arrivals per second, both tools, for a pair without its own @rate")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="inferload's window; perf_analyzer: 3 windows of a third of it")
    parser.add_argument("--warmup", type=float, default=3.0, help="inferload's warm-up before its window")
    parser.add_argument("--server-warmup", type=float, default=15.0,
                        help="seconds of load, measured by neither tool, on each freshly started server")
    parser.add_argument("--runs", type=int, default=2,
                        help="repetitions per pair, alternating which tool goes first")
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="server:protocol[@rate], comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (the table beside it, .md)")
    args = parser.parse_args()
    pairs = parse_pairs(args.pairs, args.rate)
    if not perf_analyzer_binary().is_file():
        raise SystemExit(f"no perf_analyzer at {perf_analyzer_binary()}: run `make setup`")
    layout = ArtifactLayout(args.artifacts)
    features = layout.check().spec().features
    cpus = len(os.sched_getaffinity(0))
    results = []
    with OtherWork() as other, tempfile.TemporaryDirectory(prefix="perf-analyzer-reference-") as scratch:
        for server in dict.fromkeys(server for server, _, _ in pairs):
            print(f"starting {server} ...", file=sys.stderr, flush=True)
            stack = up(layout, servers=[server], settings=ServerSettings(), ports=Ports.free(),
                       state_dir=Path(scratch) / server / "state", timeout_s=300)
            try:
                first = next((protocol, rate) for s, protocol, rate in pairs if s == server)
                if args.server_warmup > 0:  # a fresh server's first seconds go to neither tool
                    print(f"  {server}: warming up for {args.server_warmup:g} s ...", file=sys.stderr,
                          flush=True)
                    warm = argparse.Namespace(**{**vars(args), "duration": args.server_warmup, "warmup": 1.0})
                    inferload_run(stack, server, first[0], first[1], features, warm, 99,
                                  Path(scratch) / server / "server-warmup")
                for pair_server, protocol, rate in pairs:
                    if pair_server != server:
                        continue
                    rows = []
                    for run in range(args.runs):
                        order = TOOLS if run % 2 == 0 else TOOLS[::-1]
                        for tool in order:
                            out = Path(scratch) / server / protocol / f"{tool}-{run}"
                            print(f"  {server} {protocol} @ {rate:g}/s run {run}: {tool} ...",
                                  file=sys.stderr, flush=True)
                            measure = inferload_run if tool == "inferload" else perf_analyzer_run
                            rows.append({**measure(stack, server, protocol, rate, features, args, run, out),
                                         "position": order.index(tool)})
                    results.append({"server": server, "protocol": protocol, "rate": rate,
                                    "server_kind": stack.kind_of(server),
                                    "encoding": ENCODINGS[(server, protocol)], "rows": rows,
                                    **summarize(rows)})
            finally:
                stack.down()
    busy = bool(other.result()["busy"])
    document = {
        "benchmark": "perf_analyzer_reference",
        "status": "busy" if busy else "quiet",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": cpus, "platform": platform.platform(), "python": platform.python_version()},
        "other_work": other.result(),
        "model": layout.spec().to_dict(),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup,
                     "server_warmup_s": args.server_warmup, "runs": args.runs,
                     "rates": {f"{s}:{p}": r for s, p, r in pairs},
                     "perf_analyzer": "tritonclient 2.41.0 (manylinux wheel)",
                     "latency": "both tools' p50/p99 are from the request's send to its response "
                                "(inferload: service time; perf_analyzer: recounted from its profile export, "
                                "its CSV's own figures beside them); inferload's latency from the schedule "
                                "is given beside it",
                     "agreement": f"ratio perf_analyzer / inferload per repetition with a {CONFIDENCE:.0%} "
                                  f"interval: latency from each tool's correlation-aware order-statistic "
                                  f"interval at {EACH:.4f}, rate from the exact conditional interval of two "
                                  "Poisson counts"},
        "pairs": results,
    }
    name = "perf_analyzer_reference.busy.json" if busy else "perf_analyzer_reference.json"
    path = args.out or RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    markdown = table(document)
    path.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"written to {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
