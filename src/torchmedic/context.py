"""What every probe of one diagnose() call shares: the copies, the batches read once, the task, the clock."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from torchmedic import progress
from torchmedic import signal_names as N
from torchmedic.batch import Batch, BatchKeys, concat, consumed_output, iterate, prediction_at, primary_output
from torchmedic.clone import OptimizerSpec, clone_model
from torchmedic.config import DiagnoseConfig
from torchmedic.errors import InputError, LossError
from torchmedic.model_errors import check_backward, explain
from torchmedic.remedies.lr_finder import LRFinderResult, range_test
from torchmedic.samples import from_dataset, without_held_out
from torchmedic.setup import Setup
from torchmedic.signals import Signals
from torchmedic.task import Task, infer_task, loss_kind_by_name
from torchmedic.trial import TrialResult, run_trial
from torchmedic.wrappers import innermost_loss

if TYPE_CHECKING:
    from torchmedic.fixes.registry import Applied


@dataclass
class Context:
    """Shared state of one diagnosis. `base` is an untouched copy of the user's model: experiments copy it again."""

    model: nn.Module
    base: nn.Module
    spec: OptimizerSpec
    loss_fn: Callable[..., Any]
    loader: Iterable[Any]
    device: torch.device
    config: DiagnoseConfig
    deadline: float
    started: float
    audit: list[Batch]  # every batch the data audit read, on the CPU, in loader order
    train: tuple[Batch, ...]  # the trial's training batches (loader order), on the device
    held_out: Batch  # samples from later batches, on the device
    outputs: Any  # the base model's output on train[0] (train mode, no grad)
    output: torch.Tensor  # its primary tensor
    task: Task
    keys: BatchKeys = field(default_factory=BatchKeys)
    signals: Signals = field(default_factory=Signals)
    trials: dict[str, TrialResult] = field(default_factory=dict)
    range_tests: dict[tuple[str, ...], LRFinderResult] = field(default_factory=dict)  # by Setup.history
    applied: dict[str, Applied] = field(default_factory=dict)  # each cause's fix as applied to the setup as given
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    untrainable: str | None = None  # why training experiments would tell nothing (the loss raises, NaN data)
    trial_steps: int = 0  # the length of every trial: the baseline's, once it has run
    train_batches: int = 0  # how many batches a setup trains on: len(train) for diagnose, a pilot's for repair
    forward_s: float = 0.0  # the first forward of the model on one training batch, timed: a unit of its cost
    copy_s: float = 0.0  # one copy of the model, timed: the other unit (snapshots, optimizer state)
    prediction_key: Any = None  # the element of a tuple or dict output the loss reads (see batch.prediction_at)

    def __post_init__(self) -> None:
        self.train_batches = self.train_batches or len(self.train)

    @property
    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def copy(self) -> nn.Module:
        """A fresh copy of the untouched model, for one experiment."""
        return clone_model(self.base)

    def setup(self) -> Setup:
        """The user's setup as given, over a fresh copy of the model."""
        return Setup(self.copy(), self.spec, self.loss_fn, self.loader, self.train, self.held_out)

    def generator(self) -> torch.Generator:
        """A generator seeded the same way for every experiment, so experiments differ only in what they change."""
        return torch.Generator().manual_seed(self.config.seed)

    def batches_from(self, loader: Iterable[Any]) -> tuple[Batch, ...]:
        """Training batches read from a loader a fix built, as many as a setup trains on, without the held-out
        samples, within the audit's share of what is left of the budget."""
        until = time.perf_counter() + self.config.audit_share * max(self.remaining, 1.0)
        read = read_batches(loader, self.keys, self.config, until, self.train_batches)
        kept = without_held_out(read, self.held_out, self.config.max_trial_batch, self.train_batches, self.device)
        if kept or not read:
            return kept
        # tiny batches drawn with replacement can all hold a held-out sample: train on them rather than on nothing
        limit = self.config.max_trial_batch
        return tuple((b if b.size <= limit else b.select(slice(0, limit))).to(self.device)
                     for b in read[: self.train_batches or None])  # fmt: skip

    def seconds_for(self, steps: int) -> float:
        """What `steps` optimizer steps cost at the baseline trial's pace (0 before it has run)."""
        baseline = self.trials.get("baseline")
        return baseline.seconds * steps / max(1, baseline.steps) if baseline is not None else 0.0

    def range_test(self, setup: Setup) -> LRFinderResult | None:
        """The LR range test of this setup, run once per distinct setup (setups that differ only in LR share it),
        on as many batches as the trials cycle: more distinct batches make the curve too noisy to read. None when
        it has not run and what is left of the budget cannot pay for it."""
        key = setup.history
        if key not in self.range_tests:
            if self.remaining < self.seconds_for(self.config.lr_range_steps):
                self.skipped.append(f"LR range test of {setup.label}: out of budget")
                return None
            batches = list(setup.train[: self.config.range_batches])
            self.range_tests[key] = range_test(
                setup.model(fresh=True), batches, setup.loss_fn, setup.spec, num_iter=self.config.lr_range_steps
            )
        return self.range_tests[key]

    def trial(
        self,
        setup: Setup,
        key: str | None = None,
        *,
        steps: int | None = None,
        deadline: float | None = None,
        **extend: Any,
    ) -> TrialResult:
        """Run the trial once and keep it under `key` (default: its label). It lasts as long as the baseline did,
        so that trials compare; `extend` is passed to run_trial (the baseline's extension when it is slow)."""
        key = key or setup.label
        if key not in self.trials:
            progress.step(f"trial: {key}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the user's warnings were seen once by the probes; not per step
                self.trials[key] = run_trial(
                    setup,
                    steps or self.trial_steps or self.config.trial_steps,
                    self.task.read_by(loss_kind_by_name(innermost_loss(setup.loss_fn))),
                    seed=self.config.seed,
                    deadline=min(self.deadline, deadline or self.deadline),
                    **extend,
                )
        return self.trials[key]


def model_device(model: nn.Module) -> torch.device:
    tensors = [*model.parameters(), *model.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def read_batches(
    loader: Iterable[Any], keys: BatchKeys, config: DiagnoseConfig, until: float, count: int = 0
) -> list[Batch]:
    """Read batches for the audit, bounded by count, samples and time; at least one, and with tiny batches enough
    of them for the trials' pool and the held-out samples both (or `count`, when the loader has them)."""
    batches: list[Batch] = []
    samples = 0
    limit = max(config.audit_batches, count)
    for batch in iterate(loader, keys):
        if not batches:
            held_out = math.ceil(config.held_out_samples / max(1, batch.size))
            limit = max(limit, config.pool_batches + held_out)
        batches.append(batch)
        samples += batch.size
        if len(batches) >= limit or samples >= config.audit_samples or time.perf_counter() > until:
            break
    return batches


def _subsample(batch: Batch, limit: int) -> Batch:
    return batch if batch.size <= limit else batch.select(slice(0, limit))


def split_pool(audit: list[Batch], config: DiagnoseConfig) -> tuple[list[Batch], Batch]:
    """The first batches, in loader order, to train on; a random sample of later samples to evaluate on."""
    per_batch = max(1, audit[0].size)
    count = max(config.pool_batches, math.ceil(config.min_pool_samples / per_batch))
    keep = len(audit) - math.ceil(config.held_out_samples / per_batch)  # later batches left for the held-out sample
    count = min(count, max(keep, config.range_batches), max(1, len(audit) - 1), 32)
    pool = [_subsample(b, config.max_trial_batch) for b in audit[:count]]
    rest = audit[count:] or audit[:count]
    try:
        joined = concat(rest)
    except (RuntimeError, TypeError):
        joined = rest[0]
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(joined.size, generator=generator)[: config.held_out_samples]
    return pool, joined.select(order)


BATCHNORM_SINGLE = "Expected more than 1 value per channel when training"


def first_forward(model: nn.Module, batch: Batch) -> tuple[Any, str | None]:
    """The model's output on one batch in train mode, or a ModelError naming the layer that raised.

    BatchNorm refusing a batch of one sample in train mode is a diagnosis, not an input error: then the output
    comes from eval mode and the refusal is returned with it."""
    try:
        with torch.no_grad():
            return batch.run(model), None
    except Exception as exc:
        if BATCHNORM_SINGLE not in str(exc):
            raise explain(model, batch, exc) from exc
        refusal = f"{type(exc).__name__}: {str(exc).strip()}"
    model.eval()
    try:
        with torch.no_grad():
            return batch.run(model), refusal
    except Exception as exc:
        raise explain(model, batch, exc) from exc
    finally:
        model.train()


def check_scalar_loss(loss_fn: Callable[..., Any], outputs: Any, targets: Any) -> None:
    """A loss that returns one value per sample (reduction='none') cannot drive `loss.backward()`: say so before
    any experiment reduces it silently. A loss that raises is left to the experiments, which report it."""
    try:
        with torch.no_grad():
            loss = loss_fn(outputs, targets)
    except Exception:
        return
    if isinstance(loss, torch.Tensor) and loss.numel() != 1:
        raise LossError(
            f"loss_fn returned a tensor of shape {tuple(loss.shape)}, not one number: loss.backward() in a training "
            "loop needs a scalar. Build the loss with reduction='mean' (the default), or pass a loss_fn that "
            "reduces it the way your loop does, e.g. lambda out, y: loss_fn(out, y).mean()."
        )


def build(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[..., Any],
    optimizer: Any,
    device: torch.device | str | None,
    budget_s: float,
    keys: BatchKeys,
    config: DiagnoseConfig,
) -> Context:
    """Copy the model, read the data once, run it through the model and decide the task."""
    started = time.perf_counter()
    spec = OptimizerSpec.of(optimizer, model)
    target_device = torch.device(device) if device is not None else model_device(model)
    base = clone_model(model).to(target_device)
    base.train()
    audit = read_batches(loader, keys, config, started + config.audit_share * budget_s)
    if sum(b.size for b in audit) < 2:
        raise InputError(
            "the loader holds one sample: a constant output fits a single sample exactly, so no trial can tell "
            "learning from a constant. Pass a loader over at least a few samples (a few batches' worth is best)."
        )
    pool, held_out = split_pool(audit, config)
    drawn = from_dataset(loader, keys, config.held_out_samples, pool, config.seed)
    held_out = drawn if drawn is not None else held_out
    train = tuple(b.to(target_device) for b in pool)
    held_out = held_out.to(target_device)
    spec.build(clone_model(base))  # a process's first optimizer imports torch._dynamo (~1 s): paid here, not in a trial
    copy_started = time.perf_counter()
    copied = clone_model(base)
    forward_started = time.perf_counter()
    outputs, train_refusal = first_forward(copied, train[0])
    copy_s, forward_s = forward_started - copy_started, time.perf_counter() - forward_started
    key = consumed_output(loss_fn, outputs, train[0].loss_targets)
    with prediction_at(key):
        output = primary_output(outputs)
        if output is None:
            raise InputError(
                f"the model returned a {type(outputs).__name__} with no tensor in it: torchmedic needs "
                "the prediction as a tensor (or a tuple/dict holding one)."
            )
        task = infer_task(loss_fn, outputs, train[0].targets)
        check_scalar_loss(loss_fn, outputs, train[0].loss_targets)
        if not train_refusal:
            check_backward(copied, train[0], loss_fn)
    context = Context(
        model,
        base,
        spec,
        loss_fn,
        loader,
        target_device,
        config,
        started + budget_s,
        started,
        audit,
        train,
        held_out,
        outputs,
        output,
        task,
        keys,
    )
    context.forward_s, context.copy_s, context.prediction_key = forward_s, copy_s, key
    if train_refusal:
        context.signals.emit(N.BN_ERROR, train_refusal)
        context.untrainable = "BatchNorm cannot train on these batches"
    return context
