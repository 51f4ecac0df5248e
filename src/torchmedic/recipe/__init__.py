"""The classic CNN recipe done right: reference data, models and training with every safeguard (`torchmedic train`)."""

from torchmedic.recipe.config import TrainConfig
from torchmedic.recipe.train import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
