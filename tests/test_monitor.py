"""The monitor's lifecycle: what it attaches it detaches (also on errors), it never keeps the model alive, never
changes training, never raises into the loop, syncs once per sampled step and keeps bounded memory."""

from __future__ import annotations

import gc
import json
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.modules import module as module_globals
from torch.optim import optimizer as optimizer_globals

from torchmedic import TorchMedicWarning
from torchmedic.finding import Finding
from torchmedic.monitor import Monitor, MonitorConfig, StopTraining
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import StepRecord
from torchmedic.rules.registry import Rule


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6), torch.tensor(data.target)


X, Y = digits()


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))


def loop(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    monitor: Monitor | None = None,
    *,
    zero_grad: bool = True,
    log_first: bool = False,
    seed: int = 0,
) -> list[float]:
    """A plain training loop; returns the losses (as Python floats, read after the run)."""
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(X), (32,), generator=gen)
        if zero_grad:
            optimizer.zero_grad()
        out = model(X[idx])
        loss = F.cross_entropy(out, Y[idx])
        if monitor is not None and log_first:
            monitor.log(loss=loss, outputs=out, targets=Y[idx])
        loss.backward()
        optimizer.step()
        if monitor is not None and not log_first:
            monitor.log(loss=loss, outputs=out, targets=Y[idx])
        losses.append(loss.detach())
    return [float(v) for v in losses]


