"""The recipe's datasets: CIFAR-10 files read by the real torchvision code, image folders, digits, and their errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from torchmedic import InputError, TorchMedicWarning
from torchmedic.recipe.datasets import load_data

pytest.importorskip("torchvision")
Image = pytest.importorskip("PIL.Image")

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root: Path, per_batch: int = 8, test: int = 10, seed: int = 0) -> np.ndarray:
    """Files in the CIFAR-10 python-pickle layout (five training batches, a test batch, the meta file); returns the
    training images as (N, 32, 32, 3) uint8, in the order written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = []
    for name, count in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        rows = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)  # channel-major, as CIFAR stores
        labels = [int(n) for n in rng.integers(0, 10, size=count)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rows, "labels": labels, "batch_label": name}, f)
        if name != "test_batch":
            batches.append(rows)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch}, f)
    return np.concatenate(batches).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def test_cifar10_files_load_through_torchvision(tmp_path: Path) -> None:
    images = write_cifar(tmp_path)
    with pytest.warns(TorchMedicWarning, match="checksums"):
        data = load_data(f"cifar10:{tmp_path}")
    assert (len(data.train), len(data.test)) == (40, 10)
    assert (data.channels, data.image_size, data.flip) == (3, 32, True)
    assert list(data.classes) == CIFAR_CLASSES
    first, _ = data.train[0]
    assert np.array_equal(np.asarray(first), images[0])  # torchvision's HWC PIL image of the first row
    expected_mean = images.reshape(-1, 3).mean(axis=0)
    assert np.allclose(data.stats.mean, expected_mean, rtol=1e-4)


def test_cifar10_with_a_missing_batch_names_it(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(InputError, match="data_batch_3"):
        load_data(f"cifar10:{tmp_path}")


def write_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (10, 10), seed: int = 0) -> None:
    """PNG images in class subfolders; each class has its own brightness, so the classes are learnable."""
    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            level = 40 + 170 * index
            pixels = np.clip(rng.normal(level, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_is_split_and_measured(tmp_path: Path) -> None:
    write_folder(tmp_path, {"dark": 12, "light": 13})
    data = load_data(f"folder:{tmp_path}")
    assert data.classes == ("dark", "light")
    assert (len(data.train), len(data.test)) == (20, 5)
    assert (data.channels, data.image_size) == (3, 10)
    assert 40 < data.stats.mean[0] < 210  # between the two classes' brightness


def test_image_folder_with_train_and_test_subfolders(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", {"a": 4, "b": 4})
    write_folder(tmp_path / "test", {"a": 2, "b": 2}, seed=1)
    data = load_data(f"folder:{tmp_path}")
    assert (len(data.train), len(data.test)) == (8, 4)


def test_image_folder_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        load_data(f"folder:{tmp_path / 'absent'}")
    write_folder(tmp_path / "one", {"cat": 3})
    with pytest.raises(InputError, match="one class"):
        load_data(f"folder:{tmp_path / 'one'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="subfolder"):
        load_data(f"folder:{empty}")


def test_images_of_mixed_sizes_ask_for_image_size(tmp_path: Path) -> None:
    write_folder(tmp_path, {"a": 3, "b": 3})
    Image.fromarray(np.zeros((16, 12, 3), dtype=np.uint8)).save(tmp_path / "b" / "big.png")
    with pytest.raises(InputError, match="--image-size"):
        load_data(f"folder:{tmp_path}")
    data = load_data(f"folder:{tmp_path}", image_size=8)
    assert data.image_size == 8


def test_digits_are_the_real_8x8_images_split_80_20() -> None:
    data = load_data("digits")
    assert (len(data.train), len(data.test)) == (1438, 359)
    assert (data.channels, data.image_size, data.flip) == (1, 8, False)
    image, label = data.train[0]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
    assert 0 <= label <= 9


def test_an_unknown_data_spec_lists_the_forms() -> None:
    with pytest.raises(InputError, match="folder:PATH"):
        load_data("mnist")
