"""How often the training monitor measures and how sure it must be, with the reason for each value."""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmedic.errors import InputError
from torchmedic.thresholds import Thresholds


@dataclass(frozen=True)
class MonitorConfig:
    every: int = 10  # one sampled step in ten: a finding confirmed on 3 samples is named ~30 steps after onset
    first_steps: int = 3  # the first steps are always sampled: init causes show there and they set the baseline
    confirm: int = 3  # a rule must hold on this many consecutive sampled steps: one odd batch is not a finding
    window: int = 5  # sampled steps in the moving windows (loss, class histograms): memory O(layers x window)
    activations: bool = True  # per-layer forward hooks on sampled steps: the costliest probe, needed by init rules
    updates: bool = True  # one copy of the weights on sampled steps, for update/weight ratios
    max_channels: int = 64  # per-channel input statistics up to this many channels (RGB, tabular features)
    stat_samples: int = 16  # activation and input statistics read the first 16 samples: scales and dead units
    stat_elements: int = 65536  # ... and about this many values per layer (strided positions): a bounded cost
    tensorboard: bool = True  # also write TensorBoard events when a log_dir is given and tensorboard is installed
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __post_init__(self) -> None:
        if self.every < 1 or self.confirm < 1 or self.window < 1:
            raise InputError(
                f"every, confirm and window must be >= 1 (got {self.every}, {self.confirm}, {self.window})"
            )

    def sampled(self, step: int) -> bool:
        """Whether optimizer step `step` (1-based) is measured."""
        return step <= self.first_steps or step % self.every == 0