def setup(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = net()
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def hooks_of(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Every hook torch could be holding for the monitor, counted."""
    counts = {
        "forward": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
        "load": sum(len(m._load_state_dict_post_hooks) for m in model.modules()),
        "tensor": sum(len(p._backward_hooks or {}) for p in model.parameters()),
        "optimizer": len(optimizer._optimizer_step_pre_hooks) + len(optimizer._optimizer_step_post_hooks),
        "global optimizer": len(optimizer_globals._global_optimizer_pre_hooks)
        + len(optimizer_globals._global_optimizer_post_hooks),
        "global module": len(module_globals._global_forward_hooks) + len(module_globals._global_forward_pre_hooks),
    }
    return counts


# ---- training is unchanged ------------------------------------------------------------------------------------------
def test_same_losses_and_weights_with_and_without_the_monitor() -> None:
    model, opt = setup()
    plain = loop(model, opt, 40)
    watched_model, watched_opt = setup()
    with Monitor(watched_model, watched_opt, every=1) as monitor:
        watched = loop(watched_model, watched_opt, 40, monitor)
    assert watched == plain  # bit for bit: dropout RNG, BatchNorm statistics and updates untouched
    for a, b in zip(model.state_dict().values(), watched_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert monitor.step == 40 and monitor.signals.get("monitor.sampled_steps") == 40


# ---- hooks ---------------------------------------------------------------------------------------------------------
def test_every_probe_measures() -> None:
    model, opt = setup()
    before = hooks_of(model, opt)
    with Monitor(model, opt, every=1) as monitor:
        loop(model, opt, 3, monitor)
        during = hooks_of(model, opt)
        model.eval()
        with torch.no_grad():
            model(X[:64])  # an evaluation batch
        model.train()
        model.load_state_dict(model.state_dict())
        loop(model, opt, 3, monitor)
    s = monitor.signals
    for name in (
        "grad.norm",
        "grad.output_norm",
        "grad.carried_over",
        "update.ratio_max",
        "weight.norm",
        "loss",
        "input.mean",
        "input.channel_std",
        "output.between_std",
        "pred.hist",
        "target.hist",
        "mode.training",
        "optim.foreign",
        "bn.batch_size",
        "eval_input.mean.recent",
        "load.missing_fraction",
    ):
        assert s.has(name), name
    assert s.scoped("act.std").keys() >= {"0", "1", "2", "4"}  # Linear, BatchNorm, ReLU, Linear
    assert s.scoped("grad.dead_fraction").keys() == {"0.weight"}  # the hidden Linear; the output layer is not a unit
    assert s.scoped("weight.row_spread").keys() == {"0.weight"}
    assert s.scoped("update.ratio").keys() == {n for n, _ in model.named_parameters()}
    assert s.get("eval.forwards") == 1 and s.get("eval.train_mode_forwards") == 0
    assert during["optimizer"] == 2 and during["forward"] > 0 and during["tensor"] > 0
    assert hooks_of(model, opt) == before


@pytest.mark.parametrize("where", ["forward", "backward", "step", "log"])
def test_no_hook_left_after_an_exception(where: str) -> None:
    model, opt = setup()
    before = hooks_of(model, opt)

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom), Monitor(model, opt, every=1) as monitor:
        loop(model, opt, 2, monitor)
        opt.zero_grad()
        out = model(X[:32])
        if where == "forward":
            raise Boom
        F.cross_entropy(out, Y[:32]).backward()
        if where == "backward":
            raise Boom
        opt.step()
        if where == "step":
            raise Boom
        monitor.log(outputs=out, targets=Y[:32])
        raise Boom
    assert hooks_of(model, opt) == before


def test_global_hooks_removed_when_no_optimizer_is_given() -> None:
    model, opt = setup()
    before = hooks_of(model, opt)
    other = nn.Linear(3, 1)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with Monitor(model) as monitor:
        other(torch.randn(4, 3)).sum().backward()
        other_opt.step()  # not the model's: ignored
        loop(model, opt, 12, monitor, zero_grad=False)
    assert monitor.step == 12
    assert [f.cause for f in monitor.findings] == ["optim.missing_zero_grad"]
    assert hooks_of(model, opt) == before


def stepless_loop(model: nn.Module, steps: int, *, backward: bool = True, step_every: int = 0,
                  optimizer: torch.optim.Optimizer | None = None) -> list[int]:  # fmt: skip
    """Training forwards (and backward) on digits; `optimizer.step()` every `step_every` of them (0: never).
    Returns the forward count at which each finding was reported."""
    reported: list[int] = []
    forwards = 0
    with Monitor(model, optimizer, on_finding=lambda f: reported.append(forwards)):
        gen = torch.Generator().manual_seed(0)
        for i in range(steps):
            idx = torch.randint(0, len(X), (32,), generator=gen)
            forwards += 1
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            if backward:
                loss.backward()
            if optimizer is not None and step_every and (i + 1) % step_every == 0:
                optimizer.step()
                optimizer.zero_grad()
    return reported


@pytest.mark.parametrize("foreign", [False, True])
def test_a_loop_that_never_steps_is_named_within_100_forwards(foreign: bool) -> None:
    model, opt = setup()
    other = nn.Linear(64, 10)
    reported = stepless_loop(model, 120, optimizer=torch.optim.SGD(other.parameters(), lr=0.1) if foreign else opt)
    assert len(reported) == 1 and reported[0] <= 100


def test_a_loop_whose_optimizer_holds_other_parameters_names_them() -> None:
    model, _ = setup()
    other = nn.Linear(64, 10)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with Monitor(model) as monitor:
        for _ in range(100):
            F.cross_entropy(model(X[:32]), Y[:32]).backward()
            other(X[:32]).sum().backward()
            other_opt.step()
    assert [f.cause for f in monitor.findings] == ["optim.not_updating"]
    assert "holds none of this model's parameters" in monitor.findings[0].summary


def test_a_second_optimizer_of_the_same_model_counts_as_stepping() -> None:
    model, first = setup()
    second = torch.optim.SGD(model.parameters(), lr=0.01)  # a fine-tuning phase with its own optimizer
    with Monitor(model) as monitor:
        loop(model, first, 10, monitor)
        loop(model, second, 100, monitor)
    assert monitor.findings == []


@pytest.mark.parametrize(("backward", "step_every"), [(True, 16), (False, 0)])
def test_accumulation_and_forwards_without_backward_are_not_a_stepless_loop(backward: bool, step_every: int) -> None:
    model, opt = setup()
    assert stepless_loop(model, 120, backward=backward, step_every=step_every, optimizer=opt) == []


# ---- the user's objects are not kept alive -------------------------------------------------------------------------
@pytest.mark.parametrize("fail", [False, True])
def test_model_is_collected_after_exit(fail: bool) -> None:
    model, opt = setup()
    ref = weakref.ref(model)
    try:
        with Monitor(model, opt, every=1) as monitor:
            loop(model, opt, 5, monitor)
            if fail:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    del model, opt
    gc.collect()
    assert ref() is None
    assert monitor.step == 5  # the monitor object itself stays usable


def test_monitor_does_not_keep_model_alive_while_open() -> None:
    model, opt = setup()
    ref = weakref.ref(model)
    monitor = Monitor(model, opt)
    monitor.start()
    loop(model, opt, 3, monitor)
    del model, opt
    gc.collect()
    assert ref() is None
    monitor.close()  # closing after the model is gone is fine


# ---- never raises into the loop ------------------------------------------------------------------------------------
class Failing(Probe):
    """A probe that breaks inside the user's forward pass."""

    name = "failing"

    def arm(self, record: StepRecord) -> None:
        model = self.ctx.model
        assert model is not None
        self.temporary.add(model.register_forward_hook(self.guarded(self._hook)))

    def _hook(self, module: nn.Module, args: Any, out: Any) -> None:
        raise ValueError("probe bug")


def test_failing_probe_disables_itself_with_a_warning() -> None:
    plain = loop(*setup(), 30, zero_grad=False)
    model, opt = setup()
    before = hooks_of(model, opt)
    with Monitor(model, opt, every=1) as monitor:
        session = monitor._session
        session.probes.append(Failing(session.ctx))
        with pytest.warns(TorchMedicWarning, match="'failing' failed and is disabled: ValueError: probe bug"):
            losses = loop(model, opt, 30, monitor, zero_grad=False)
    assert losses == plain
    assert not any(isinstance(p, Failing) for p in session.probes)
    assert "optim.missing_zero_grad" in [f.cause for f in monitor.findings]  # the other probes go on
    assert hooks_of(model, opt) == before


def test_failing_rule_and_callback_only_warn() -> None:
    model, opt = setup()

    def broken(s: Any, c: Any) -> Finding | None:
        raise KeyError("rule bug")

    def callback(finding: Finding) -> None:
        raise RuntimeError("user callback bug")

    with Monitor(model, opt, every=1, on_finding=callback) as monitor:
        monitor._session.rules.append(Rule("data.unshuffled", "live", broken))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop(model, opt, 12, monitor, zero_grad=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, TorchMedicWarning)]
    assert any("data.unshuffled failed" in m and "KeyError" in m for m in messages)
    assert any("on_finding raised RuntimeError" in m for m in messages)
    assert monitor.findings  # the callback failing does not lose the finding


# ---- findings, stopping, logging -----------------------------------------------------------------------------------
def test_on_finding_once_per_cause_and_stop_on() -> None:
    model, opt = setup()
    seen: list[Finding] = []
    with Monitor(model, opt, every=2, on_finding=seen.append, stop_on="optim.missing_zero_grad") as monitor:
        loop(model, opt, 200, monitor, zero_grad=False)
    assert [f.cause for f in seen] == ["optim.missing_zero_grad"]
    caught = seen[0].step
    assert caught is not None and caught <= 10
    assert monitor.step == caught  # the step after the confirmation was never taken


def test_stop_training_propagates_without_a_with_block() -> None:
    model, opt = setup()
    monitor = Monitor(model, opt, every=2, stop_on=True)
    monitor.start()
    with pytest.raises(StopTraining, match=r"optim\.missing_zero_grad"):
        loop(model, opt, 100, monitor, zero_grad=False)
    monitor.close()


@pytest.mark.parametrize("log_first", [False, True])
def test_log_before_or_after_the_step(log_first: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(dim=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Monitor(model, opt, every=2) as monitor:
        loop(model, opt, 12, monitor, log_first=log_first)
    assert [f.cause for f in monitor.findings] == ["loss.double_softmax"]


def test_unknown_stop_on_cause_is_an_input_error() -> None:
    from torchmedic import InputError

    model, opt = setup()
    with pytest.raises(InputError, match="unknown cause codes"):
        Monitor(model, opt, stop_on=["optim.missing_zerograd"])
    with pytest.raises(InputError, match=r"not a torch\.nn\.Module"):
        Monitor(opt, opt)  # type: ignore[arg-type]


def test_event_log_is_flushed_line_by_line(tmp_path: Any) -> None:
    model, opt = setup()
    path = tmp_path / "torchmedic-events.jsonl"
    with Monitor(model, opt, log_dir=tmp_path, every=2) as monitor:
        loop(model, opt, 10, monitor, zero_grad=False)
        lines = [json.loads(line) for line in path.read_text().splitlines()]  # read while training runs
        assert lines[0]["type"] == "start" and any(e["type"] == "step" for e in lines)
        loop(model, opt, 10, monitor, zero_grad=False)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    finding = next(e for e in events if e["type"] == "finding")
    assert finding["cause"] == "optim.missing_zero_grad" and finding["step"] == monitor.findings[0].step
    step = next(e for e in events if e["type"] == "step" and e["step"] == 4)
    assert step["signals"]["grad.norm/"]["0.weight"] > 0 and "loss" in step["signals"]


def test_tensorboard_scalars_and_histograms(tmp_path: Any) -> None:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    model, opt = setup()
    with Monitor(model, opt, log_dir=tmp_path, every=2) as monitor:
        loop(model, opt, 8, monitor)
    events = event_accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "loss",
        "lr/group0",
        "grad_norm/0.weight",
        "act/0/std",
        "update_ratio/4.weight",
        "pred/entropy",
        "output/between_std",
    } <= scalars
    assert {"pred/classes", "target/classes"} <= set(events.Tags()["histograms"])
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4, 6, 8]


# ---- cost ------------------------------------------------------------------------------------------------------------
def test_one_device_sync_per_sampled_step(monkeypatch: pytest.MonkeyPatch) -> None:
    model, opt = setup()
    counts = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *a: Any, _original: Any = original, **k: Any) -> Any:
            counts["n"] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def syncs(monitor: Monitor | None) -> int:
        counts["n"] = 0
        gen = torch.Generator().manual_seed(0)
        for _ in range(30):
            idx = torch.randint(0, len(X), (32,), generator=gen)
            opt.zero_grad()
            out = model(X[idx])
            loss = F.cross_entropy(out, Y[idx])
            loss.backward()
            opt.step()
            if monitor is not None:
                monitor.log(loss=loss, outputs=out, targets=Y[idx])
        return counts["n"]

    plain = syncs(None)
    with Monitor(model, opt, every=5) as monitor:
        syncs(monitor)
    watched = counts["n"]  # including the last sampled step, read when the monitor closes
    sampled = monitor.signals.get("monitor.sampled_steps")
    assert sampled == 9  # steps 1, 2, 3, 5, 10, 15, 20, 25, and 30 (read at close)
    assert watched - plain == sampled  # one .tolist() per sampled step, none per layer


