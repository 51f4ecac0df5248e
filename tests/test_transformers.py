"""MedicCallback in a real Hugging Face Trainer on CPU, with a tiny model built here (no download): it names a
softmax head fed to cross-entropy, stays silent on a healthy run and under gradient accumulation, stops the
trainer on request, and changes nothing in training and leaves no hook behind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: E402

from torchmedic.integrations.transformers import MedicCallback  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_and_one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    level = logging.getLogger("transformers").level
    logging.getLogger("transformers").setLevel(logging.ERROR)
    yield
    logging.getLogger("transformers").setLevel(level)
    torch.set_num_threads(threads)


class Digits(Dataset):
    """scikit-learn's 8x8 digits, standardized per pixel, as the dicts a Trainer's collator stacks."""

    def __init__(self) -> None:
        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32)
        self.x = (x - x.mean(0)) / (x.std(0) + 1e-6)  # (1797, 64)
        self.y = torch.tensor(digits.target)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.x[i], "labels": self.y[i]}


class Classifier(nn.Module):
    """A Hugging Face style model: it computes its loss when given labels and returns a `ModelOutput`."""

    def __init__(self, softmax: bool = False, fail_at: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))
        self.softmax = softmax  # the bug: probabilities fed to cross-entropy, which applies log-softmax again
        self.fail_at = fail_at
        self.forwards = 0

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        self.forwards += 1
        if self.forwards == self.fail_at:
            raise RuntimeError("out of memory (simulated)")
        logits = self.net(pixel_values)
        if self.softmax:
            logits = logits.softmax(dim=-1)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def trainer_for(
    model: nn.Module, tmp_path: Path, callback: MedicCallback | None, steps: int = 40, **args: Any
) -> transformers.Trainer:
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        report_to=[],
        use_cpu=True,
        max_steps=steps,
        per_device_train_batch_size=args.pop("batch_size", 32),
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
        **args,
    )
    callbacks = [] if callback is None else [callback]
    return transformers.Trainer(model=model, args=arguments, train_dataset=Digits(), callbacks=callbacks)


def train(model: nn.Module, tmp_path: Path, callback: MedicCallback | None, **args: Any) -> transformers.Trainer:
    trainer = trainer_for(model, tmp_path, callback, **args)
    trainer.train()
    return trainer


def hooks(model: nn.Module, trainer: transformers.Trainer) -> int:
    optimizer = trainer.optimizer.optimizer  # the torch optimizer inside accelerate's AcceleratedOptimizer
    on_model = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) + sum(
        len(p._backward_hooks or {}) for p in model.parameters()
    )
    return on_model + len(optimizer._optimizer_step_pre_hooks) + len(optimizer._optimizer_step_post_hooks)


def test_softmax_head_is_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Classifier(softmax=True)
    callback = MedicCallback(every=5, log_dir=tmp_path)
    trainer = train(model, tmp_path, callback)
    assert [f.cause for f in callback.findings] == ["loss.double_softmax"]
    step = callback.findings[0].step
    assert step is not None and step <= 5  # the first sampled steps confirm it
    assert trainer.state.global_step == callback.step == 40
    # the loss and labels are the forward's own (read by the forward hook), so they match cross-entropy on the
    # probabilities taken as logits: an averaged logged loss could not
    loss = callback.signals.get("loss")
    assert loss == pytest.approx(callback.signals.get("loss.ce_on_outputs"), rel=1e-4)
    assert callback.signals.get("target.kind") == "index"
    assert callback.signals.get("grad.norm") > 0  # read in the torch optimizer's pre-step hook, after backward
    assert hooks(model, trainer) == 0
    assert (tmp_path / "torchmedic-events.jsonl").exists()


def test_healthy_run_has_no_findings(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Classifier()
    callback = MedicCallback(every=5)
    trainer = train(model, tmp_path, callback, steps=60)
    assert callback.findings == []
    assert callback.signals.get("monitor.sampled_steps") >= 12
    assert trainer.state.global_step == callback.step == 60
    assert hooks(model, trainer) == 0


def test_stop_on_stops_the_trainer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    callback = MedicCallback(every=5, stop_on="loss.double_softmax")
    trainer = train(Classifier(softmax=True), tmp_path, callback, steps=400)
    assert [f.cause for f in callback.findings] == ["loss.double_softmax"]
    assert trainer.state.global_step < 20


def test_long_gradient_accumulation_is_not_a_loop_that_never_steps(tmp_path: Path) -> None:
    torch.manual_seed(0)
    callback = MedicCallback(every=5)
    trainer = train(Classifier(), tmp_path, callback, steps=2, batch_size=4, gradient_accumulation_steps=100)
    assert trainer.state.global_step == callback.step == 2  # one session step per optimizer step, not per batch
    assert callback.findings == []  # 100 forwards per step: optim.not_updating would fire past 80
    assert callback.signals.get("grad.norm") > 0


def test_training_is_unchanged_by_the_callback(tmp_path: Path) -> None:
    results = []
    for callback in (None, MedicCallback(every=1)):  # every step sampled: every probe runs every step
        torch.manual_seed(0)
        model = Classifier()
        trainer = train(model, tmp_path, callback, steps=12)
        assert hooks(model, trainer) == 0
        results.append((model.state_dict(), trainer.optimizer.state_dict()["state"], torch.get_rng_state()))
    (plain_weights, plain_state, plain_rng), (weights, state, rng) = results
    assert plain_weights.keys() == weights.keys()
    assert all(torch.equal(plain_weights[k], weights[k]) for k in weights)
    assert all(torch.equal(plain_state[i][k], state[i][k]) for i in state for k in state[i])
    assert torch.equal(plain_rng, rng)


def test_close_detaches_after_train_raises(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Classifier(fail_at=7)
    callback = MedicCallback(every=1)
    trainer = trainer_for(model, tmp_path, callback)
    with pytest.raises(RuntimeError, match="simulated"):
        trainer.train()
    assert hooks(model, trainer) > 0  # the Trainer has no event for a train() that raises
    callback.close()
    assert hooks(model, trainer) == 0
    assert callback.step == 6
