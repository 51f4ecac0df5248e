"""Cures for the usual causes of a constant output: weight init, the learning rate, data statistics and balance."""

from torchmedic.remedies.balance import Balance, balance
from torchmedic.remedies.data_stats import DatasetStats, dataset_stats
from torchmedic.remedies.lr_finder import LRFinderResult, RangeTestConfig, StopReason, find_lr, range_test
from torchmedic.remedies.lr_plot import plot_lr
from torchmedic.remedies.lr_suggestion import FLAT_MESSAGE, LRSuggestion, SuggestConfig, suggest_lr
from torchmedic.remedies.optional import MissingDependencyError
from torchmedic.remedies.transforms import CIFAR10_STATS, ChannelStats, transforms_for
from torchmedic.remedies.weight_init import InitRecord, LayerInit, init_weights

__all__ = [
    "CIFAR10_STATS",
    "FLAT_MESSAGE",
    "Balance",
    "ChannelStats",
    "DatasetStats",
    "InitRecord",
    "LRFinderResult",
    "LRSuggestion",
    "LayerInit",
    "MissingDependencyError",
    "RangeTestConfig",
    "StopReason",
    "SuggestConfig",
    "balance",
    "dataset_stats",
    "find_lr",
    "init_weights",
    "plot_lr",
    "range_test",
    "suggest_lr",
    "transforms_for",
]
