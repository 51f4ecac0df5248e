"""Draw an LR range test: reads an LRFinderResult, computes nothing (matplotlib is imported only here)."""

from __future__ import annotations

from typing import Any

from torchmedic.remedies.lr_finder import LRFinderResult
from torchmedic.remedies.optional import require


def plot_lr(result: LRFinderResult, ax: Any = None) -> Any:
    """Plot loss against LR (log scale), raw and smoothed, with the suggestion marked; returns the Axes."""
    require("matplotlib.pyplot", "plot", purpose="plot_lr")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color="0.7", linewidth=1, label="loss per step")
    ax.plot(result.lrs, result.smoothed, color="C0", linewidth=2, label="smoothed")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="C3", linestyle="--",
                   label=f"suggested lr {result.suggestion:.2g} (confidence {result.confidence:.2f})")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(result.message if result.flat else f"LR range test ({result.optimizer}, {result.stop.value})",
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    return ax
