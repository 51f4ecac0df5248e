"""The objects a Plan (tests/plan.py) describes, as a user would write them: nested models (conv, linear, norms,
dropout, pooling, residual blocks, recurrent layers, embeddings, two inputs, dict and tuple outputs), datasets in
the plan's batch format, loaders, optimizers with param groups and schedulers, and the user's own training loop.
Shared by tests/test_properties.py and bench/property_bench.py."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import torchmedic
from torchmedic import BatchKeys

from plan import ACTIVATIONS, DICT_KEYS, INPUT_SHAPES, SAMPLES, SECOND_FEATURES, VOCAB, Plan


class Residual(nn.Module):
    """act(body(x) + x): a skip connection around a block that keeps the shape, activated after the sum."""

    def __init__(self, body: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.body, self.act = body, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        out += x  # in place, as torchvision's ResNet blocks add their identity (body ends in a norm or a layer)
        return self.act(out)


class Recurrent(nn.Module):
    """An RNN, LSTM or GRU read as users write it: `out, _ = rnn(x)` then the last step, or the last hidden state."""

    def __init__(self, plan: Plan, features: int) -> None:
        super().__init__()
        kinds: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
        self.rnn = kinds[plan.recurrent](
            features, plan.width, num_layers=min(plan.depth, 2), batch_first=True, bidirectional=plan.bidirectional
        )
        self.read = plan.read

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)  # (B, T, H * directions), and h (or (h, c) for an LSTM)
        if self.read == "last":
            return out[:, -1]
        h = state[0] if isinstance(state, tuple) else state  # (layers * directions, B, H)
        return h[-1]


class Tokens(nn.Module):
    """Embedded token ids, averaged over the sequence or read by a recurrent layer."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, plan.width)
        self.reader = Recurrent(plan, plan.width) if plan.residual else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.embed(tokens)  # (B, T, width)
        return self.reader(e) if self.reader is not None else e.mean(dim=1)


class TwoInputs(nn.Module):
    """Two inputs, each through its own layer, joined: `model(x_a, x_b)`."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.a = nn.Linear(INPUT_SHAPES["two_inputs"][0], plan.width)
        self.b = nn.Linear(SECOND_FEATURES, plan.width)
        self.act = ACTIVATIONS[plan.activation]()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat([self.a(a), self.b(b)], dim=1))


class Net(nn.Module):
    """A body, a head, and the output in the form the plan asks for: a tensor, a dict or a tuple."""

    def __init__(self, body: nn.Module, head: nn.Module, output: str) -> None:
        super().__init__()
        self.body, self.head, self.output = body, head, output

    def forward(self, *inputs: torch.Tensor) -> Any:
        h = self.body(*inputs)
        out = self.head(h)
        if self.output == "logits_dict":
            return {"logits": out, "features": h}
        if self.output == "keyed_dict":
            return {"features": h, "pred": out}  # the prediction is not the first tensor: the loss names it
        if self.output == "tuple":
            return out, h
        return out


def _norm(plan: Plan, channels: int) -> nn.Module:
    dims = {"mlp": 1, "conv1d": 1, "conv2d": 2}[plan.family]
    if plan.norm == "batch":
        return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)
    if plan.norm == "layer":
        return nn.LayerNorm(channels)
    if plan.norm == "group":
        return nn.GroupNorm(2, channels)
    if plan.norm == "instance":
        return nn.InstanceNorm1d(channels, affine=True) if plan.family == "conv1d" else nn.InstanceNorm2d(channels)
    return nn.Identity()


def _block(plan: Plan, c_in: int, c_out: int, activated: bool = True) -> nn.Sequential:
    if plan.family == "mlp":
        layer: nn.Module = nn.Linear(c_in, c_out)
    elif plan.family == "conv1d":
        layer = nn.Conv1d(c_in, c_out, 3, padding=1)
    else:
        layer = nn.Conv2d(c_in, c_out, 3, padding=1)
    parts = [layer, _norm(plan, c_out), *([ACTIVATIONS[plan.activation]()] if activated else [])]
    return nn.Sequential(*parts, *([nn.Dropout(plan.dropout)] if plan.dropout else []))


def _pool(plan: Plan) -> list[nn.Module]:
    if plan.family == "mlp":
        return []
    one_d = plan.family == "conv1d"
    pools = {
        "max": nn.MaxPool1d(2) if one_d else nn.MaxPool2d(2),
        "avg": nn.AvgPool1d(2) if one_d else nn.AvgPool2d(2),
        "adaptive": nn.AdaptiveAvgPool1d(1) if one_d else nn.AdaptiveAvgPool2d(1),
        "flatten": nn.Identity(),
    }
    return [pools[plan.pool], nn.Flatten()]


def body(plan: Plan) -> nn.Module:
    """The layers before the head: the plan's family, nested in Sequentials and residual blocks."""
    if plan.family == "recurrent":
        return Recurrent(plan, INPUT_SHAPES["recurrent"][1])
    if plan.family == "tokens":
        return Tokens(plan)
    if plan.family == "two_inputs":
        return TwoInputs(plan)
    c_in = INPUT_SHAPES[plan.family][0]
    blocks: list[nn.Module] = [_block(plan, c_in, plan.width)]
    for _ in range(plan.depth - 1):
        if plan.residual:
            blocks.append(Residual(_block(plan, plan.width, plan.width, False), ACTIVATIONS[plan.activation]()))
        else:
            blocks.append(_block(plan, plan.width, plan.width))
    return nn.Sequential(nn.Sequential(*blocks), *_pool(plan))


