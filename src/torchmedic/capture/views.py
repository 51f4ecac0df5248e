"""How a script turned one recorded value into the tensor it passed on: an element picked, an activation, a reshape,
a dtype cast. A `View` is found by trying these on the recorded tensors and checking that the result is equal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import torch

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "softmax": lambda t: torch.softmax(t, dim=1),
    "log_softmax": lambda t: torch.log_softmax(t, dim=1),
}
RTOL, ATOL = 1e-5, 1e-6  # float tolerance of "the same tensor" (device moves and casts round a little)


@dataclass(frozen=True)
class View:
    """`value[key]`, then an activation, then `reshape(-1, *shape)`, then `.to(dtype)`; None skips a step."""

    key: Any = None
    activation: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: torch.dtype | None = None

    def __call__(self, value: Any) -> torch.Tensor:
        t = value if self.key is None else element(value, self.key)
        if self.activation is not None:
            t = ACTIVATIONS[self.activation](t)
        if self.shape is not None:
            t = t.reshape(-1, *self.shape)
        return t if self.dtype is None else t.to(self.dtype)

    @property
    def changes_tensor(self) -> bool:
        """Whether anything beyond picking the element happens."""
        return (self.activation, self.shape, self.dtype) != (None, None, None)

    def describe(self, name: str) -> str:
        """The view as code applied to `name`, e.g. `torch.sigmoid(out[0]).reshape(-1).float()`."""
        text = name if self.key is None else f"{name}[{self.key!r}]"
        if self.activation == "sigmoid":
            text = f"torch.sigmoid({text})"
        elif self.activation is not None:
            text = f"torch.{self.activation}({text}, dim=1)"
        if self.shape is not None:
            text += f".reshape({', '.join(map(str, (-1, *self.shape)))})"
        if self.dtype is not None:
            text += f".to({self.dtype})"
        return text


def element(value: Any, key: Any) -> Any:
    """`value[key]` for tuples, lists and dicts; the attribute for output objects (`.logits`)."""
    if isinstance(value, (Mapping, tuple, list)):
        return value[key]
    return getattr(value, key)


def find_view(source: Any, seen: Any, activations: tuple[str | None, ...] = (None,)) -> View | None:
    """The simplest view that turns `source` (a tensor, or a tuple, list, dict or object holding tensors) into the
    recorded tensor `seen`; None when none does."""
    if not isinstance(seen, torch.Tensor):
        return None
    shapes = [None, tuple(seen.shape[1:])] if seen.dim() >= 1 else [None]
    for (key, value), activation, shape, dtype in product(_elements(source), activations, shapes, (None, seen.dtype)):
        if activation is not None and not value.is_floating_point():
            continue
        if shape is not None and value.numel() != seen.numel():
            continue
        view = View(key, activation, shape, dtype)
        try:
            candidate = view(source)
        except (RuntimeError, IndexError, ValueError):
            continue
        if same(candidate, seen):
            return view
    return None


def _elements(source: Any) -> list[tuple[Any, torch.Tensor]]:
    if isinstance(source, torch.Tensor):
        return [(None, source)]
    if isinstance(source, Mapping):
        items = list(source.items())
    elif isinstance(source, (tuple, list)):
        items = list(enumerate(source))
    else:
        items = [("logits", getattr(source, "logits", None))]
    return [(k, v) for k, v in items if isinstance(v, torch.Tensor)]


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shape, dtype and values (within float tolerance), wherever each lives."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach().cpu(), b.detach().cpu()
    if not a.is_floating_point():
        return torch.equal(a, b)
    return bool(torch.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True))
