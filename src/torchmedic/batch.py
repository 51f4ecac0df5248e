"""One training batch as torchmedic sees it: the model's inputs and the loss's targets, whatever the loader yields."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torchmedic.errors import InputError

INPUT_KEYS = ("input", "inputs", "x", "image", "images", "img", "pixel_values", "data", "features", "feature")
TARGET_KEYS = ("target", "targets", "y", "label", "labels", "class", "mask")
_PREDICTION: ContextVar[Any] = ContextVar("torchmedic_prediction_key", default=None)
MAX_GRAPH_NODES = 256  # autograd nodes searched from a loss back to the tensor it may have been computed from


@dataclass(frozen=True)
class BatchKeys:
    """Which dict keys hold inputs and targets; None means: the first of the usual names that is present."""

    inputs: str | None = None
    targets: str | None = None


@dataclass
class Batch:
    """A batch split into what the model takes (`inputs`) and what the loss compares against (`targets`).

    `inputs` is a tensor, or a tuple of tensors passed to the model as positional arguments. A loader of bare
    tensors has no targets: the loss is then called as `loss_fn(outputs, inputs)` (reconstruction).
    """

    inputs: torch.Tensor | tuple[torch.Tensor, ...]
    targets: torch.Tensor | None

    @property
    def first_input(self) -> torch.Tensor:
        return self.inputs if isinstance(self.inputs, torch.Tensor) else self.inputs[0]

    @property
    def size(self) -> int:
        x = self.first_input
        return int(x.shape[0]) if x.dim() > 0 else 1

    @property
    def loss_targets(self) -> torch.Tensor:
        """What the loss is called with as its second argument."""
        return self.targets if self.targets is not None else self.first_input

    def to(self, device: torch.device | str | None) -> Batch:
        if device is None:
            return self
        return Batch(
            _map(self.inputs, lambda t: t.to(device)), None if self.targets is None else self.targets.to(device)
        )

    def select(self, index: torch.Tensor | slice) -> Batch:
        """The samples at `index` (along the batch dimension) of inputs and targets."""
        return Batch(_map(self.inputs, lambda t: t[index]), None if self.targets is None else self.targets[index])

    def with_inputs(self, inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> Batch:
        return Batch(inputs, self.targets)

    def with_targets(self, targets: torch.Tensor | None) -> Batch:
        return Batch(self.inputs, targets)

    def run(self, model: torch.nn.Module) -> Any:
        """Call the model on the inputs the way a training loop would."""
        if isinstance(self.inputs, tuple):
            return model(*self.inputs)
        return model(self.inputs)


def _map(inputs: torch.Tensor | tuple[torch.Tensor, ...], fn: Any) -> Any:
    if isinstance(inputs, tuple):
        return tuple(fn(t) for t in inputs)
    return fn(inputs)


def concat(batches: Sequence[Batch]) -> Batch:
    """Join batches along the batch dimension (they must agree in structure and per-sample shape)."""
    first = batches[0]
    if isinstance(first.inputs, tuple):
        inputs: Any = tuple(torch.cat([b.inputs[i] for b in batches]) for i in range(len(first.inputs)))
    else:
        inputs = torch.cat([b.first_input for b in batches])
    targets = None if first.targets is None else torch.cat([b.targets for b in batches])  # type: ignore[misc]
    return Batch(inputs, targets)


def unpack(raw: Any, keys: BatchKeys = BatchKeys(), *, index: int = 0) -> Batch:
    """Split one item yielded by the loader into a Batch; raise InputError naming the format when it cannot."""
    if isinstance(raw, torch.Tensor):
        return Batch(_as_tensor(raw, "the batch", index), None)
    if isinstance(raw, Mapping):
        in_key = keys.inputs or _first_present(raw, INPUT_KEYS)
        tgt_key = keys.targets or _first_present(raw, TARGET_KEYS)
        if in_key is None or in_key not in raw:
            raise InputError(
                f"batch {index} is a dict with keys {sorted(map(str, raw))}: none holds the inputs. "
                f"Name it with keys=BatchKeys(inputs=..., targets=...) (looked for {', '.join(INPUT_KEYS)})."
            )
        if tgt_key is not None and tgt_key not in raw:
            raise InputError(f"batch {index} has no key {tgt_key!r}; its keys are {sorted(map(str, raw))}.")
        targets = None if tgt_key is None else _as_tensor(raw[tgt_key], f"batch[{tgt_key!r}]", index)
        return Batch(_inputs(raw[in_key], f"batch[{in_key!r}]", index), targets)
    if isinstance(raw, (tuple, list)):
        if len(raw) == 0:
            raise InputError(f"batch {index} is an empty {type(raw).__name__}: expected (inputs, targets).")
        if len(raw) == 1:
            return Batch(_inputs(raw[0], "batch[0]", index), None)
        return Batch(_inputs(raw[0], "batch[0]", index), _as_tensor(raw[1], "batch[1]", index))
    raise InputError(
        f"batch {index} is a {type(raw).__name__}: expected a tensor, an (inputs, targets) tuple or list, or a dict."
    )


def _first_present(raw: Mapping[Any, Any], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in raw), None)


def _inputs(value: Any, what: str, index: int) -> torch.Tensor | tuple[torch.Tensor, ...]:
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(_with_values(v, what, index) for v in value)
    return _as_tensor(value, what, index)


def _with_values(value: torch.Tensor, what: str, index: int) -> torch.Tensor:
    if value.is_meta:
        raise InputError(
            f"{what} of batch {index} is a tensor on the meta device: it has a shape {tuple(value.shape)} but no "
            "values. Build the data on a real device (cpu or cuda)."
        )
    return value


def _as_tensor(value: Any, what: str, index: int) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return _with_values(value, what, index)
    if isinstance(value, (int, float)) or (
        isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value)
    ):
        return torch.as_tensor(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise InputError(f"{what} of batch {index} is a {type(value).__name__}, not a tensor: convert it in the dataset.")


def _read_once(loader: Iterable[Any]) -> str | None:
    """Why a DataLoader over an IterableDataset can be read only once (its __iter__ hands out one shared
    iterator), or None. Asking for two iterators reads nothing: a generator's body runs only on next()."""
    dataset = getattr(loader, "dataset", None)
    if not isinstance(dataset, torch.utils.data.IterableDataset):
        return None
    try:
        first, second = iter(dataset), iter(dataset)
    except Exception:
        return None
    if first is second:
        return f"the loader's {type(dataset).__name__} returns the same iterator from every __iter__ call"
    return None