def inputs(plan: Plan, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """`n` samples of the model's inputs: token ids for embeddings, else standard normal features."""
    if plan.family == "tokens":
        return (torch.randint(0, VOCAB, (n, *INPUT_SHAPES["tokens"]), generator=gen),)
    first = torch.randn(n, *INPUT_SHAPES[plan.family], generator=gen)
    if plan.family == "two_inputs":
        return first, torch.randn(n, SECOND_FEATURES, generator=gen)
    return (first,)


CLASSES = 3


def head(plan: Plan, features: int) -> nn.Module:
    """The last layer: class scores, one regression value, or the input again (per token: scores over the vocab)."""
    if plan.task == "classify":
        return nn.Linear(features, CLASSES)
    if plan.task == "regress":
        return nn.Linear(features, 1)
    shape = (VOCAB, INPUT_SHAPES["tokens"][0]) if plan.family == "tokens" else INPUT_SHAPES[plan.family]
    return nn.Sequential(nn.Linear(features, math.prod(shape)), nn.Unflatten(1, shape))


class Loss:
    """The user's loss: reads the prediction from the model's output (a key, an index or the tensor itself)."""

    def __init__(self, plan: Plan) -> None:
        self.output, self.task, self.tokens = plan.output, plan.task, plan.family == "tokens"

    def __call__(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        if self.output == "logits_dict":
            outputs = outputs["logits"]
        elif self.output == "keyed_dict":
            outputs = outputs["pred"]
        elif self.output == "tuple":
            outputs = outputs[0]
        if self.task == "classify" or (self.task == "reconstruct" and self.tokens):
            return F.cross_entropy(outputs, targets)  # (B, C) vs (B,), or (B, VOCAB, T) vs (B, T) token ids
        return F.mse_loss(outputs, targets)

    def __repr__(self) -> str:
        return f"Loss(output={self.output!r}, task={self.task!r})"


def targets(plan: Plan, x: tuple[torch.Tensor, ...], gen: torch.Generator) -> torch.Tensor | None:
    """Targets a random teacher computes from the inputs, so that there is something to learn."""
    if plan.task == "reconstruct":
        return None
    flat = torch.cat([t.float().flatten(1) for t in x], dim=1)
    teacher = torch.randn(flat.shape[1], CLASSES, generator=gen) / math.sqrt(flat.shape[1])
    scores = flat @ teacher
    return scores.argmax(1) if plan.task == "classify" else scores[:, :1]


class Samples(Dataset):
    """Per-sample items in the plan's batch format; the default collate turns them into batches."""

    def __init__(self, plan: Plan, x: tuple[torch.Tensor, ...], y: torch.Tensor | None) -> None:
        self.plan, self.x, self.y = plan, x, y

    def __len__(self) -> int:
        return len(self.x[0])

    def __getitem__(self, i: int) -> Any:
        x: Any = self.x[0][i] if len(self.x) == 1 else [t[i] for t in self.x]
        fmt = self.plan.batch
        if fmt == "tensor":
            return x
        y = self.y[i] if self.y is not None else None
        if fmt == "dict":
            in_key, target_key = DICT_KEYS[self.plan.dict_keys]
            return {in_key: x, target_key: y, "index": i}
        if fmt == "list":
            return [x, y]
        if fmt == "extra":
            return x, y, i
        return x, y


def split(plan: Plan, batch: Any) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """(model inputs, loss targets) of a batch, as the user's loop reads its own format."""
    if plan.batch == "tensor":
        return (batch,), batch
    if plan.batch == "dict":
        in_key, target_key = DICT_KEYS[plan.dict_keys]
        x, y = batch[in_key], batch[target_key]
    else:
        x, y = batch[0], batch[1]
    return (tuple(x) if isinstance(x, list) else (x,)), y


def loader(plan: Plan, data: Samples) -> Any:
    if plan.loader == "list":
        return list(DataLoader(data, batch_size=plan.batch_size))
    if plan.loader == "shuffled":
        gen = torch.Generator().manual_seed(plan.seed)
        return DataLoader(data, batch_size=plan.batch_size, shuffle=True, generator=gen)
    return DataLoader(data, batch_size=plan.batch_size)


def optimizer(plan: Plan, model: Net) -> torch.optim.Optimizer:
    """The plan's optimizer, over the body and the head as two groups (the head at a tenth of the LR) when asked."""
    if plan.groups == 2:
        params: Any = [{"params": model.body.parameters()}, {"params": model.head.parameters(), "lr": plan.lr / 10}]
    else:
        params = model.parameters()
    if plan.optimizer == "sgd":
        return torch.optim.SGD(params, lr=plan.lr)
    if plan.optimizer == "sgd_momentum":
        return torch.optim.SGD(params, lr=plan.lr, momentum=0.9, nesterov=True)
    if plan.optimizer == "adam":
        return torch.optim.Adam(params, lr=plan.lr)
    if plan.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=plan.lr, weight_decay=0.05)
    return torch.optim.RMSprop(params, lr=plan.lr, momentum=0.5)


def scheduler(plan: Plan, opt: torch.optim.Optimizer) -> Any:
    if plan.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    if plan.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    if plan.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=100)
    if plan.scheduler == "lambda":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.9**step)
    if plan.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    return None


