"""Every live rule has a sick training loop that triggers it and a healthy one that triggers nothing.

The registry drives the test: a live rule without an entry in SETUPS fails it. Each setup is a short, real
training run under `Monitor`; the tables at the end check edge cases of the pure rule functions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes, load_digits, make_classification
from torch import nn

from torchmedic.monitor import Monitor, MonitorConfig
from torchmedic.rules.registry import rules_for
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

CONFIG = MonitorConfig(every=2)  # sample often so that short runs confirm findings


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits(raw: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    if not raw:
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, torch.tensor(data.target)


def diabetes(scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_diabetes()
    x = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.float32)
    return (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std() * scale


def mlp(*tail: nn.Module, inputs: int = 64, outputs: int = 10, hidden: int = 64) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs), *tail)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 30,
    batch: int = 32,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    head: Callable[[torch.Tensor], torch.Tensor] = lambda o: o,
    shuffle: bool = True,
    zero_grad: str = "before",
    scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    eval_inputs: torch.Tensor | None = None,
    before: Callable[[nn.Module], None] | None = None,
    seed: int = 0,
) -> list[str]:
    """Train `model` under a Monitor and return the causes it reported."""
    torch.manual_seed(seed)
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = scheduler(optimizer) if scheduler else None
    with Monitor(model, optimizer, config=CONFIG) as monitor:
        if before is not None:
            before(model)
        for step in range(steps):
            idx = torch.randperm(len(x))[:batch] if shuffle else torch.arange(step * batch, (step + 1) * batch) % len(x)
            xb, yb = x[idx], y[idx]
            if zero_grad == "before":
                optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(head(out), yb)
            loss.backward()
            if zero_grad == "between":
                optimizer.zero_grad()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            monitor.log(loss=loss, outputs=out, targets=yb)
            if eval_inputs is not None and step % 5 == 4:
                model.eval()
                with torch.no_grad():
                    model(eval_inputs[:64])
                model.train()
    return [f.cause for f in monitor.findings]


def sgd(model: nn.Module, lr: float = 0.05, **kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, **kwargs)


def adam(model: nn.Module, lr: float = 1e-3, **kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, **kwargs)


def init(model: nn.Module, fn: Callable[[nn.Linear, int], None]) -> nn.Module:
    with torch.no_grad():
        for i, m in enumerate(m for m in model.modules() if isinstance(m, nn.Linear)):
            fn(m, i)
    return model


def deep(act: type[nn.Module] = nn.ReLU, depth: int = 6, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(64 if i == 0 else width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def churn(balanced: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=4,
        n_redundant=2,
        class_sep=0.5,
        weights=None if balanced else [0.93, 0.07],
        flip_y=0.02,
        random_state=0,
    )
    xt = torch.tensor(x, dtype=torch.float32)
    return (xt - xt.mean(0)) / xt.std(0), torch.tensor(y)


def load_prefixed(prefix: str) -> Callable[[nn.Module], None]:
    def load(model: nn.Module) -> None:
        state = {prefix + k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(state, strict=False)

    return load


def regression(model_tail: Callable[[torch.Tensor], torch.Tensor], scale: float = 1.0, **kw: Any) -> list[str]:
    x, y = diabetes(scale)
    model = mlp(inputs=10, outputs=1)
    return fit(model, x, y, loss_fn=F.mse_loss, head=model_tail, optimizer=adam(model), steps=30, **kw)


def cls(**kw: Any) -> list[str]:
    x, y = digits()
    model = kw.pop("model", None) or mlp()
    return fit(model, x, y, **kw)


def _steplr(o: torch.optim.Optimizer) -> Any:
    return torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.1)


def _nan_rows() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits()
    x = x.clone()
    x[::5, 3] = float("nan")
    return x, y


def _sorted() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits()
    order = y.argsort(stable=True)
    return x[order], y[order]


def _symmetric(m: nn.Linear, i: int) -> None:
    m.weight.fill_(0.05)
    m.bias.zero_()


def _dead(m: nn.Linear, i: int) -> None:
    if i == 0:
        m.bias.fill_(-20.0)


def _nan_weight(m: nn.Linear, i: int) -> None:
    if i == 0:
        m.weight[3, 5] = math.nan  # one NaN, as a corrupt checkpoint or an init dividing by zero leaves it


def _small(m: nn.Linear, i: int) -> None:
    m.weight.normal_(0, 1e-3)


def _large(m: nn.Linear, i: int) -> None:
    m.weight.normal_(0, 3.0)


def _imbalanced(balanced: bool) -> list[str]:
    x, y = churn(balanced)
    model = mlp(inputs=20, outputs=2)
    return fit(model, x, y, steps=40, batch=64, optimizer=sgd(model, lr=0.01))


def _single_unit(softmax: bool) -> list[str]:
    x, y = digits()
    target = (y % 2).float()
    model = mlp(nn.Softmax(dim=1), outputs=1) if softmax else mlp(outputs=1)
    loss = F.binary_cross_entropy if softmax else F.binary_cross_entropy_with_logits
    return fit(model, x, target, loss_fn=loss, head=lambda o: o.squeeze(1))


def _over_regularized(decay: float) -> list[str]:
    x, y = digits()
    model = mlp()
    return fit(model, x, y, steps=60, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=decay))


SICK: dict[str, Callable[[], list[str]]] = {
    "optim.missing_zero_grad": lambda: cls(zero_grad="never", optimizer=None),
    "optim.not_updating": lambda: cls(zero_grad="between"),
    "optim.over_regularized": lambda: _over_regularized(2.0),
    "mode.eval_during_training": lambda: cls(model=mlp(nn.Dropout(0.2)), before=lambda m: m.eval()),
    "mode.bn_small_batch": lambda: cls(
        model=nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)), batch=2
    ),
    "lr.too_high": lambda: cls(model=(m := mlp()), optimizer=sgd(m, lr=20.0)),
    "lr.too_low": lambda: cls(model=(m := mlp()), optimizer=adam(m, lr=1e-9)),
    "lr.schedule_collapse": lambda: cls(scheduler=_steplr),
    "data.unnormalized": lambda: fit(mlp(), *(lambda xy: (xy[0] * 16, xy[1]))(digits(raw=True))),
    "data.target_scale": lambda: regression(lambda o: o.squeeze(1), scale=1000.0),
    "data.class_imbalance": lambda: _imbalanced(balanced=False),
    "data.low_variability": lambda: fit(mlp(), torch.zeros(512, 64) + digits()[0][:1], digits()[1][:512]),
    "data.unshuffled": lambda: fit(mlp(), *_sorted(), shuffle=False, steps=50),
    "data.nonfinite": lambda: fit(mlp(), *_nan_rows()),
    "data.train_infer_mismatch": lambda: cls(eval_inputs=digits(raw=True)[0]),
    "loss.double_softmax": lambda: cls(model=mlp(nn.Softmax(dim=1))),
    "loss.task_mismatch": lambda: cls(loss_fn=F.nll_loss),
    "loss.shape_broadcast": lambda: regression(lambda o: o),
    "arch.output_activation": lambda: cls(model=mlp(nn.ReLU())),
    "arch.softmax_single_unit": lambda: _single_unit(softmax=True),
    "init.nonfinite": lambda: cls(model=init(mlp(), _nan_weight)),
    "init.too_small": lambda: cls(model=init(deep(), _small)),
    "init.too_large": lambda: cls(model=init(deep(nn.Tanh), _large)),
    "init.symmetric": lambda: cls(model=init(mlp(), _symmetric)),
    "init.dead_units": lambda: cls(model=init(mlp(), _dead)),
    "init.pretrained_not_loaded": lambda: cls(before=load_prefixed("module.")),
}
HEALTHY: dict[str, Callable[[], list[str]]] = {
    "optim.missing_zero_grad": lambda: cls(),
    "optim.not_updating": lambda: cls(zero_grad="before"),
    "optim.over_regularized": lambda: _over_regularized(1e-4),
    "mode.eval_during_training": lambda: cls(model=mlp(nn.Dropout(0.2))),
    "mode.bn_small_batch": lambda: cls(
        model=nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)), batch=32
    ),
    "lr.too_high": lambda: cls(model=(m := mlp()), optimizer=sgd(m, lr=0.05)),
    "lr.too_low": lambda: cls(model=(m := mlp()), optimizer=adam(m, lr=1e-3)),
    "lr.schedule_collapse": lambda: cls(scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 10, gamma=0.5)),
    "data.unnormalized": lambda: fit(mlp(), *digits()),
    "data.target_scale": lambda: regression(lambda o: o.squeeze(1)),
    "data.class_imbalance": lambda: _imbalanced(balanced=True),
    "data.low_variability": lambda: fit(mlp(), *digits()),
    "data.unshuffled": lambda: fit(mlp(), *_sorted(), shuffle=True, steps=50),
    "data.nonfinite": lambda: fit(mlp(), *digits()),
    "data.train_infer_mismatch": lambda: cls(eval_inputs=digits()[0]),
    "loss.double_softmax": lambda: cls(model=mlp(nn.LogSoftmax(dim=1))),
    "loss.task_mismatch": lambda: cls(loss_fn=F.nll_loss, head=lambda o: F.log_softmax(o, dim=1)),
    "loss.shape_broadcast": lambda: regression(lambda o: o.squeeze(1)),
    "arch.output_activation": lambda: cls(model=mlp()),
    "arch.softmax_single_unit": lambda: _single_unit(softmax=False),
    "init.nonfinite": lambda: cls(model=mlp()),
    "init.too_small": lambda: cls(model=deep()),
    "init.too_large": lambda: cls(model=deep(nn.Tanh)),
    "init.symmetric": lambda: cls(model=mlp()),
    "init.dead_units": lambda: cls(model=mlp()),
    "init.pretrained_not_loaded": lambda: cls(before=load_prefixed("")),
}
LIVE = rules_for("live")


@pytest.mark.filterwarnings("ignore:Using a target size")  # the sick broadcast setup makes torch warn
@pytest.mark.parametrize("rule", LIVE, ids=[r.cause for r in LIVE])
def test_sick_setup_triggers_the_rule(rule: Any) -> None:
    assert rule.cause in SICK, f"live rule {rule.cause} has no sick setup in SICK"
    assert rule.cause in SICK[rule.cause]()


@pytest.mark.parametrize("rule", LIVE, ids=[r.cause for r in LIVE])
def test_healthy_setup_triggers_nothing(rule: Any) -> None:
    assert rule.cause in HEALTHY, f"live rule {rule.cause} has no healthy setup in HEALTHY"
    assert HEALTHY[rule.cause]() == []


# ---- tables on the pure functions ---------------------------------------------------------------------------------
RULES = Thresholds()


def signals(**values: Any) -> Signals:
    s = Signals()
    for key, value in values.items():
        name, _, scope = key.replace("__", ".").partition("@")
        s.emit(name, value, scope)
    return s


@pytest.mark.parametrize("rule", LIVE, ids=[r.cause for r in LIVE])
def test_no_signals_no_finding(rule: Any) -> None:
    assert rule(Signals(), RULES) is None


NAN_RUN = dict(
    loss=math.nan,
    loss__first=math.nan,
    grad__norm=math.nan,
    update__ratio_median__recent=math.nan,
    input__mean=math.nan,
    input__std=math.nan,
    input__abs_max=math.nan,
    output__min=math.nan,
    output__max=math.nan,
    output__zero_fraction=math.nan,
    target__mean=math.nan,
    lr__fraction=math.nan,
    weight__norm=math.nan,
    monitor__sampled_steps=1,
    monitor__early=True,
    monitor__step=1,
)


@pytest.mark.parametrize("rule", LIVE, ids=[r.cause for r in LIVE])
def test_nan_signals_do_not_raise(rule: Any) -> None:
    finding = rule(signals(**NAN_RUN), RULES)
    assert finding is None or finding.cause == rule.cause


SCHEDULES = [  # (decade steps, current step, expected): when did the LR fall 1000x below its peak, and how long ago
    ({"1": 2, "2": 3, "3": 4}, 4, False),  # just fell
    ({"1": 2, "2": 3, "3": 4}, 20, True),  # StepLR per batch: ~0 since step 4
    ({"1": 880, "2": 960, "3": 985}, 1000, False),  # a cosine tail: the last 2% of the run
    ({"1": 50}, 500, False),  # 10x down only
    ({}, 100, False),
]


@pytest.mark.parametrize(("decades", "step", "expected"), SCHEDULES)
def test_schedule_collapse_table(decades: dict[str, int], step: int, expected: bool) -> None:
    from torchmedic.rules.live.lr import schedule_collapse

    s = signals(lr__decade_steps=decades, monitor__step=step, lr__fraction=1e-4, **{"lr@group0": 1e-5})
    assert (schedule_collapse(s, RULES) is not None) is expected


NONFINITE = [  # (weight.nonfinite per parameter before the first update, early, named?)
    ({"0.weight": 1.0}, True, True),
    ({"0.weight": 0.0, "2.bias": 0.0}, True, False),
    ({"0.weight": math.nan}, True, False),  # not measured
    ({"0.weight": 3.0}, False, False),  # judged on the first sampled steps only
]


@pytest.mark.parametrize(("counts", "early", "named"), NONFINITE)
def test_nonfinite_weights_table(counts: dict[str, float], early: bool, named: bool) -> None:
    from torchmedic.rules.live.init import nonfinite
    from torchmedic.rules.live.lr import too_high

    s = signals(monitor__early=early, loss=math.nan, **{f"weight__nonfinite@{k}": v for k, v in counts.items()})
    assert (nonfinite(s, RULES) is not None) is named
    if named:  # a NaN weight, not the step size, explains the NaN loss
        assert too_high(s, RULES) is None


STEPLESS = [  # (training forwards since a step, backward passes counted, foreign steps, named?)
    (48, 16, 0, True),
    (48, 16, 47, True),
    (48, 0, 0, False),  # forwards without backward: an evaluation with gradients on
    (16, 16, 0, False),  # fewer than gradient accumulation may take
]


@pytest.mark.parametrize(("forwards", "backwards", "foreign", "named"), STEPLESS)
def test_stepless_loop_table(forwards: int, backwards: int, foreign: int, named: bool) -> None:
    from torchmedic.rules.live.optim import not_updating

    s = signals(monitor__unstepped_forwards=forwards, grad__backwards=backwards, monitor__foreign_steps=foreign)
    finding = not_updating(s, RULES)
    assert (finding is not None) is named
    if finding is not None:
        assert ("holds none of this model's parameters" in finding.summary) is bool(foreign)


ZEROED_OUTPUTS = [  # (the module that returned the output, named?, the mechanism the summary names)
    ("ReLU", True, "the ReLU that produces the model's output"),
    ("", True, "an op after the last layer"),  # F.relu in forward: not seen, so not named as a ReLU
    (None, True, "an op after the last layer"),  # not measured yet
    ("Softmax", False, ""),  # probabilities that underflow to exactly 0 are no ReLU
    ("Linear", False, ""),
]


@pytest.mark.parametrize(("final", "named", "mechanism"), ZEROED_OUTPUTS)
def test_zeroed_logits_name_only_the_layer_seen(final: str | None, named: bool, mechanism: str) -> None:
    from torchmedic.rules.live.arch import output_activation

    seen = {} if final is None else {"output__final_module": final}
    s = signals(output__min=0.0, output__max=3.0, output__zero_fraction=0.6, target__kind="index", output__units=10,
                output__row_sum_dev=4.0, **seen)  # fmt: skip
    finding = output_activation(s, RULES)
    assert (finding is not None) is named
    if finding is not None:
        assert mechanism in finding.summary


def test_lr_too_low_needs_a_trend_and_a_flat_loss() -> None:
    from torchmedic.rules.live.lr import too_low

    base = dict(update__ratio_median__recent=1e-7, grad__norm=1.0, grad__norm__first=1.0, loss__first=2.3)
    assert too_low(signals(**base, monitor__sampled_steps=8, loss__recent=2.29), RULES) is not None
    assert too_low(signals(**base, monitor__sampled_steps=1, loss__recent=2.29), RULES) is None  # one sample
    assert too_low(signals(**base, monitor__sampled_steps=8, loss__recent=1.0), RULES) is None  # it learns
