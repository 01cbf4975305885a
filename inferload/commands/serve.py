"""`inferload serve up|down|status`: start the model servers detached, stop them, show what runs.

The servers outlive `serve up` (they run in their own sessions); `serve down` finds them again through
`STATE_DIR/servers.json`, so the pair is what scripts and the Makefile use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inferload.cli import UsageError
from inferload_formats import TFSERVING_KINDS

DEFAULT_STATE_DIR = "logs/servers"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="start/stop TF Serving, TorchServe and Triton on this machine"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up",
        help="start the servers (detached) and wait until they are healthy",
        description="Start TF Serving (the real tensorflow_model_server if on PATH, else tfs-compat), "
        "TorchServe and Triton (a tritonserver on PATH, else the nvidia-pytriton wheel's; Python backend), "
        "wait until all are healthy, and leave them running. TorchServe, tfs-compat and Triton bind --bind "
        "(127.0.0.1 unless told otherwise); the real tensorflow_model_server has no address flag and binds "
        "0.0.0.0.",
    )
    up.add_argument("--artifacts", required=True, type=Path, help="directory written by `inferload export`")
    up.add_argument(
        "--servers", default="tfserving,torchserve,triton", help="comma-separated (default: all three)"
    )
    up.add_argument("--torchserve-workers", type=int, default=1)
    up.add_argument("--torchserve-batch-size", type=int, default=1)
    up.add_argument("--torchserve-max-batch-delay", type=int, default=5, metavar="MS")
    up.add_argument(
        "--tfserving-batching", action="store_true", help="enable TF Serving server-side batching"
    )
    up.add_argument("--tfserving-max-batch-size", type=int, default=32)
    up.add_argument("--tfserving-batch-timeout-us", type=int, default=1000)
    up.add_argument(
        "--tfserving-kind", default="auto", choices=("auto", *TFSERVING_KINDS)
    )
    up.add_argument("--triton-kind", default="auto", choices=("auto", "tritonserver", "pytriton"))
    up.add_argument("--triton-instances", type=int, default=1, help="model instances (Python stub processes)")
    up.add_argument("--triton-max-batch-size", type=int, default=1024)
    up.add_argument("--triton-dynamic-batching", action="store_true", help="enable Triton's dynamic batcher")
    up.add_argument("--triton-max-queue-delay-us", type=int, default=0)
    up.add_argument("--triton-preferred-batch-sizes", default="", metavar="LIST", help="e.g. 4,8")
    up.add_argument(
        "--triton-response-cache", action="store_true", help="enable Triton's local response cache"
    )
    up.add_argument("--triton-cache-mb", type=int, default=256, help="the response cache's size")
    up.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR), help="logs and servers.json")
    up.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the servers listen on: 127.0.0.1 (default: this machine only), one of this "
        "machine's addresses, or 0.0.0.0 (all) so load generators on other hosts can reach them",
    )
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="pick free ports on the bind address, not the standard ones (printed, kept in servers.json)",
    )
    up.add_argument("--timeout", type=float, default=180.0, metavar="S", help="health wait per start")
    secure = up.add_argument_group("security (TorchServe: HTTPS and gRPC TLS; TF Serving: gRPC TLS)")
    secure.add_argument("--tls", action="store_true",
                        help="TLS on with a fresh CA and certificates made under --state-dir/tls (for "
                             "the bind "
                        "address, 127.0.0.1 and localhost); clients trust its ca.crt")
    secure.add_argument("--tls-cert", metavar="PEM", help="your server certificate instead of --tls's")
    secure.add_argument("--tls-key", metavar="PEM", help="its key (PKCS#8 or RSA PEM)")
    secure.add_argument("--tls-ca", metavar="PEM", help="the CA that signed --tls-cert (health checks "
                                                        "trust it)")
    secure.add_argument("--mutual-tls", action="store_true",
                        help="require client certificates signed by --tls-client-ca (or --tls's CA): TF "
                             "Serving "
                        "gRPC only (TorchServe cannot; put nginx in front)")
    secure.add_argument("--tls-client-ca", metavar="PEM", help="CA of the client certificates (--mutual-tls)")
    secure.add_argument("--torchserve-token-auth", action="store_true",
                        help="TorchServe's token authorization on: its keys go to key_file.json in its "
                        "working directory (printed)")
    up.add_argument("--cpus", default="auto", metavar="LIST", help=_cpus_help())
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop the servers started by `serve up`")
    down.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR))
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="show the servers started by `serve up`")
    status.add_argument("--state-dir", type=Path, default=Path(DEFAULT_STATE_DIR))
    status.set_defaults(func=_status)


def _progress(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def _up(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from inferload.cpus import server_cpus
    from serving import Ports, ServerSettings, StackError, up
    from serving.cpusets import CpuSetError
    from serving.ports import is_local_address
    from serving.processes import ServerStartError

    try:
        cpus = server_cpus(args.cpus)
    except CpuSetError as exc:
        raise UsageError(str(exc)) from None
    tls = _server_tls(args)
    try:
        settings = ServerSettings(
            tls=tls,
            torchserve_token_auth=args.torchserve_token_auth,
            cpus=cpus,
            torchserve_workers=args.torchserve_workers,
            torchserve_batch_size=args.torchserve_batch_size,
            torchserve_max_batch_delay_ms=args.torchserve_max_batch_delay,
            tfserving_batching=args.tfserving_batching,
            tfserving_max_batch_size=args.tfserving_max_batch_size,
            tfserving_batch_timeout_us=args.tfserving_batch_timeout_us,
            tfserving_kind=args.tfserving_kind,
            triton_kind=args.triton_kind,
            triton_instances=args.triton_instances,
            triton_max_batch_size=args.triton_max_batch_size,
            triton_dynamic_batching=args.triton_dynamic_batching,
            triton_max_queue_delay_us=args.triton_max_queue_delay_us,
            triton_preferred_batch_sizes=_sizes(args.triton_preferred_batch_sizes),
            triton_response_cache=args.triton_response_cache,
            triton_cache_mb=args.triton_cache_mb,
        )
    except ValidationError as exc:
        raise UsageError(_describe(exc)) from None
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    bind = _bind_address(args.bind)
    try:
        stack = up(
            args.artifacts,
            servers=servers,
            settings=settings,
            # a bind address that is not this machine's gets its clear error from up()'s preflight
            ports=Ports.free(bind) if args.free_ports and is_local_address(bind) else Ports(),
            state_dir=args.state_dir,
            timeout_s=args.timeout,
            progress=_progress,
            host=bind,
        )
    except (StackError, ServerStartError, OSError) as exc:
        raise UsageError(str(exc)) from None
    _print_stack(stack)
    print(f"stop them with: inferload serve down --state-dir {args.state_dir}")
    return 0


def _server_tls(args: argparse.Namespace):  # -> serving.settings.ServerTls | None
    """--tls (generated certificates) or --tls-cert/--tls-key/--tls-ca (yours); --mutual-tls on top."""
    from serving.settings import ServerTls

    given = [args.tls_cert, args.tls_key, args.tls_ca]
    if args.tls and any(given):
        raise UsageError("give either --tls (certificates made for you) or --tls-cert/--tls-key/--tls-ca")
    if any(given) and not all(given):
        raise UsageError("your own certificate needs all of --tls-cert, --tls-key and --tls-ca")
    if (args.mutual_tls or args.tls_client_ca) and not (args.tls or any(given)):
        raise UsageError("--mutual-tls needs TLS on: add --tls (or --tls-cert/--tls-key/--tls-ca)")
    if args.tls:
        from serving.certs import make_tls_material

        wanted = dict.fromkeys([args.bind, "127.0.0.1", "localhost"])
        names = [name for name in wanted if name not in ("0.0.0.0", "::")]
        material = make_tls_material(Path(args.state_dir) / "tls", names=names)
        cert, key, ca = str(material.server.cert), str(material.server.key), str(material.ca.cert)
    elif all(given):
        cert, key, ca = args.tls_cert, args.tls_key, args.tls_ca
    else:
        return None
    client_ca = args.tls_client_ca or (ca if args.mutual_tls else None)
    return ServerTls(cert_file=cert, key_file=key, ca_file=ca, client_ca_file=client_ca)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--triton-preferred-batch-sizes {text!r}: give whole numbers, e.g. 4,8") from None


def _cpus_help() -> str:
    from inferload.cpus import cpu_flag_help

    return cpu_flag_help("servers")


def _bind_address(text: str) -> str:
    """--bind takes an IP address (IPv6 without brackets); names are refused: say which address."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise UsageError(
            f"--bind {text!r} is not an IP address: give one of this machine's addresses "
            "(e.g. 127.0.0.1, 0.0.0.0 for all, or ::1)"
        ) from None


