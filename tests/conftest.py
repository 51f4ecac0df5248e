"""Shared test fixtures. The repository root is put on sys.path so that tests can import `bench`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same global RNG state, so results do not depend on test order."""
    torch.manual_seed(0)
