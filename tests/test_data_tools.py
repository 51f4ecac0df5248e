"""dataset_stats against direct torch computations, the v2 pipeline on real images, balance, optional extras."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images
from torch.utils.data import DataLoader, Dataset, TensorDataset

from torchmedic import CIFAR10_STATS, InputError, MissingDependencyError, balance, dataset_stats, transforms_for
from torchmedic.remedies import ChannelStats


def images(n: int = 300, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g) * torch.tensor([1.0, 2.0, 0.5])[:, None, None] + 3  # (N, 3, 8, 8)


def patches(size: int = 32, per_image: int = 40) -> torch.Tensor:
    """uint8 (N, 3, size, size) crops of the sample photos shipped with scikit-learn."""
    rng = np.random.default_rng(0)
    crops = []
    for image in load_sample_images().images:  # (427, 640, 3) uint8
        for r, c in zip(rng.integers(0, 427 - size, per_image), rng.integers(0, 640 - size, per_image), strict=True):
            crops.append(torch.from_numpy(image[r : r + size, c : c + size].copy()).permute(2, 0, 1))
    return torch.stack(crops)


def test_dataset_stats_equals_a_direct_torch_computation_on_samples_and_on_batches() -> None:
    x = images()
    y = torch.randint(0, 4, (300,), generator=torch.Generator().manual_seed(1))
    for data in (TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=37), x):
        stats = dataset_stats(data)
        assert stats.count == 300 and stats.sample_shape == (3, 8, 8)
        xd = x.double()
        assert np.allclose(stats.mean, xd.mean(dim=(0, 2, 3)), rtol=1e-12)
        assert np.allclose(stats.std, xd.std(dim=(0, 2, 3), unbiased=False), rtol=1e-12)
        assert np.allclose(stats.min, xd.amin(dim=(0, 2, 3))) and np.allclose(stats.max, xd.amax(dim=(0, 2, 3)))
        if not isinstance(data, torch.Tensor):
            assert stats.class_counts == tuple(torch.bincount(y).tolist())
        assert stats.duplicates == 0 and stats.nonfinite == 0


def test_dataset_stats_on_sklearn_digits_images_and_feature_columns() -> None:
    digits = load_digits()
    x = torch.tensor(digits.images).unsqueeze(1)  # (1797, 1, 8, 8) float64, values 0..16
    y = torch.tensor(digits.target)
    stats = dataset_stats(TensorDataset(x, y))
    assert stats.mean[0] == pytest.approx(float(x.mean()), rel=1e-12)
    assert stats.std[0] == pytest.approx(float(x.std(unbiased=False)), rel=1e-12)
    assert stats.class_counts == tuple(np.bincount(digits.target).tolist())
    columns = dataset_stats(DataLoader(TensorDataset(torch.tensor(digits.data), y), batch_size=100))
    assert np.allclose(columns.mean, digits.data.mean(0)) and np.allclose(columns.std, digits.data.std(0))
    assert columns.channels == 64


def test_dataset_stats_is_stable_on_a_large_offset() -> None:
    # A one-pass sum of squares in float32 loses everything here; the float64 merge of batch moments does not.
    x = (1e6 + torch.randn(1000, 2, generator=torch.Generator().manual_seed(0)).double() * 1e-2).float()
    stats = dataset_stats(DataLoader(TensorDataset(x), batch_size=64))
    expected = x.double().numpy().std(0)
    assert np.allclose(stats.std, expected, rtol=1e-9)


def test_duplicates_nonfinite_and_max_samples() -> None:
    base = images(10)
    x = torch.cat([base, base[:5], base[:1]])  # 6 repeats of earlier samples
    stats = dataset_stats(TensorDataset(x))
    assert stats.duplicates == 6 and stats.duplicate_fraction == pytest.approx(6 / 16)
    assert stats.class_counts is None

    x = images(20)
    x[3, 1, 0, 0] = float("nan")
    x[4, 1, 2, 2] = float("inf")
    stats = dataset_stats(x)
    finite = x[:, 1][torch.isfinite(x[:, 1])].double()
    assert stats.nonfinite == 2 and stats.mean[1] == pytest.approx(float(finite.mean()), rel=1e-12)

    stats = dataset_stats(DataLoader(TensorDataset(images()), batch_size=64), max_samples=100)
    assert stats.count == 100 and stats.truncated
    assert stats.mean[0] == pytest.approx(float(images()[:100, 0].double().mean()), rel=1e-12)
    assert set(stats.to_dict()) >= {"mean", "std", "min", "max", "count", "class_counts", "duplicate_fraction"}


class PILDataset(Dataset):
    """Items as torchvision datasets give them before any transform: (PIL image, label)."""

    def __init__(self, crops: torch.Tensor) -> None:
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.crops[i].permute(1, 2, 0).numpy()), i % 2


def test_pil_items_are_read_as_channels_first() -> None:
    crops = patches(per_image=10)
    stats = dataset_stats(PILDataset(crops))
    assert stats.sample_shape == (3, 32, 32) and stats.dtype == "uint8"
    assert np.allclose(stats.mean, crops.double().mean(dim=(0, 2, 3)), rtol=1e-12)


def test_reading_data_leaves_the_random_generators_alone() -> None:
    loader = DataLoader(TensorDataset(images()), batch_size=32, shuffle=True)
    labels = torch.randint(0, 3, (50,))
    states = torch.get_rng_state(), pickle.dumps(np.random.get_state()), random.getstate()
    dataset_stats(loader)
    balance(TensorDataset(torch.zeros(50, 1), labels))
    assert torch.equal(torch.get_rng_state(), states[0])
    assert pickle.dumps(np.random.get_state()) == states[1] and random.getstate() == states[2]


def test_empty_or_unreadable_data_gets_a_clear_error() -> None:
    with pytest.raises(InputError, match="no samples"):
        dataset_stats(TensorDataset(torch.zeros(0, 3)))
    with pytest.raises(InputError, match="not a int"):
        dataset_stats(42)


def test_transforms_for_a_real_photo_gives_a_normalized_float_image() -> None:
    photo = load_sample_images().images[0].copy()  # (427, 640, 3) uint8
    stats = dataset_stats(torch.from_numpy(photo).permute(2, 0, 1).unsqueeze(0))
    for augment in (True, False):
        out = transforms_for(stats, 32, augment=augment)(Image.fromarray(photo))
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    out = transforms_for(stats, (48, 64), augment=False)(torch.from_numpy(photo).permute(2, 0, 1))
    assert out.shape == (3, 48, 64)


def test_without_augmentation_the_stats_own_data_comes_out_standardized() -> None:
    crops = patches()  # uint8: stats in 0-255, rescaled by transforms_for
    stats = dataset_stats(crops)
    assert stats.pixel_scale == 255
    pipeline = transforms_for(stats, 32, augment=False)
    out = torch.stack([pipeline(c) for c in crops]).double()
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-4)
    # Stats measured on [0, 1] data give the same pipeline.
    scaled = transforms_for(dataset_stats(crops.double() / 255), 32, augment=False)
    assert torch.allclose(scaled(crops[0]), pipeline(crops[0]), atol=1e-5)


def test_cifar10_preset_and_bad_stats() -> None:
    assert CIFAR10_STATS.mean == (0.4914, 0.4822, 0.4465)
    assert CIFAR10_STATS.std == (0.2470, 0.2435, 0.2616)
    normalize = transforms_for(CIFAR10_STATS, 32).transforms[-1]
    assert tuple(normalize.std) == CIFAR10_STATS.std
    with pytest.raises(InputError, match="divide by zero"):
        transforms_for(ChannelStats((0.5, 0.5), (0.2, 0.0)), 32)


def test_missing_torchvision_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(MissingDependencyError, match=r"pip install torchmedic\[vision\]"):
        transforms_for(CIFAR10_STATS, 32)


def test_the_core_imports_and_works_without_the_optional_extras() -> None:
    code = (
        "import sys\n"
        "sys.modules['torchvision'] = None\n"
        "sys.modules['matplotlib'] = None\n"
        "import torch, torchmedic\n"
        "stats = torchmedic.dataset_stats(torch.arange(12.0).reshape(6, 2))\n"
        "assert stats.mean == (5.0, 6.0), stats.mean\n"
        "try:\n"
        "    torchmedic.transforms_for(stats, 8)\n"
        "except torchmedic.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install torchmedic[vision]" in done.stdout


def test_balance_weights_average_one_over_samples_and_the_sampler_draws_classes_evenly() -> None:
    targets = torch.tensor([0] * 80 + [1] * 15 + [2] * 5)
    found = balance(targets, seed=0)
    assert found.counts == (80, 15, 5)
    assert torch.allclose(
        found.class_weights.double(), 100 / (3 * torch.tensor([80.0, 15.0, 5.0], dtype=torch.float64))
    )
    assert float(found.class_weights[targets].double().mean()) == pytest.approx(1.0)
    draws = torch.tensor([i for _ in range(100) for i in found.sampler])  # 100 passes of 100 draws
    share = torch.bincount(targets[draws], minlength=3).double() / len(draws)
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)
    again = balance(targets, seed=0)
    assert list(again.sampler) == list(balance(targets, seed=0).sampler)


def test_balance_reads_datasets_and_loaders_and_rejects_what_is_not_class_indices() -> None:
    x = torch.randn(30, 2)
    y = torch.tensor([0] * 20 + [2] * 10)
    for source in (TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=8), y.numpy(), y.tolist()):
        found = balance(source, num_classes=4)
        assert found.counts == (20, 0, 10, 0)
        assert found.class_weights[1] == 0 and float(found.sample_weights.mean()) == pytest.approx(1.0)
    with pytest.raises(InputError, match="integer class index"):
        balance(torch.rand(10))
    with pytest.raises(InputError, match=">= 0"):
        balance(torch.tensor([0, -1, 1]))
    with pytest.raises(InputError, match="empty"):
        balance(torch.tensor([], dtype=torch.long))
