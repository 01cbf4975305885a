"""`locust -f loadtest/` opens a web UI whose class picker offers the nine server x protocol users.

The picker is on without `--class-picker` on the command line, and the class a user picks in
the UI is the one that runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from locust_runs import NINE_USER_CLASSES, get, post, wait_for
from locust_runs import web_ui as locust_web_ui


@pytest.fixture
def web_ui(tmp_path) -> Iterator[str]:
    """A `locust -f loadtest/` web UI on a free loopback port; yields its base URL."""
    with locust_web_ui(tmp_path) as base:
        yield base


def template_args(page: str) -> dict:
    """The state the web UI's page is rendered from (`window.templateArgs = {...}`)."""
    line = next(line for line in page.splitlines() if "window.templateArgs = " in line)
    return json.loads(line.split("window.templateArgs = ", 1)[1].strip().rstrip(";"))


def test_the_web_ui_offers_the_nine_user_classes_in_its_class_picker(web_ui: str) -> None:
    state = template_args(get(f"{web_ui}/"))
    assert state["show_userclass_picker"] is True
    assert state["available_user_classes"] == NINE_USER_CLASSES
    for name, user in state["users"].items():  # each class keeps its own default host and port
        assert user["host"].startswith("grpc://" if name.endswith("Grpc") else "http://"), (name, user)


@pytest.mark.servers
def test_the_class_picked_in_the_ui_is_the_one_that_runs(web_ui: str, port_of, small_features) -> None:
    form = {
        "user_count": "2",
        "spawn_rate": "2",
        "user_classes": "TorchServeRestBinary",
        "host": f"http://127.0.0.1:{port_of('torchserve', 'rest-binary')}",
        "rate": "20",
        "features": str(small_features),
    }
    started = json.loads(post(f"{web_ui}/swarm", form))
    assert started["success"] and started["user_classes"] == ["TorchServeRestBinary"], started
    try:
        wait_for(lambda: requests_so_far(web_ui) >= 20, what="20 requests")
        stats = json.loads(get(f"{web_ui}/stats/requests"))
        rows = {(row["method"], row["name"]) for row in stats["stats"] if row["name"] != "Aggregated"}
        assert rows == {("rest-binary", "torchserve")}
        assert stats["fail_ratio"] == 0
        assert stats["user_count"] == 2
    finally:
        post(f"{web_ui}/stop", {})


def requests_so_far(base: str) -> int:
    stats = json.loads(get(f"{base}/stats/requests"))
    return sum(row["num_requests"] for row in stats["stats"] if row["name"] == "Aggregated")
