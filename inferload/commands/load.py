"""`inferload load`: one open- or closed-loop load run against a running server, headless.

Bad input (unknown server/protocol, non-positive rate or duration, a malformed host, an
unreachable server, a server serving another model or input width) exits 2 with a clear message
before any load is sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load",
        help="send open-loop Poisson (or closed-loop) load to one server x protocol; write records",
        description="Send load to a running server and write requests.<k>.jsonl, payloads.json and load.json "
        "into --out. Open loop (--rate) is free of coordinated omission; closed loop (--concurrency) "
        "reproduces fixed-concurrency sweeps.",
    )
    parser.add_argument("--server", required=True, help="tfserving | torchserve | triton (any V2 server)")
    parser.add_argument("--protocol", required=True, help="rest-json | rest-binary | grpc")
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, help="open loop: target arrivals per second (Poisson)")
    load.add_argument("--concurrency", type=int, help="closed loop: requests kept in flight")
    parser.add_argument("--duration", type=float, required=True, help="measuring window in seconds")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds of load before the window")
    parser.add_argument("--batch", type=int, default=1, help="instances per request")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--features", type=int, help="features per instance (default 262144)")
    size.add_argument("--artifacts", type=Path, help="artifacts dir: read features from its model.json")
    parser.add_argument("--processes", type=int, default=1, help="load processes (each takes rate/N)")
    parser.add_argument(
        "--max-in-flight", type=int, default=512, help="open loop: in-flight bound per process"
    )
    parser.add_argument("--seed", type=int, default=0, help="arrival schedule seed")
    parser.add_argument("--payload-seed", type=int, default=1, help="input values / payload choice seed")
    parser.add_argument("--repeat-share", type=float, metavar="F",
                        help="share of requests resending an input already sent, the rest distinct inputs "
                             "(0-1; for a cache in front); default: uniform choice over the pool")
    parser.add_argument("--zipf", type=float, metavar="S",
                        help="instead of --repeat-share: inputs drawn from a catalog with Zipf popularity "
                             "1/k^S (see --catalog)")
    parser.add_argument("--catalog", type=int, default=10_000, metavar="N",
                        help="distinct inputs under --zipf")
    parser.add_argument("--arrival", default="poisson", help="poisson | constant")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the server: host name, IPv4 or IPv6 address, HOST:PORT, http://HOST:PORT; https://HOST:PORT "
        "or grpcs://HOST:PORT for TLS",
    )
    add_security_arguments(parser)
    parser.add_argument("--port", type=int, help="default: the standard port for server x protocol")
    parser.add_argument("--model-name", default="linear", help="model name on the server")
    parser.add_argument(
        "--metadata-url",
        help="where the served model is described, to check its input width before the load: "
        "TF Serving's REST API (http://HOST:8501), TorchServe's management API (http://HOST:8081), a V2 "
        "server's REST or gRPC API (http://HOST:8000, grpc://HOST:8001); default: derived from --host "
        "(the target itself for TF Serving REST and V2 servers, else the standard ports)",
    )
    parser.add_argument(
        "--grpc-service",
        help="V2 servers over gRPC: the service serving ModelInfer (default inference.GRPCInferenceService; "
        "TorchServe's OIP: org.pytorch.serve.grpc.openinference.GRPCInferenceService)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request times out")
    parser.add_argument("--lateness-limit-ms", type=float, default=5.0, help="lateness p99 above it: invalid")
    parser.add_argument("--run-label", default="load", help="run label echoed into the records")
    parser.add_argument("--server-kind", help='label of what serves, e.g. "tfs-compat"')
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="load workers on other hosts to wait for (`inferload load-worker --connect` there); "
        "each takes its share of --rate",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="with --workers: where the workers connect")
    parser.add_argument("--join-timeout", type=float, default=120.0, metavar="S", help="wait for --workers")
    parser.add_argument("--secret-file", metavar="PATH",
                        help="with --workers: the run's shared secret (made there, mode 0600, if "
                             "missing; default: "
                        "INFERLOAD_CLUSTER_SECRET, else a new file whose path is printed); workers "
                        "without it are "
                        "refused")
    parser.add_argument("--cpus", default="auto", metavar="LIST", help=_cpus_help())
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("logs/servers"),
        help="servers started by `serve up` here: --cpus must not overlap their CPUs",
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run)


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    """TLS and credential flags (loadtest/_security.py). Secrets are never flag values: a flag names
    where the secret is (`env:VARIABLE` or `file:PATH`), since a value would show in `ps`."""
    group = parser.add_argument_group("TLS and credentials (secrets come from files or the environment)")
    group.add_argument("--tls", action="store_true", help="TLS without a scheme in --host (same as https://)")
    group.add_argument("--ca-cert", metavar="PEM", help="CA certificate(s) to verify the server with "
                       "(default: the system's)")
    group.add_argument("--client-cert", metavar="PEM", help="client certificate for mutual TLS")
    group.add_argument("--client-key", metavar="PEM", help="key of --client-cert")
    group.add_argument("--server-name", metavar="NAME", help="name to verify in the server's certificate "
                       "(and send as SNI) when it is not the host connected to")
    group.add_argument("--token", metavar="env:VAR|file:PATH", help="bearer token: Authorization header "
                       "(REST) and authorization metadata (gRPC)")
    group.add_argument("--torchserve-key-file", metavar="PATH", help="TorchServe's key_file.json: its "
                       "inference key for requests, management key for its management API")
    group.add_argument("--header", action="append", default=[], metavar="NAME=env:VAR|file:PATH",
                       help="one more header (REST) / metadata entry (gRPC); repeatable")


def security_settings(args: argparse.Namespace) -> dict[str, object] | None:
    """The --tls/--ca-cert/... flags as `loadtest.Security` fields (None: none given); UsageError for a
    secret given as a value."""
    from inferload.cli import UsageError
    from loadtest._security import security_fields

    try:
        return security_fields(
            host=args.host, tls=args.tls, ca_cert=args.ca_cert, client_cert=args.client_cert,
            client_key=args.client_key, server_name=args.server_name, token=args.token,
            torchserve_key_file=args.torchserve_key_file, headers=args.header,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cpus_help() -> str:
    from inferload.cpus import cpu_flag_help

    return cpu_flag_help("load")


def _cpus(args: argparse.Namespace) -> tuple[int, ...] | None:
    from inferload.cli import UsageError
    from inferload.cpus import load_cpus
    from serving.cpusets import CpuSetError

    try:
        return load_cpus(args.cpus, state_dir=args.state_dir)
    except CpuSetError as exc:
        raise UsageError(str(exc)) from None


def _features(args: argparse.Namespace) -> int | None:
    from inferload.cli import UsageError

    if args.features is not None:
        return int(args.features)
    if args.artifacts is None:
        return None
    from inferload_formats import SchemaError
    from models.artifacts import ModelJson

    model_json = args.artifacts / "model.json"
    if not model_json.is_file():
        raise UsageError(f"--artifacts {args.artifacts}: no model.json there; run `inferload export` first")
    try:
        return ModelJson.read(model_json).features
    except SchemaError as exc:
        raise UsageError(f"--artifacts {args.artifacts}: {exc}") from None


def build_settings(args: argparse.Namespace):  # -> loadtest.LoadSettings
    """Turn CLI flags into validated LoadSettings (UsageError naming the flag on bad input)."""
    from pydantic import ValidationError

    from inferload.cli import UsageError
    from loadtest import LoadSettings, describe_validation_error

    values: dict[str, object] = {
        "server": args.server,
        "protocol": args.protocol,
        "host": args.host,
        "port": args.port,
        "mode": "open" if args.rate is not None else "closed",
        "rate": args.rate,
        "concurrency": args.concurrency,
        "arrival": args.arrival,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "batch": args.batch,
        "processes": args.processes,
        "max_in_flight": args.max_in_flight,
        "seed": args.seed,
        "payload_seed": args.payload_seed,
        "repeat_share": args.repeat_share,
        "zipf_s": args.zipf,
        "catalog_size": args.catalog,
        "timeout_s": args.timeout,
        "lateness_p99_limit_ms": args.lateness_limit_ms,
        "run": args.run_label,
        "server_kind": args.server_kind,
        "model_name": args.model_name,
        "metadata_url": args.metadata_url,
        "grpc_service": args.grpc_service,
        "cpus": _cpus(args),
    }
    features = _features(args)
    if features is not None:
        values["features"] = features
    security = security_settings(args)
    if security is not None:
        values["security"] = security
    try:
        return LoadSettings.model_validate(values)
    except ValidationError as exc:
        flags = {
            "duration_s": "duration",
            "warmup_s": "warmup",
            "timeout_s": "timeout",
            "run": "run-label",
            "lateness_p99_limit_ms": "lateness-limit-ms",
            "metadata_url": "metadata-url",
            "model_name": "model-name",
            "repeat_share": "repeat-share",
            "zipf_s": "zipf",
            "catalog_size": "catalog",
            "security.ca_cert": "ca-cert",
            "security.client_cert": "client-cert",
            "security.server_name": "server-name",
            "security.torchserve_key_file": "torchserve-key-file",
            "security": "tls/credentials",
            "grpc_service": "grpc-service",
        }
        message = describe_validation_error(exc)
        for field, flag in flags.items():
            message = message.replace(f"{field}:", f"--{flag}:")
        raise UsageError(f"invalid load settings: {message}") from None


def run(args: argparse.Namespace) -> int:
    from inferload.cli import UsageError
    from loadtest import LoadError, TargetError, run_load

    settings = build_settings(args)
    _refuse_oversized_body(settings)
    if settings.resolved_metadata_url is None:
        print(
            f"inferload load: note: the served model is not checked before the load ({settings.server} "
            f"{settings.protocol} at a non-standard port): give --metadata-url to check it",
            file=sys.stderr,
        )
    if args.workers < 0 or (args.workers and not args.listen):
        raise UsageError("--workers N needs --listen HOST:PORT (an address of this host the workers reach)")
    try:
        if args.workers:
            from loadtest._cluster import run_load_cluster

            summary = run_load_cluster(settings, args.out, listen=args.listen, workers=args.workers,
                                       join_timeout_s=args.join_timeout, progress=not args.quiet,
                                       secret_file=args.secret_file)
        else:
            summary = run_load(settings, args.out, progress=not args.quiet)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    except LoadError as exc:
        print(f"inferload load: error: {exc}")
        return 1
    rate = f"{summary.target_rate:g}/s" if summary.target_rate else f"concurrency {summary.concurrency}"
    lateness = summary.lateness_ms
    print(
        f"{summary.server} {summary.protocol} {rate}: sent {summary.achieved_send_rate:.1f}/s, "
        f"ok {summary.counts['ok']}, errors {summary.counts['error']}, timeouts {summary.counts['timeout']}, "
        f"dropped {summary.counts['dropped']}; "
        f"lateness p50 {_ms(lateness['p50'])} p99 {_ms(lateness['p99'])}; "
        f"generator CPU {summary.generator_cpu_percent_total:.0f}%"
    )
    if len(summary.hosts) > 1:
        for host, entry in summary.hosts.items():
            print(f"  {host}: {len(entry['streams'])} stream(s), {entry['rate']:g}/s, {entry['sent']} sent")
    print(f"records in {args.out} ({'VALID' if summary.valid else 'INVALID'})")
    for reason in summary.invalid_reasons:
        print(f"  invalid: {reason}")
    return 0 if summary.valid else 1


def _refuse_oversized_body(settings) -> None:  # settings: loadtest.LoadSettings
    """A body over the server's own limit is refused before anything is sent, naming the limit.

    Only where the limit is the server's own, whoever started it: Triton's (2 GiB - 1 over REST and
    gRPC). TorchServe's and tfs-compat's limits are what inferload configures (matrices skip cells
    over them).
    """
    from inferload.cells import estimate_body_bytes
    from inferload.cli import UsageError
    from serving.limits import RequestTooLargeError, check_request_size

    if settings.server != "triton":
        return
    body = estimate_body_bytes(settings.server, settings.protocol, settings.batch, settings.features)
    try:
        check_request_size(settings.server, settings.protocol, int(body), settings.batch)
    except RequestTooLargeError as exc:
        raise UsageError(str(exc)) from None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"
