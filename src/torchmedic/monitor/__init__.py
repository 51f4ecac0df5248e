"""The live training monitor: probes driven by optimizer and forward hooks during the user's own training."""

from torchmedic.monitor.config import MonitorConfig
from torchmedic.monitor.monitor import Monitor
from torchmedic.monitor.session import StopTraining

__all__ = ["Monitor", "MonitorConfig", "StopTraining"]