def test_memory_does_not_grow_with_steps() -> None:
    model, opt = setup()
    with Monitor(model, opt, every=1) as monitor:
        session = monitor._session

        def sizes() -> list[int]:
            h = session.history
            return [len(w) for w in h.windows.values()] + [
                len(h.hists),
                len(h.batch_entropy),
                len(h.baseline),
                len(session.records),
                len(h.first),
                len(h.lr_decades),
            ]

        loop(model, opt, 50, monitor)
        early = sizes()
        loop(model, opt, 150, monitor)
        assert sizes() == early
        assert max(early) <= MonitorConfig().window + 10


def test_failing_sink_is_dropped_with_a_warning(tmp_path: Any) -> None:
    class Full:
        def step(self, step: int, signals: Any) -> None:
            raise OSError("No space left on device")

        def finding(self, finding: Finding) -> None: ...

        def close(self, findings: list[Finding]) -> None: ...

    model, opt = setup()
    with Monitor(model, opt, every=2, log_dir=tmp_path) as monitor:
        monitor._session.sinks.append(Full())
        with pytest.warns(TorchMedicWarning, match="Full failed and is dropped: OSError"):
            loop(model, opt, 10, monitor, zero_grad=False)
    assert [f.cause for f in monitor.findings] == ["optim.missing_zero_grad"]
    assert '"type": "finding"' in (tmp_path / "torchmedic-events.jsonl").read_text()  # the other sink goes on


