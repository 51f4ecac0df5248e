"""MedicCallback in a real Lightning Trainer on CPU: it names a collapsing schedule, stays silent on a healthy
run, stops the trainer on request and leaves no hook behind."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")
from torchmedic.integrations.lightning import MedicCallback  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def quiet_and_one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    level = logging.getLogger("lightning.pytorch").level
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    yield
    logging.getLogger("lightning.pytorch").setLevel(level)
    torch.set_num_threads(threads)


class Classifier(pl.LightningModule):
    def __init__(self, collapse: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4))
        self.collapse = collapse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        if not self.collapse:
            return optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)  # meant per epoch
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def data(shuffle: bool = True) -> DataLoader:
    torch.manual_seed(0)
    x = torch.randn(512, 20)
    y = (x[:, :3].sum(1) > 0).long() + 2 * (x[:, 3] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=shuffle)


def fit(module: pl.LightningModule, callback: MedicCallback, steps: int = 80) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=2,
    )  # validation every epoch of 16 batches
    trainer.fit(module, data(), data(shuffle=False))
    return trainer


def hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules()) + sum(
        len(p._backward_hooks or {}) for p in module.parameters()
    )


def test_collapsing_schedule_is_named(tmp_path: Any) -> None:
    module = Classifier(collapse=True)
    callback = MedicCallback(every=5, log_dir=tmp_path)
    trainer = fit(module, callback)
    assert [f.cause for f in callback.findings] == ["lr.schedule_collapse"]
    step = callback.findings[0].step
    assert step is not None and step <= 40  # 0.5 ** 10 < 1e-3: the LR collapses by step 11
    assert trainer.global_step == 80
    assert callback.signals.get("loss") is not None and callback.signals.get("target.kind") == "index"
    assert callback.signals.get("grad.norm") > 0  # read in on_before_optimizer_step, after backward
    assert hooks(module) == 0 and not trainer.optimizers[0]._optimizer_step_post_hooks
    assert (tmp_path / "torchmedic-events.jsonl").exists()


def test_healthy_run_has_no_findings() -> None:
    module = Classifier(collapse=False)
    callback = MedicCallback(every=5)
    fit(module, callback)
    assert callback.findings == []
    assert callback.signals.get("monitor.sampled_steps") >= 15
    assert hooks(module) == 0


def test_stop_on_stops_the_trainer() -> None:
    callback = MedicCallback(every=5, stop_on="lr.schedule_collapse")
    trainer = fit(Classifier(collapse=True), callback, steps=400)
    assert trainer.global_step < 100