def _down(args: argparse.Namespace) -> int:
    from serving import StackError, down

    try:
        stopped = down(args.state_dir)
    except StackError as exc:
        raise UsageError(str(exc)) from None
    print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing running from {args.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from serving import load

    stack = load(args.state_dir)
    if stack is None:
        print(f"nothing running from {args.state_dir}")
        return 1
    _print_stack(stack)
    return 0 if all(stack.healthy(name) for name in stack.servers) else 1


def _print_stack(stack: object) -> None:
    from serving import Stack

    assert isinstance(stack, Stack)
    for name, server in stack.servers.items():
        health = (
            "healthy" if stack.healthy(name) else ("running, not healthy" if stack.alive(name) else "DEAD")
        )
        print(f"{name}: {server.kind}, pid {server.pid}, {health}")
        for protocol, endpoint in server.endpoints.items():
            print(f"  {protocol:<10} {endpoint}")
        print(f"  {'log':<10} {server.log_file}")
    if stack.tfserving_kind:
        print(f"TF Serving kind: {stack.tfserving_kind}")
    if stack.triton_kind:
        from serving.triton import DESCRIPTION

        print(f"Triton kind: {stack.triton_kind} ({DESCRIPTION})")
    wildcard = stack.host in ("0.0.0.0", "::")
    print(f"bound to: {stack.host}" + (" (all addresses of this machine)" if wildcard else ""))
    if stack.settings.tls is not None:
        tls = stack.settings.tls
        print(f"TLS: clients trust {tls.ca_file}" + (
            f"; client certificates required (CA {tls.client_ca_file})" if tls.client_ca_file else ""))
        client = Path(tls.ca_file).parent / "client.crt"
        if tls.client_ca_file and client.exists():
            print(f"  a client certificate for mutual TLS: {client} (key {client.with_suffix('.key')})")
    if stack.settings.torchserve_token_auth and "torchserve" in stack.servers:
        from serving.torchserve import key_file

        print(f"TorchServe token authorization on: keys in "
              f"{key_file(Path(stack.servers['torchserve'].workdir))}"
              " (give it to the load: --torchserve-key-file)")
    if stack.settings.cpus is not None:
        from serving.cpusets import format_cpu_list

        print(f"pinned to CPUs: {format_cpu_list(stack.settings.cpus)}")


def _describe(exc: object) -> str:
    from pydantic import ValidationError

    assert isinstance(exc, ValidationError)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