def iterate(loader: Iterable[Any], keys: BatchKeys = BatchKeys()) -> Iterator[Batch]:
    """Yield the loader's batches as Batch objects, with errors that say what the loader did wrong."""
    if isinstance(loader, (torch.Tensor, np.ndarray)):
        raise InputError(
            f"loader is a {type(loader).__name__} of shape {tuple(loader.shape)}, not a loader: iterating it yields "
            "single rows without targets. Pass DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)."
        )
    once = _read_once(loader)
    if once:
        raise InputError(
            f"{once}: torchmedic reads the data more than once and would use it up, leaving your own loop no "
            "batch. Let __iter__ return a new iterator each call (write it as a generator with yield)."
        )
    try:
        iterator = iter(loader)
    except TypeError as exc:
        raise InputError(f"loader is a {type(loader).__name__}, which cannot be iterated: pass a DataLoader.") from exc
    if iterator is loader:
        raise InputError(
            f"loader is a one-shot iterator ({type(loader).__name__}): torchmedic reads it more than once and "
            "would use it up. Pass a re-iterable such as a DataLoader or a list of batches."
        )
    index = 0
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            if index == 0:
                raise InputError(
                    "the loader yielded no batches: is the dataset empty, or drop_last=True with "
                    "fewer samples than batch_size?"
                ) from None
            return
        except Exception as exc:
            raise InputError(f"iterating the loader raised at batch {index}: {_loader_error(exc)}") from exc
        yield unpack(raw, keys, index=index)
        index += 1