def noop_hook(module: nn.Module, args: Any, output: Any) -> None:
    """A forward hook of the user's (a logger, say) that torchmedic must leave in place."""


@dataclass
class Case:
    """One generated setup, built from its plan, ready for the user's loop and for torchmedic."""

    plan: Plan
    model: Net
    loader: Any
    loss_fn: Loss
    optimizer: torch.optim.Optimizer
    scheduler: Any
    keys: BatchKeys | None

    @property
    def given_optimizer(self) -> torch.optim.Optimizer | None:
        """What the user passes to torchmedic: the optimizer, or None to let it choose."""
        return self.optimizer if self.plan.pass_optimizer else None


def build(plan: Plan) -> Case:
    """The plan's objects, seeded, and trained `warm_steps` steps by the user's loop (so optimizer, scheduler and
    grads have state) before the user's last touches: eval mode, a hook."""
    torch.manual_seed(plan.seed)
    gen = torch.Generator().manual_seed(plan.seed)
    x = inputs(plan, SAMPLES, gen)
    net_body = body(plan)
    with torch.no_grad():
        features = net_body.eval()(*(t[:2] for t in x)).shape[1]
    model = Net(net_body.train(), head(plan, features), plan.output)
    frozen = {"none": [], "first": list(model.parameters())[:1], "body": list(model.body.parameters())}
    for p in frozen[plan.freeze]:
        p.requires_grad_(False)
    opt = optimizer(plan, model)
    keys = BatchKeys(*DICT_KEYS["custom"]) if plan.batch == "dict" and plan.dict_keys == "custom" else None
    case = Case(plan, model, loader(plan, Samples(plan, x, targets(plan, x, gen))), Loss(plan), opt, None, keys)
    case.scheduler = scheduler(plan, opt)
    train(case, plan.warm_steps)
    if plan.eval_mode:
        model.eval()
    if plan.hook:
        model.head.register_forward_hook(noop_hook)
    return case


def train(case: Case, steps: int, monitor: torchmedic.Monitor | None = None) -> None:
    """The user's own loop: `steps` optimizer steps over the loader (again from the start when it runs out)."""
    done = 0
    while done < steps:
        for batch in case.loader:
            x, y = split(case.plan, batch)
            case.optimizer.zero_grad()
            out = case.model(*x)
            loss = case.loss_fn(out, y)
            loss.backward()
            case.optimizer.step()
            if isinstance(case.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                case.scheduler.step(loss.item())
            elif case.scheduler is not None:
                case.scheduler.step()
            if monitor is not None:
                monitor.log(loss=loss, outputs=out, targets=y)
            done += 1
            if done == steps:
                return
