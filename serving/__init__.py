"""Start, stop and watch the model servers (TF Serving or tfs-compat, TorchServe) on this machine."""

from serving.monitor import ServerMonitor
from serving.ports import Ports, busy_ports
from serving.settings import ServerSettings
from serving.stack import Stack, StackError, down, load, up

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
