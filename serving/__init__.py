"""Start, stop and watch the model servers (TF Serving or tfs-compat, TorchServe) on this machine.

The names below are imported on first use, so `import serving.metrics_file` (the server metrics
format, read by analysis) loads no code that starts or samples servers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.monitor import ServerMonitor
    from serving.ports import Ports, busy_ports
    from serving.settings import ServerSettings
    from serving.stack import Stack, StackError, down, load, up

_HOMES = {
    "Ports": "serving.ports",
    "ServerMonitor": "serving.monitor",
    "ServerSettings": "serving.settings",
    "Stack": "serving.stack",
    "StackError": "serving.stack",
    "busy_ports": "serving.ports",
    "down": "serving.stack",
    "load": "serving.stack",
    "up": "serving.stack",
}

__all__ = [
    "Ports",
    "ServerMonitor",
    "ServerSettings",
    "Stack",
    "StackError",
    "busy_ports",
    "down",
    "load",
    "up",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'serving' has no attribute {name!r}")
    return getattr(import_module(home), name)
