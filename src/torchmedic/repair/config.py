"""Every threshold repair() uses, with the reason for its value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RepairConfig:
    # --- how the budget is spent ---
    diagnose_share: float = 0.4  # diagnose() takes 0.1-20 s on the bench; the rest goes to pilots and range tests
    pilot_steps: int = 60  # twice diagnose's trial: a fixed setup clearly beats the constant output by then
    lr_range_steps: int = 50  # 1e-7 .. 10 at ~6 steps per decade: enough to place the LR within a decade
    max_attempts: int = 5  # the primary plan, then other LRs and other options of the same remedies
    blocker_confidence: float = 0.5  # a cause left to the user this likely explains a failed pilot: stop searching
    seed: int = 0  # pilots, re-inits and new layers draw from generators seeded with this

    # --- what a pilot must show to count as learning ---
    min_gain: float = 0.1  # regression: beats the best constant output by 10% of its loss (R^2 >= 0.1 for MSE)
    min_skill: float = 0.25  # balanced accuracy a quarter of the way from chance to perfect after a short pilot
    max_top_fraction: float = 0.9  # 90% of predictions on one class is a collapse (the bench's threshold) ...
    collapse_margin: float = 0.5  # ... unless the labels are that skewed: then above majority + half the rest

    # --- which learning rate to keep ---
    long_run_margin: float = 3.0  # the range test holds each LR for one step; a whole run at the LR it suggests can
    # die or overfit (ReLUs killed by SGD at 0.08 with momentum over 300 steps), so repair keeps a third of it
    lr_switch_skill: float = 0.1  # a plan that learns less than this much more than the user's setup is tried at its
    # range test's LR too, and that LR is kept if it learns this much more again (skill: balanced accuracy rescaled
    # from chance to perfect; R^2 for regression). Short pilots favour high LRs, so the user's LR is the default.
    min_lr_decades: float = 0.5  # a range-test LR within ~3x of the current one is no reason to change the line
    fallback_lr_factor: float = 0.1  # the next LR to try when the range test's suggestion does not verify
