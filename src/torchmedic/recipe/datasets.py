"""The recipe's image datasets: scikit-learn's digits (embedded), CIFAR-10 through torchvision, any ImageFolder.

Each comes as raw training and test samples (uint8 tensors or PIL images with their class index), with what the
model and the pipeline need to know: channels, image size, class names, whether a mirror image keeps its class,
and the statistics of the raw training images that go into `Normalize`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from torchmedic.errors import InputError, TorchMedicWarning
from torchmedic.remedies.data_stats import DatasetStats, dataset_stats
from torchmedic.remedies.optional import require

TEST_FRACTION = 0.2  # held out where the data has no test split of its own
SPLIT_SEED = 0  # the split does not depend on the training seed, so every run is scored on the same images
STATS_SAMPLES = 5000  # images read for the folder's Normalize statistics: the mean and std settle long before
CIFAR_CHUNK = 4096  # CIFAR-10 images per chunk when its statistics are read from the decoded array
DEFAULT_CIFAR_ROOT = "data"
DATA_FORMS = "digits, cifar10, cifar10:ROOT or folder:PATH"


@dataclass(frozen=True)
class ImageData:
    """Raw training and test samples of one image classification dataset, and what the recipe needs to know."""

    name: str
    train: Dataset
    test: Dataset
    classes: tuple[str, ...]
    channels: int
    image_size: int  # the side of the square images the model sees
    flip: bool  # a mirror image keeps its class (not so for digits)
    stats: DatasetStats  # of the raw training images, before any augmentation


class Transformed(Dataset):
    """A dataset whose images pass through `transform` (the labels stay)."""

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, label = self.dataset[index]
        return self.transform(image), label


class _Pairs(Dataset):
    """(image, label) pairs from two aligned tensors."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def load_data(spec: str, image_size: int | None = None) -> ImageData:
    """The dataset named by `spec`: "digits", "cifar10", "cifar10:ROOT" or "folder:PATH"."""
    kind, _, location = spec.partition(":")
    if kind == "digits" and not location:
        return digits(image_size)
    if kind == "cifar10":
        return cifar10(location or DEFAULT_CIFAR_ROOT, image_size)
    if kind == "folder" and location:
        return image_folder(location, image_size)
    raise InputError(f"--data {spec!r}: expected {DATA_FORMS}.")


def digits(image_size: int | None = None) -> ImageData:
    """scikit-learn's 1797 real 8x8 handwritten digits, as 1-channel uint8 images, 20% held out."""
    datasets = require("sklearn.datasets", "demo", purpose="--data digits")
    raw = datasets.load_digits()
    images = torch.tensor(raw.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)  # (N, 1, 8, 8), 0..16 -> 0..255
    labels = torch.as_tensor(raw.target)
    pairs = _Pairs(images, labels)
    train, test = _split(pairs, len(labels))
    stats = dataset_stats(images[train.indices])
    size = image_size or 8
    return ImageData("digits", train, test, tuple(str(n) for n in raw.target_names), 1, size, False, stats)


def cifar10(root: str, image_size: int | None = None) -> ImageData:
    """CIFAR-10's 50,000 training and 10,000 test images, read by torchvision from ROOT/cifar-10-batches-py
    (downloaded there when missing and the machine is online)."""
    torchvision = require("torchvision.datasets", "vision", purpose="--data cifar10")
    folder = Path(root) / torchvision.CIFAR10.base_folder
    if not folder.is_dir():
        _download(torchvision.CIFAR10, root)
    train, test = (_cifar_split(torchvision.CIFAR10, root, train) for train in (True, False))
    data = torch.from_numpy(train.data).permute(0, 3, 1, 2)  # (N, 3, 32, 32) uint8
    chunks = [(data[i : i + CIFAR_CHUNK], torch.as_tensor(train.targets[i : i + CIFAR_CHUNK]))
              for i in range(0, len(data), CIFAR_CHUNK)]  # fmt: skip
    stats = dataset_stats(chunks)
    return ImageData(f"cifar10:{root}", train, test, tuple(train.classes), 3, image_size or 32, True, stats)


def _download(cifar: Any, root: str) -> None:
    try:
        cifar(root, train=True, download=True)
    except Exception as exc:  # torchvision raises URLError, OSError or RuntimeError depending on where it fails
        raise InputError(
            f"CIFAR-10 is not in {root}/{cifar.base_folder} and could not be downloaded ({type(exc).__name__}: "
            f"{exc}). Download {cifar.url} and extract it into {root}, or pass --data cifar10:ROOT where it is."
        ) from exc


