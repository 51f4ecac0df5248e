"""torchmedic: find out why a PyTorch model always gives the same output, with evidence and a verified fix."""

from torchmedic.batch import BatchKeys
from torchmedic.causes import CAUSES
from torchmedic.config import DiagnoseConfig
from torchmedic.doctor import diagnose
from torchmedic.errors import InputError, LossError, ModelError, TorchMedicError, TorchMedicWarning
from torchmedic.finding import Evidence, Finding, Fix, Verification
from torchmedic.models import ResNet9, SimpleCNN
from torchmedic.monitor import Monitor
from torchmedic.recipe import TrainConfig, TrainResult, train
from torchmedic.remedies import (
    CIFAR10_STATS,
    DatasetStats,
    InitRecord,
    LRFinderResult,
    MissingDependencyError,
    balance,
    dataset_stats,
    find_lr,
    init_weights,
    plot_lr,
    suggest_lr,
    transforms_for,
)
from torchmedic.repair import RepairResult, repair
from torchmedic.report import Report
from torchmedic.signals import Signal, Signals

__all__ = [
    "CAUSES",
    "CIFAR10_STATS",
    "BatchKeys",
    "DatasetStats",
    "DiagnoseConfig",
    "Evidence",
    "Finding",
    "Fix",
    "InitRecord",
    "InputError",
    "LRFinderResult",
    "LossError",
    "MissingDependencyError",
    "ModelError",
    "Monitor",
    "RepairResult",
    "Report",
    "ResNet9",
    "Signal",
    "Signals",
    "SimpleCNN",
    "TorchMedicError",
    "TorchMedicWarning",
    "TrainConfig",
    "TrainResult",
    "Verification",
    "balance",
    "dataset_stats",
    "diagnose",
    "find_lr",
    "init_weights",
    "plot_lr",
    "repair",
    "suggest_lr",
    "train",
    "transforms_for",
]
