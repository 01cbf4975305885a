"""Locust users for the nine server x protocol combinations, open loop by default.

    locust -f loadtest/                      # web UI: pick a class in the class picker, set --rate etc.
    locust -f loadtest/ --headless -u 4 -r 4 -t 30s --rate 200 TorchServeGrpc

Why not stock Locust behaviour: a Locust user waits for its response before its next request
(closed loop), so a stalled server receives less load and its stall vanishes from the
percentiles (coordinated omission). Here, in open mode, every user runs our open-loop scheduler
at rate / total users (a sum of independent Poisson streams is Poisson at the total rate, also
across `--processes N` and `--master/--worker`), and the response time Locust shows is measured
from each request's *scheduled* time. `--mode closed` gives the stock behaviour for comparison.
`--records-dir DIR` also writes our lossless per-request records (Locust's own stats are bucketed).

Hosts default to the standard local / docker-compose ports (TF Serving 8501 REST, 8500 gRPC;
TorchServe 8080 REST, 7070 gRPC; Triton 8000 REST, 8001 gRPC), overridable with `--host` or
INFERLOAD_<SERVER>_HOST, INFERLOAD_<SERVER>_REST_PORT, INFERLOAD_<SERVER>_GRPC_PORT (SERVER:
TFSERVING, TORCHSERVE, TRITON). The Triton classes speak the Open Inference Protocol to any V2 server
(`--grpc-service` where its gRPC service is not Triton's).

The class picker is on by default (the nine classes are generated from the server x protocol
table). Features per instance: `--features`, else `--artifacts`' model.json, else asked from the
server (`_locust_width.py`). Fail-fast: when the first `--fail-fast` (5) completed requests to a
target all fail, the run stops with the server's error text (`_locust_fail_fast.py`).

This file only wires the parts into Locust (`locust -f loadtest/` imports every public `.py` here, so
this is the one): its options (`_locust_options.py`), its events, and the user classes
(`_locust_users.py`), defined here as module globals, where Locust finds them.
"""

from __future__ import annotations

from typing import Any

import gevent
import grpc.experimental.gevent as grpc_gevent
from locust import events
from locust.env import Environment

from loadtest._locust_fail_fast import FAIL_FAST
from loadtest._locust_options import add_arguments, guard_web_ui, share_total_users, worker_reaches_master
from loadtest._locust_users import flush_records, user_classes
from loadtest._locust_width import forget_feature_counts

grpc_gevent.init_gevent()  # blocking gRPC calls must yield to other greenlets (Locust's gRPC example)

events.init_command_line_parser.add_listener(add_arguments)
worker_reaches_master()


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    guard_web_ui(environment)  # --web-login, or a warning for an exposed web UI
    # libev caches "now" until the loop runs; start-up (imports) left it stale, which made
    # `--run-time` timers (spawn_later) fire early by the start-up time. Refresh it.
    gevent.get_hub().loop.update_now()
    FAIL_FAST.listen(environment)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    share_total_users(environment)
    # a new test (e.g. started again from the web UI after a fix) looks at the servers afresh
    FAIL_FAST.reset()
    forget_feature_counts()


@events.quitting.add_listener
@events.test_stop.add_listener
def _on_stop(**_: Any) -> None:
    flush_records()


globals().update(user_classes(__name__))
