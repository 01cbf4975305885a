"""Is the target reachable? Checked before any load, so a typo'd port fails in a second, clearly.

Only reachability is checked (any HTTP answer counts): a wrong model name is the server's error
to report, and it becomes error records during the run.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from ._settings import LoadSettings

CHECK_TIMEOUT_S = 3.0


class TargetUnreachable(RuntimeError):
    """No server answers at the target address."""


def _hint(settings: LoadSettings) -> str:
    return (
        f"no {settings.server} {settings.protocol} server answers at {settings.target}: "
        "start the servers with `inferload serve up` (or `docker compose up`), "
        "or point --host/--port at a running one"
    )


def health_path(settings: LoadSettings) -> str:
    if settings.server == "tfserving":
        return f"/v1/models/{settings.model_name}"
    return "/ping"


def check_reachable(settings: LoadSettings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise TargetUnreachable (naming host:port) unless something answers there."""
    if settings.protocol == "grpc":
        import grpc

        channel = grpc.insecure_channel(settings.target)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise TargetUnreachable(_hint(settings)) from None
        finally:
            channel.close()
        return
    url = f"http://{settings.target}{health_path(settings)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError:
        return  # it answered: reachable (the run will record the server's errors)
    except (urllib.error.URLError, OSError) as exc:
        raise TargetUnreachable(f"{_hint(settings)} ({exc})") from None
