"""Every threshold repair() uses, with the reason for its value; the diagnosis it starts from runs with the
`DiagnoseConfig` inside (and so do the fixes, which choose their settings from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torchmedic.config import DiagnoseConfig


@dataclass(frozen=True)
class RepairConfig:
    # --- how the budget is spent ---
    diagnose_share: float = 0.4  # diagnose() takes 0.1-20 s on the bench; the rest goes to pilots and range tests
    pilot_steps: int = 60  # twice diagnose's trial: a fixed setup clearly beats the constant output by then
    max_attempts: int = 5  # the primary plan, then other LRs and other options of the same fixes
    blocker_confidence: float = 0.5  # a cause left to the user this likely explains a failed pilot: stop searching

    # --- what a pilot must show to count as learning ---
    min_pilot_skill: float = 0.25  # balanced accuracy a quarter of the way from chance to perfect after a pilot
    max_pilot_top_fraction: float = 0.9  # 90% of predictions on one class is a collapse (the bench's threshold) ...
    # ... unless the labels are that skewed: then above majority + `Thresholds.collapse_margin` of the rest

    # --- which learning rate to keep ---
    lr_switch_skill: float = 0.1  # a plan that learns less than this much more than the user's setup is tried at its
    # range test's LR too, and that LR is kept if it learns this much more again (skill: balanced accuracy rescaled
    # from chance to perfect; R^2 for regression). Short pilots favour high LRs, so the user's LR is the default.

    diagnose: DiagnoseConfig = field(default_factory=DiagnoseConfig)

    @property
    def seed(self) -> int:
        return self.diagnose.seed
