"""The cost of TLS: the same open-loop line with and without TLS, interleaved, with an A/A control.

    python benchmarks/tls_cost.py --artifacts /tmp/inferload-full [--rate 20 --duration 12 --reps 3]

Starts two stacks on free loopback ports, one plaintext and one with TLS (TorchServe: HTTPS and gRPC
TLS; TF Serving: gRPC TLS via --ssl_config_file; certificates from serving/certs.py), then, per
repetition and in a seeded random order, runs each line three times: `plain`, `tls`, and `plain`
again against the same plaintext stack (`plain_again`, the A/A control: how far two identical runs
land apart here). Lines: TorchServe REST-binary and gRPC, TF Serving gRPC (its REST API has no TLS).
Per run: p50 and p90 and mean latency of the ok requests in the window (nearest rank, loadtest's
one method), CPU load before and after. Writes benchmarks/results/tls_cost[.<label>].json and prints
the TLS difference beside the A/A difference: a difference within the A/A spread is not claimed.
Measure on a quiet machine (`/work/bin/quiet` here): other work beside it moves both numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loadtest import LoadSettings, read_run, run_load
from loadtest._percentiles import percentile
from models.artifacts import ArtifactLayout
from serving import Ports, ServerSettings, up
from serving.certs import make_tls_material
from serving.settings import ServerTls

RESULTS = Path(__file__).resolve().parent / "results"
LINES = (("torchserve", "rest-binary"), ("torchserve", "grpc"), ("tfserving", "grpc"))
VARIANTS = ("plain", "tls", "plain_again")


def _port(ports: Ports, server: str, protocol: str) -> int:
    if server == "tfserving":
        return ports.tfserving_grpc if protocol == "grpc" else ports.tfserving_rest
    return ports.torchserve_grpc if protocol == "grpc" else ports.torchserve_inference


def _settings(server: str, protocol: str, ports: Ports, *, tls: Path | None, features: int, rate: float,
              duration: float, seed: int) -> LoadSettings:
    scheme = "grpc" if protocol == "grpc" else "http"
    scheme += "s" if tls else ""
    metadata_port = ports.tfserving_rest if server == "tfserving" else ports.torchserve_management
    metadata_scheme = "https" if tls and server == "torchserve" else "http"
    return LoadSettings.model_validate({
        "server": server, "protocol": protocol,
        "host": f"{scheme}://127.0.0.1:{_port(ports, server, protocol)}",
        "metadata_url": f"{metadata_scheme}://127.0.0.1:{metadata_port}", "rate": rate,
        "duration_s": duration,
        "warmup_s": 2.0, "features": features, "seed": seed, "lateness_p99_limit_ms": 1000.0,
        "max_in_flight": 64, "run": "tls-cost", "security": {"ca_cert": str(tls)} if tls else {},
    })


def _measure(settings: LoadSettings, out: Path) -> dict[str, float | int | None]:
    summary = run_load(settings, out, progress=False)
    data = read_run(out)
    window = data.records[data.records["in_window"] & (data.records["status"] == "ok")]
    latency = window["latency_ms"].to_numpy(dtype=float)
    return {
        "ok": int(len(latency)),
        "errors": int(summary.counts["error"] + summary.counts["timeout"]),
        "p50_ms": percentile(latency, 50),
        "p90_ms": percentile(latency, 90),
        "mean_ms": float(latency.mean()) if len(latency) else None,
        "lateness_p99_ms": summary.lateness_ms["p99"],
        "valid": summary.valid,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="results file suffix, e.g. small / full")
    args = parser.parse_args(argv)
    features = ArtifactLayout(args.artifacts).spec().features
    work = Path(tempfile.mkdtemp(prefix="inferload-tls-cost-"))
    material = make_tls_material(work / "tls", names=("127.0.0.1", "localhost"))
    tls = ServerTls(cert_file=str(material.server.cert), key_file=str(material.server.key),
                    ca_file=str(material.ca_cert))
    load_before = os.getloadavg()
    plain_ports, tls_ports = Ports.free(), Ports.free()
    runs: list[dict[str, object]] = []
    with up(args.artifacts, settings=ServerSettings(), ports=plain_ports, state_dir=work / "plain",
            timeout_s=400) as _plain, \
         up(args.artifacts, settings=ServerSettings(tls=tls), ports=tls_ports, state_dir=work / "tls",
            timeout_s=400) as _tls:
        order = random.Random(args.seed)
        for rep in range(args.reps):
            plan = [(line, variant) for line in LINES for variant in VARIANTS]
            order.shuffle(plan)
            for (server, protocol), variant in plan:
                ports = tls_ports if variant == "tls" else plain_ports
                ca = material.ca_cert if variant == "tls" else None
                settings = _settings(server, protocol, ports, tls=ca, features=features, rate=args.rate,
                                     duration=args.duration, seed=args.seed + rep)
                result = _measure(settings, work / f"{server}-{protocol}-{variant}-{rep}")
                runs.append({"server": server, "protocol": protocol, "variant": variant, "rep": rep,
                             **result})
                print(f"rep {rep} {server:<10} {protocol:<11} {variant:<11} p50 {result['p50_ms']:.2f} ms "
                      f"p90 {result['p90_ms']:.2f} ms mean {result['mean_ms']:.2f} ms ok {result['ok']}",
                      flush=True)
    load_after = os.getloadavg()
    lines = []
    for server, protocol in LINES:
        def values(variant: str, key: str, server: str = server, protocol: str = protocol) -> list[float]:
            wanted = (server, protocol, variant)
            return [float(r[key]) for r in runs  # type: ignore[arg-type]
                    if (r["server"], r["protocol"], r["variant"]) == wanted and r[key] is not None]

        entry: dict[str, object] = {"server": server, "protocol": protocol}
        for key in ("p50_ms", "p90_ms", "mean_ms"):
            plain, with_tls, again = values("plain", key), values("tls", key), values("plain_again", key)
            tls_diff = [b - a for a, b in zip(plain, with_tls, strict=True)]
            aa_diff = [b - a for a, b in zip(plain, again, strict=True)]
            entry[key] = {
                "plain": plain, "tls": with_tls, "plain_again": again,
                "tls_minus_plain": tls_diff, "aa_minus_plain": aa_diff,
                "tls_added_mean": statistics.fmean(tls_diff),
                "aa_spread": max(abs(d) for d in aa_diff),
                # claimed only when every repetition's TLS difference exceeds the largest A/A difference
                "beyond_aa": all(d > max(abs(x) for x in aa_diff) for d in tls_diff),
            }
        lines.append(entry)
        p50 = entry["p50_ms"]
        assert isinstance(p50, dict)
        print(f"{server:<10} {protocol:<11} p50 TLS - plain per rep "
              f"{[round(d, 2) for d in p50['tls_minus_plain']]}"
              f" ms; A/A {[round(d, 2) for d in p50['aa_minus_plain']]} ms; beyond A/A: {p50['beyond_aa']}")
    document = {
        "benchmark": "tls_cost", "written_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "features": features,
        "rate": args.rate, "duration_s": args.duration, "reps": args.reps, "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
                    "python": sys.version.split()[0]},
        "lines": lines, "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"tls_cost{'.' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