def _loader_error(exc: Exception) -> str:
    """The loader's exception in one line; from a worker process, its last line (torch puts the worker's whole
    traceback in the message) and how to see the rest."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        return f"{text.splitlines()[-1]} (in a DataLoader worker: run with num_workers=0 to see where)"
    return f"{type(exc).__name__}: {text}"


@contextmanager
def prediction_at(key: Any) -> Iterator[None]:
    """Within the block, the prediction of a tuple, list or dict output is its element at `key` (the one the user's
    loss reads, see consumed_output); None keeps the default ('logits', else the first tensor)."""
    token = _PREDICTION.set(key)
    try:
        yield
    finally:
        _PREDICTION.reset(token)


def _primary_key(outputs: Any) -> Any:
    """The key or index of the prediction in a tuple, list or dict output; None when there is no tensor in it."""
    key = _PREDICTION.get()
    if isinstance(outputs, Mapping):
        if key in outputs and isinstance(outputs[key], torch.Tensor):
            return key
        if isinstance(outputs.get("logits"), torch.Tensor):
            return "logits"
        return next((k for k, v in outputs.items() if isinstance(v, torch.Tensor)), None)
    if isinstance(key, int) and 0 <= key < len(outputs) and isinstance(outputs[key], torch.Tensor):
        return key
    return next((i for i, v in enumerate(outputs) if isinstance(v, torch.Tensor)), None)


def replace_primary(outputs: Any, tensor: torch.Tensor) -> Any:
    """The outputs with their primary tensor (see primary_output) swapped for `tensor`, structure kept, so that
    the user's loss can be called on a made-up prediction."""
    if isinstance(outputs, Mapping):
        return {**outputs, _primary_key(outputs): tensor}
    if isinstance(outputs, (tuple, list)):
        index = _primary_key(outputs)
        return type(outputs)([tensor if i == index else v for i, v in enumerate(outputs)])
    return tensor


def primary_output(outputs: Any) -> torch.Tensor | None:
    """The tensor that stands for the model's prediction: the output itself; of a tuple, list or dict, the element
    the loss reads (see prediction_at), else a dict's `logits`, else the first tensor; an object's `.logits`."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, (Mapping, tuple, list)):
        key = _primary_key(outputs)
        return None if key is None else outputs[key]
    return getattr(outputs, "logits", None)


def output_elements(outputs: Any) -> list[tuple[Any, torch.Tensor]]:
    """(key, tensor) for each floating tensor directly inside a tuple, list or dict output."""
    if isinstance(outputs, Mapping):
        items = list(outputs.items())
    elif isinstance(outputs, (tuple, list)):
        items = list(enumerate(outputs))
    else:
        return []
    return [(k, v) for k, v in items if isinstance(v, torch.Tensor) and v.is_floating_point()]


def consumed_output(loss_fn: Any, outputs: Any, targets: torch.Tensor) -> Any:
    """The key of the tensor the loss reads when the model returns several (a loss on the second of (logits,
    probabilities)), found by which element the loss's gradient reaches; None for a single tensor or when unclear."""
    elements = output_elements(outputs)
    if len(elements) < 2:
        return None
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in elements}
    if isinstance(outputs, Mapping):
        probe: Any = {**outputs, **leaves}
    else:
        probe = type(outputs)(leaves.get(i, v) for i, v in enumerate(outputs))
    try:
        with torch.enable_grad():
            loss = loss_fn(probe, targets)
            loss = loss if loss.dim() == 0 else loss.mean()
            grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    except Exception:
        return None
    used = [k for k, g in zip(leaves, grads, strict=True) if g is not None and bool(g.abs().sum() > 0)]
    return used[0] if len(used) == 1 else None


def pick(outputs: Any, key: Any) -> torch.Tensor | None:
    """The output element at `key` (see consumed_output), or the primary output when `key` is None."""
    if key is None:
        return primary_output(outputs)
    value = outputs[key] if isinstance(outputs, (Mapping, tuple, list)) else None
    return value if isinstance(value, torch.Tensor) else primary_output(outputs)


def read_by(loss: torch.Tensor, elements: list[tuple[Any, torch.Tensor]]) -> list[Any]:
    """The keys of the output elements `loss` was computed from directly: those its graph reaches, less those that
    reach it only through another such element (features that go through the head into the logits)."""
    fed = [(k, v) for k, v in elements if v.grad_fn is not None and feeds(loss, v)]
    return [k for k, v in fed if not any(o is not v and feeds(o, v) for _, o in fed)]


def feeds(root: torch.Tensor, result: torch.Tensor) -> bool:
    """Whether `result` went into `root` (the loss itself, or scaled, summed, averaged on the way), searching
    its autograd graph."""
    if root is result:
        return True
    target = result.grad_fn
    stack, seen = [root.grad_fn], set[int]()
    while stack and target is not None and len(seen) < MAX_GRAPH_NODES:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        if node is target:
            return True
        seen.add(id(node))
        stack.extend(parent for parent, _ in node.next_functions)
    return False