def _cifar_split(cifar: Any, root: str, train: bool) -> Any:  # a torchvision CIFAR10: .data, .targets, .classes
    try:
        return cifar(root, train=train)
    except RuntimeError:  # torchvision found files whose checksums differ from the published ones
        pass
    unchecked = type(
        "CIFAR10Unchecked",
        (cifar,),
        {
            "train_list": [[name, None] for name, _ in cifar.train_list],
            "test_list": [[name, None] for name, _ in cifar.test_list],
            "meta": {**cifar.meta, "md5": None},
        },
    )
    files = [name for name, _ in cifar.train_list + cifar.test_list] + [cifar.meta["filename"]]
    missing = [name for name in files if not (Path(root) / cifar.base_folder / name).is_file()]
    if missing:
        raise InputError(f"{root}/{cifar.base_folder} lacks {', '.join(missing)}: extract the whole "
                         f"cifar-10-python.tar.gz there, or delete the folder to download it again.")  # fmt: skip
    dataset = unchecked(root, train=train)
    warnings.warn(
        f"{root}/{cifar.base_folder} does not match CIFAR-10's published checksums: read as a dataset in the "
        f"CIFAR-10 format ({len(dataset)} {'training' if train else 'test'} images).",
        TorchMedicWarning,
        stacklevel=3,
    )
    return dataset


def image_folder(path: str, image_size: int | None = None) -> ImageData:
    """A folder of class subfolders (PATH/cat/1.png ...), or PATH/train and PATH/test (or val) laid out that way."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--data folder:{path}: no such folder. Point it at a folder with one subfolder per class.")
    test_root = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_root is not None:
        train_set, test_set = _folder(root / "train"), _folder(test_root)
        if train_set.classes != test_set.classes:
            raise InputError(f"{root / 'train'} has classes {train_set.classes} but {test_root} has "
                             f"{test_set.classes}: give both the same class subfolders.")  # fmt: skip
        whole: Any = train_set
        train, test = train_set, test_set
    else:
        whole = _folder(root)
        train, test = _split(whole, len(whole))
    size = image_size or _one_size(whole.samples, root)
    vision = require("torchvision.transforms.v2", "vision", purpose="--data folder")
    square = vision.Compose([vision.ToImage(), vision.Resize(size, antialias=True), vision.CenterCrop(size)])
    stats = dataset_stats(Transformed(train, square), max_samples=STATS_SAMPLES)
    return ImageData(f"folder:{path}", train, test, tuple(whole.classes), stats.channels, size, True, stats)


def _folder(root: Path) -> Any:
    datasets = require("torchvision.datasets", "vision", purpose="--data folder")
    try:
        folder = datasets.ImageFolder(str(root))
    except FileNotFoundError as exc:  # no class subfolder, or a class without a single image
        raise InputError(f"{root}: {exc}. Put the images of each class in a subfolder named for the class "
                         f"({root}/cat/1.png, {root}/dog/2.png, ...).") from exc  # fmt: skip
    if len(folder.classes) < 2:
        raise InputError(f"{root} holds one class ({folder.classes[0]!r}): a classifier needs at least two. Put "
                         f"each class in its own subfolder of {root}.")  # fmt: skip
    return folder


def _one_size(samples: Sequence[tuple[str, int]], root: Path) -> int:
    """The side the images are cropped to: the shorter side when every image has the same size."""
    image = require("PIL.Image", "vision", purpose="--data folder")
    sizes: dict[tuple[int, int], str] = {}
    for file, _ in samples:
        with image.open(file) as img:
            sizes.setdefault(img.size, file)
    if len(sizes) > 1:
        seen = ", ".join(f"{w}x{h} ({Path(f).relative_to(root)})" for (w, h), f in list(sizes.items())[:3])
        raise InputError(f"the images in {root} come in {len(sizes)} sizes, e.g. {seen}: the model needs one. "
                         "Pass --image-size N to resize and crop them all to NxN.")  # fmt: skip
    width, height = next(iter(sizes))
    return min(width, height)


def _split(dataset: Dataset, count: int) -> tuple[Subset, Subset]:
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    cut = count - max(1, round(count * TEST_FRACTION))
    return Subset(dataset, order[:cut]), Subset(dataset, order[cut:])
