"""Code for the user's script, in their terms: their optimizer class and settings, their layer names."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from torchmedic.clone import OptimizerSpec

_PLUMBING = frozenset({"params", "foreach", "maximize", "capturable", "differentiable", "fused", "initial_lr"})


def module_ref(scope: str) -> str:
    """How the user's code refers to a module: `model.fc`, `model.features[3]`."""
    if not scope:
        return "model"
    parts = []
    for part in scope.split("."):
        parts.append(f"[{part}]" if part.isdigit() else f".{part}")
    return "model" + "".join(parts)


def numbers(values: Sequence[float], limit: int = 8) -> str:
    """A short Python list literal of floats, or "" when there are too many to read."""
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]" if len(values) <= limit else ""


def _literal(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return f"{value:.1e}" if value and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:g}"
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return "(" + ", ".join(_literal(v) or "" for v in value) + ")"
    return None


def params_expr(spec: OptimizerSpec, model: nn.Module) -> str:
    """How the user's script names the parameters the optimizer holds."""
    names = [n for n, _ in model.named_parameters()]
    held = spec.held
    if set(names) <= held:
        return "model.parameters()"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if held == trainable:
        return "(p for p in model.parameters() if p.requires_grad)"
    owners = sorted({n.rsplit(".", 1)[0] for n in held if "." in n})
    if len(owners) == 1 and {n for n in names if n.startswith(owners[0] + ".")} == held:
        return f"{module_ref(owners[0])}.parameters()"
    return "[" + ", ".join(f"{module_ref(n.rsplit('.', 1)[0])}.{n.rsplit('.', 1)[-1]}" for n in sorted(held)) + "]"


def optimizer_line(spec: OptimizerSpec, model: nn.Module) -> str:
    """`optimizer = torch.optim.SGD(model.parameters(), lr=..., momentum=0.9)`: the recipe's class, its first group's
    settings that differ from the class defaults, over the parameters it holds."""
    signature = inspect.signature(spec.cls.__init__).parameters
    defaults = {k: p.default for k, p in signature.items() if p.default is not inspect.Parameter.empty}
    hyper = spec.groups[0].hyper
    args = [f"lr={_literal(spec.lr)}"]
    for key, value in hyper.items():
        if key in _PLUMBING or key == "lr" or key not in defaults or _same(value, defaults[key]):
            continue
        text = _literal(value)
        if text is not None:
            args.append(f"{key}={text}")
    line = f"optimizer = torch.optim.{spec.name}({params_expr(spec, model)}, {', '.join(args)})"
    if len(spec.groups) > 1:
        line += f"  # and the same change in each of the {len(spec.groups)} param groups"
    return line


def _same(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-12)
        return bool(a == b)
    except Exception:
        return False
