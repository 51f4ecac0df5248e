"""What the property tests generate: a Plan of every choice of one setup a user could write (model family, layers,
batch format, loader, optimizer, scheduler, the user's last touches) and the hypothesis strategy that draws it, with
the fixed profile that keeps CI deterministic. tests/generated.py builds a Plan into objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

PROFILE = "torchmedic-properties"
settings.register_profile(
    PROFILE,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    database=None,  # and remembers nothing between runs
    deadline=None,  # one example runs a whole diagnosis: seconds, and noisy on a shared machine
    max_examples=5,  # per property and model family; bench/property_bench.py runs many more
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)

FAMILIES = ("mlp", "conv1d", "conv2d", "recurrent", "tokens", "two_inputs")
INPUT_SHAPES = {  # per sample
    "mlp": (10,),
    "conv1d": (2, 16),
    "conv2d": (3, 8, 8),
    "recurrent": (6, 4),  # (time, features), batch_first
    "tokens": (7,),  # token ids below VOCAB
    "two_inputs": (6,),  # and SECOND_FEATURES
}
VOCAB, SECOND_FEATURES, SAMPLES = 12, 3, 100  # 100: the last batch is smaller than the others
NORMS = {
    "mlp": ("batch", "layer", "group", "none"),
    "conv1d": ("batch", "group", "instance", "none"),
    "conv2d": ("batch", "group", "instance", "none"),
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu_inplace": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
DICT_KEYS = {"x": ("x", "y"), "image": ("image", "label"), "custom": ("tokens", "answer")}  # custom: needs BatchKeys


@dataclass(frozen=True)
class Plan:
    """Every choice of one generated setup; a failing example prints as this recipe."""

    family: str
    width: int
    depth: int
    norm: str
    activation: str
    dropout: float
    residual: bool
    pool: str
    recurrent: str
    read: str  # recurrent: the last step of the output ("last") or the last hidden state ("hidden")
    bidirectional: bool
    task: str  # "classify", "regress" or, for bare-tensor batches, "reconstruct"
    output: str  # "tensor", "logits_dict", "keyed_dict" (the loss reads "pred") or "tuple"
    batch: str  # "tuple", "list", "dict", "tensor" or "extra" (an index after the targets)
    dict_keys: str
    loader: str  # "plain", "shuffled" (its own generator) or "list" (a list of batches)
    batch_size: int
    optimizer: str
    lr: float
    groups: int
    scheduler: str
    freeze: str  # "none", "first" (one parameter) or "body" (all but the head: fine-tuning)
    warm_steps: int
    eval_mode: bool
    hook: bool
    pass_optimizer: bool
    seed: int


@st.composite
def plans(draw: st.DrawFn, family: str | None = None) -> Plan:
    """A Plan whose choices fit together (pooling for convs, norms per family, targets per batch format), of the
    given model family or any."""
    family = family or draw(st.sampled_from(FAMILIES))
    batch = draw(st.sampled_from(("tuple", "list", "dict", "extra") + (("tensor",) if family != "two_inputs" else ())))
    # a bare-tensor batch is a single tensor: it cannot carry a model's second input
    task = "reconstruct" if batch == "tensor" else draw(st.sampled_from(("classify", "classify", "regress")))
    optimizer = draw(st.sampled_from(("sgd", "sgd_momentum", "adam", "adamw", "rmsprop")))
    return Plan(
        family=family,
        width=draw(st.sampled_from((4, 8, 16))),
        depth=draw(st.integers(1, 3)),
        norm=draw(st.sampled_from(NORMS.get(family, ("none",)))),
        activation=draw(st.sampled_from(tuple(ACTIVATIONS))),
        dropout=draw(st.sampled_from((0.0, 0.0, 0.3))),
        residual=draw(st.booleans()),
        pool=draw(st.sampled_from(("max", "avg", "adaptive", "flatten"))),
        recurrent=draw(st.sampled_from(("rnn", "lstm", "gru"))),
        read=draw(st.sampled_from(("last", "hidden"))),
        bidirectional=draw(st.booleans()),
        task=task,
        output=draw(st.sampled_from(("tensor", "tensor", "logits_dict", "keyed_dict", "tuple"))),
        batch=batch,
        dict_keys=draw(st.sampled_from(tuple(DICT_KEYS))),
        loader=draw(st.sampled_from(("plain", "shuffled", "list"))),
        batch_size=draw(st.sampled_from((8, 16, 32))),
        optimizer=optimizer,
        lr=draw(st.sampled_from((1e-3, 1e-2, 1e-1) if optimizer.startswith("sgd") else (1e-4, 1e-3, 1e-2))),
        groups=draw(st.integers(1, 2)),
        scheduler=draw(st.sampled_from(("none", "step", "cosine", "onecycle", "plateau", "lambda"))),
        freeze=draw(st.sampled_from(("none", "first", "body"))),
        warm_steps=draw(st.integers(0, 3)),
        eval_mode=draw(st.booleans()),
        hook=draw(st.booleans()),
        pass_optimizer=draw(st.sampled_from((True, True, True, False))),
        seed=draw(st.integers(0, 2**16)),
    )