def test_monitor_names_a_grad_scaler_that_never_steps() -> None:
    """Raw inputs of ~3000 overflow float16 in forward: every GradScaler step is skipped, at any loss scale."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu")
    x, y = torch.randn(64, 20) * 3000, torch.randint(0, 3, (64,))
    original = torch.amp.GradScaler.step
    with Monitor(model, opt) as monitor:
        for _ in range(100):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    assert torch.amp.GradScaler.step is original
    assert [f.cause for f in monitor.findings] == ["optim.not_updating"]
    assert "GradScaler skipped" in monitor.findings[0].summary
    assert monitor.step <= 1  # at most the first step, before the weights turned non-finite


def test_monitor_sees_through_torch_compile() -> None:
    """A compiled model still runs the hooks the probes use: the activations and the doubled softmax are seen."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3), nn.Softmax(dim=1))
    compiled = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(64, 20), torch.randint(0, 3, (64,))
    with Monitor(compiled, opt, config=MonitorConfig(every=1)) as monitor:
        for _ in range(12):
            opt.zero_grad()
            out = compiled(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            monitor.log(loss=loss, outputs=out, targets=y)
    assert [f.cause for f in monitor.findings] == ["loss.double_softmax"]
    assert monitor.signals.has("act.std", scope="1") and monitor.signals.get("output.final_module") == "Softmax"
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
