"""Our options on Locust's command line and in its web UI (the TLS and credential options as one
`Security`; the web UI's own guard), the hosts users default to, and how many users in all share the rate
(the master tells its workers)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtest._locust_fail_fast import FAIL_FAST_REQUESTS
from loadtest._master import DEFAULT_MASTER_TIMEOUT_S, MasterUnreachable, master_of_worker, wait_for_master
from loadtest._security import Security, security_fields
from loadtest._settings import STANDARD_PORTS, scheme_tls

logger = logging.getLogger("inferload")

TOTAL_USERS_OPTION = "inferload_total_users"  # set on the master, travels to workers with the spawn message


def add_arguments(parser: Any) -> None:
    """Our options (parser.add_argument itself, not an argument group: only then do they show in the
    web UI)."""
    parser.add_argument(
        "--rate", type=float, default=10.0, help="open loop: total arrivals per second, all users"
    )
    parser.add_argument(
        "--mode",
        choices=["open", "closed"],
        default="open",
        help="open: Poisson arrivals on a schedule; closed: each user sends back to back",
    )
    parser.add_argument("--batch", type=int, default=1, help="instances per request")
    parser.add_argument(
        "--features",
        type=int,
        default=0,
        help="features per instance (default: --artifacts' model.json, else asked from the server)",
    )
    parser.add_argument("--artifacts", default="", help="artifacts dir: read features from its model.json")
    parser.add_argument(
        "--metadata-url",
        default="",
        help="where the server describes its model, for the feature count: TF Serving's REST API "
        "(http://HOST:8501) or TorchServe's management API (http://HOST:8081); default: from the host",
    )
    parser.add_argument("--max-in-flight", type=int, default=512, help="open loop: in-flight bound per user")
    parser.add_argument("--records-dir", default="", help="also write lossless per-request records here")
    parser.add_argument("--seed", type=int, default=0, help="arrival schedule seed")
    parser.add_argument("--payload-seed", type=int, default=1, help="input values / payload choice seed")
    parser.add_argument("--pool-size", type=int, default=16, help="distinct inputs encoded before the load")
    parser.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds before a request times out"
    )
    parser.add_argument("--model-name", default="linear", help="model name on the server")
    parser.add_argument(
        "--grpc-service",
        default="",
        help="V2 (Triton) classes over gRPC: the service of ModelInfer "
        "(default inference.GRPCInferenceService)",
    )
    parser.add_argument(
        "--fail-fast",
        type=int,
        default=FAIL_FAST_REQUESTS,
        help="stop the run when the first N requests to a server all fail (0: never stop)",
    )
    parser.add_argument(
        "--master-timeout",
        type=float,
        default=DEFAULT_MASTER_TIMEOUT_S,
        help="worker: seconds to wait for the master's port before stopping with a clear error",
    )
    # TLS and credentials (loadtest/_security.py): secrets come from the environment or files, never
    # from an option value (it would show in `ps`); an https:// or grpcs:// --host turns TLS on.
    parser.add_argument("--ca-cert", default="", env_var="INFERLOAD_CA_CERT",
                        help="TLS: CA certificate(s) to verify the servers with (default: the system's)")
    parser.add_argument("--client-cert", default="", env_var="INFERLOAD_CLIENT_CERT",
                        help="mutual TLS: client certificate (PEM)")
    parser.add_argument("--client-key", default="", env_var="INFERLOAD_CLIENT_KEY",
                        help="mutual TLS: key of --client-cert (PEM)")
    parser.add_argument("--server-name", default="", env_var="INFERLOAD_SERVER_NAME",
                        help="TLS: name to verify in the server's certificate, when not the host's")
    parser.add_argument("--token", default="", env_var="INFERLOAD_TOKEN",
                        help="bearer token, as env:VARIABLE or file:PATH (never the token itself)")
    parser.add_argument("--torchserve-key-file", default="", env_var="INFERLOAD_TORCHSERVE_KEY_FILE",
                        help="TorchServe's key_file.json (inference key for requests, management key to "
                        "describe the model)")
    parser.add_argument("--header", default="", env_var="INFERLOAD_HEADERS",
                        help="more headers / gRPC metadata: NAME=env:VAR or NAME=file:PATH, comma-separated")
    # The web UI offers the user classes in its class picker without `--class-picker` on the
    # command line (a config file, LOCUST_USERCLASS_PICKER or the flag still decide when given).
    parser.set_defaults(class_picker=True)
    # The web UI starts runs against any host typed into it: it listens on this machine only unless told
    # (--web-host), and `--web-login` protects it with a password read from a file or the environment
    # (Locust's own login page; loadtest/_web_login.py).
    parser.set_defaults(web_host=os.environ.get("LOCUST_WEB_HOST", "127.0.0.1"))
    parser.add_argument("--web-password-file", default="", env_var="INFERLOAD_WEB_PASSWORD_FILE",
                        help="with --web-login: file holding the web UI's password (or "
                             "INFERLOAD_WEB_PASSWORD)")
    parser.add_argument("--web-user", default="locust", env_var="INFERLOAD_WEB_USER",
                        help="with --web-login: the web UI's user name")


def guard_web_ui(environment: Environment) -> None:
    """--web-login: our password login (loadtest/_web_login.py); an exposed UI without it: a warning."""
    from loadtest._web_login import WebLoginError, install_login, warn_if_exposed

    options = environment.parsed_options
    if environment.web_ui is None or options is None:
        return
    if not getattr(options, "web_login", False):
        warn_if_exposed(str(getattr(options, "web_host", "") or ""), logger)
        return
    try:
        install_login(environment, password_file=getattr(options, "web_password_file", "") or None,
                      user=str(getattr(options, "web_user", "locust")))
    except WebLoginError as exc:
        sys.stderr.write(f"inferload: {exc}\n")
        raise SystemExit(2) from None


def security_of(options: Any, host_text: str) -> Security:
    """The TLS and credential options as one Security (raises ValueError for a secret given as a value)."""
    headers = [h for h in str(getattr(options, "header", "") or "").split(",") if h.strip()]
    fields = security_fields(
        host=host_text,
        ca_cert=getattr(options, "ca_cert", "") or None,
        client_cert=getattr(options, "client_cert", "") or None,
        client_key=getattr(options, "client_key", "") or None,
        server_name=getattr(options, "server_name", "") or None,
        token=getattr(options, "token", "") or None,
        torchserve_key_file=getattr(options, "torchserve_key_file", "") or None,
        headers=headers,
    ) or {}
    if scheme_tls(host_text):
        fields["tls"] = True
    return Security.model_validate(fields)


def worker_reaches_master() -> None:
    """A worker whose master cannot be reached stops now, saying what to check (loadtest/_master.py)."""
    master = master_of_worker(sys.argv[1:], os.environ)
    if master is None:
        return
    try:
        wait_for_master(*master)
    except MasterUnreachable as exc:
        sys.stderr.write(f"inferload: {exc}\n")
        raise SystemExit(2) from None


def share_total_users(environment: Environment) -> None:
    """Workers only know their own share of users; the master tells them the total."""
    runner = environment.runner
    if isinstance(runner, MasterRunner) and environment.parsed_options is not None:
        setattr(environment.parsed_options, TOTAL_USERS_OPTION, runner.target_user_count)


def total_users(environment: Environment) -> int:
    """All users of the test across every worker (the rate is split between them)."""
    options = environment.parsed_options
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        shared = getattr(options, TOTAL_USERS_OPTION, None)
        if shared:
            return int(shared)
    if runner is not None and runner.target_user_count:
        return int(runner.target_user_count)
    return max(1, int(getattr(options, "num_users", 1) or 1))


def default_host(server: str, protocol: str) -> str:
    """The standard local / docker-compose port of a server x protocol, or INFERLOAD_<SERVER>_HOST and
    INFERLOAD_<SERVER>_<REST|GRPC>_PORT where set."""
    prefix = f"INFERLOAD_{server.upper()}"
    kind = "GRPC" if protocol == "grpc" else "REST"
    host = os.environ.get(f"{prefix}_HOST", "127.0.0.1")
    port = os.environ.get(f"{prefix}_{kind}_PORT", str(STANDARD_PORTS[(server, protocol)]))
    return f"grpc://{host}:{port}" if protocol == "grpc" else f"http://{host}:{port}"
