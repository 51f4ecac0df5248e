"""Statistics of the model's output, the targets and the loss of a sampled step: diversity, range, class
histograms, and how the loss relates to the outputs."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from torchmedic import signal_names as N
from torchmedic import stats
from torchmedic.batch import output_elements, pick, read_by
from torchmedic.errors import TorchMedicWarning
from torchmedic.monitor.context import Context
from torchmedic.monitor.probes.base import Probe
from torchmedic.monitor.record import SUM, StepRecord

MAX_HISTOGRAM_CLASSES = 100_000  # class histograms beyond this many classes cost more than they tell
IGNORE = -100  # cross-entropy's default ignore_index: labels out of range are left out
MAX_PAIRS = 1 << 24  # broadcast (N, N) losses are recomputed up to this size to compare with the logged loss


def class_dim(outputs: torch.Tensor, targets: torch.Tensor | None) -> int | None:
    """The dimension of `outputs` that holds class scores: 1 by PyTorch's convention, the last one for
    (N, T, C) outputs against (N, T) targets; None for a single output unit."""
    if outputs.dim() < 2 or outputs.shape[1 if outputs.dim() == 2 else -1] < 2:
        return None
    if targets is None or outputs.dim() != targets.dim() + 1:
        return 1 if outputs.dim() == 2 else None
    if outputs.shape[:1] + outputs.shape[2:] == targets.shape:
        return 1
    if outputs.shape[:-1] == targets.shape:
        return -1
    return None


def candidates(output: Any, measured: torch.Tensor) -> list[tuple[Any, torch.Tensor]]:
    """The floating tensors of a several-tensor output, the one measured so far first; [] for a single one or
    for a dict with 'logits' (a Hugging Face output, whose prediction is named). A 0-d entry is a loss."""
    if isinstance(output, Mapping) and "logits" in output:
        return []
    elements = [(k, v) for k, v in output_elements(output) if v.dim() > 0]
    return sorted(elements, key=lambda kv: kv[1] is not measured) if len(elements) > 1 else []


def settle_output(record: StepRecord, loss: torch.Tensor, ctx: Context) -> None:
    """When the model returned several tensors, take as the prediction the one `loss` was computed from, and
    remember its key for the later steps."""
    if len(record.candidates) < 2 or loss.grad_fn is None:
        return
    keys = read_by(loss, record.candidates)
    if len(keys) == 1:
        ctx.output_key = keys[0]
        record.outputs = dict(record.candidates)[keys[0]].detach()
        record.candidates = []


class OutputProbe(Probe):
    """Keeps a reference to the model's output on a sampled step (or takes what `log()` passed) and reduces it,
    with the targets and the loss, when the step's record closes."""

    name = "outputs"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.warned = False  # the several-tensor warning is given once

    def arm(self, record: StepRecord) -> None:
        model = self.ctx.model
        if model is not None:
            self.temporary.add(model.register_forward_hook(self.guarded(self._capture(record))))

    def _capture(self, record: StepRecord) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            out = pick(output, self.ctx.output_key)
            if torch.is_grad_enabled() and record.outputs is None and isinstance(out, torch.Tensor):
                record.outputs = out.detach()
                record.candidates = candidates(output, out) if self.ctx.output_key is None else []

        return hook

    def finish(self, record: StepRecord) -> None:
        if record.candidates:
            self._unsettled(record)
        if record.loss is not None:
            record.put(N.LOSS, record.loss.float().mean())
        if record.loss_kind is not None:
            record.note(N.LOSS_KIND, record.loss_kind)
        o, t = record.outputs, record.targets  # kept detached
        if o is not None and o.is_floating_point() and o.numel() > 0:
            self._outputs(record, o, t)
        if t is not None and t.numel() > 0:
            self._targets(record, t, o)
        if o is not None and t is not None and o.is_floating_point():
            self._pairs(record, o, t)

    def _unsettled(self, record: StepRecord) -> None:
        """Several output tensors and no loss graph to tell which is the prediction: say which one is measured."""
        keys = [k for k, _ in record.candidates]
        measured, record.candidates = keys[0], []
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"the model returns {len(keys)} tensors ({', '.join(map(repr, keys))}) and no loss tensor was logged "
                f"to tell which one the loss reads: the monitor measures outputs[{measured!r}] as the prediction. "
                "Call monitor.log(loss=loss) with the loss tensor, or log(outputs=...) with the prediction.",
                TorchMedicWarning,
                stacklevel=2,
            )

    def _outputs(self, record: StepRecord, o: torch.Tensor, t: torch.Tensor | None) -> None:
        of = o.float()
        record.note(N.OUTPUT_SHAPE, list(o.shape))
        record.note(N.OUTPUT_UNITS, int(o.shape[1]) if o.dim() >= 2 else 1)
        mean, std, between = stats.spread_tensor(of)
        low, high = torch.aminmax(of)
        record.put(N.OUTPUT_MEAN, mean)
        record.put(N.OUTPUT_STD, std)
        record.put(N.OUTPUT_MIN, low)
        record.put(N.OUTPUT_MAX, high)
        record.put(N.OUTPUT_BETWEEN_STD, between)
        record.put(N.OUTPUT_ZERO_FRACTION, (of == 0).float().mean())
        record.put(N.OUTPUT_FINITE, torch.isfinite(mean) & torch.isfinite(std))  # one NaN/Inf spoils both
        dim = class_dim(o, t)
        if dim is not None:  # probabilities sum to 1 over the classes (per pixel, per step); log-probabilities in exp
            record.put(N.OUTPUT_ROW_SUM_DEV, (of.sum(dim=dim) - 1).abs().mean())
            record.put(N.OUTPUT_LOGSUMEXP_DEV, of.logsumexp(dim=dim).abs().mean())

    def _targets(self, record: StepRecord, t: torch.Tensor, o: torch.Tensor | None) -> None:
        index = not t.is_floating_point() and not t.is_complex()
        record.note(N.TARGET_KIND, "index" if index else "float")
        record.note(N.TARGET_SHAPE, list(t.shape))
        tf = t.float()
        record.put(N.TARGET_MIN, tf.amin())
        record.put(N.TARGET_MAX, tf.amax())
        if not index:
            std, mean = stats.std_mean_tensor(tf) if tf.numel() > 1 else (tf.new_zeros(()), tf.mean())
            record.put(N.TARGET_MEAN, mean)
            record.put(N.TARGET_STD, std)
            record.put(N.TARGET_RMS, tf.square().mean().sqrt())
            record.put(N.TARGET_FINITE, torch.isfinite(mean) & torch.isfinite(std))
            record.put(N.TARGET_NEGATIVE_FRACTION, (tf < 0).float().mean())
            record.put(N.TARGET_ABOVE_ONE_FRACTION, (tf > 1).float().mean())
        if not index and o is not None and o.numel() == t.numel() and o.is_floating_point():
            self._binary(record, o.float().reshape(-1), tf.reshape(-1))
        dim = None if o is None or not index else class_dim(o, t)
        if o is not None and dim is not None and o.shape[dim] <= MAX_HISTOGRAM_CLASSES:
            classes = int(o.shape[dim])
            record.put(N.TARGET_HIST, stats.class_histogram_tensor(t, classes), across=SUM)
            record.put(N.PRED_HIST, stats.class_histogram_tensor(o.argmax(dim=dim), classes), across=SUM)

    def _binary(self, record: StepRecord, o: torch.Tensor, t: torch.Tensor) -> None:
        """Class histograms of a one-output binary task (rules use them when every target is 0 or 1)."""
        record.put(N.TARGET_BINARY_FRACTION, ((t == 0) | (t == 1)).float().mean())
        threshold = torch.where((o.amin() >= 0) & (o.amax() <= 1), 0.5, 0.0)  # probabilities, else logits
        record.put(N.TARGET_HIST, stats.class_histogram_tensor((t >= 0.5).long(), 2), across=SUM)
        record.put(N.PRED_HIST, stats.class_histogram_tensor((o >= threshold).long(), 2), across=SUM)

    def _pairs(self, record: StepRecord, o: torch.Tensor, t: torch.Tensor) -> None:
        index = not t.is_floating_point()
        dim = class_dim(o, t) if index else None
        if dim is not None and o.dim() == 2 and t.dim() == 1 and record.loss is not None:
            # the loss if the outputs were logits of one label a sample; (N, T) targets are no labels of (N, C) outputs
            known = torch.where((t >= 0) & (t < o.shape[1]), t.long(), IGNORE)
            record.put(N.LOSS_CE_ON_OUTPUTS, F.cross_entropy(o.float(), known, ignore_index=IGNORE))
        if not index and o.shape != t.shape:
            try:
                pairs = torch.Size(torch.broadcast_shapes(o.shape, t.shape)).numel()
            except RuntimeError:
                return
            record.note(N.LOSS_BROADCAST_NUMEL, pairs)
            record.note(N.LOSS_OUTPUT_NUMEL, int(o.numel()))
            if o.numel() < pairs <= MAX_PAIRS and o.numel() == t.numel():  # what an elementwise loss gives if it
                of, tf = o.float(), t.float()  # broadcasts the two, and if they are aligned
                record.put(N.LOSS_MSE_BROADCAST, (of - tf).square().mean())
                record.put(N.LOSS_MSE_ALIGNED, (of.reshape(t.shape) - tf).square().mean())
                record.put(N.LOSS_L1_BROADCAST, (of - tf).abs().mean())
                record.put(N.LOSS_L1_ALIGNED, (of.reshape(t.shape) - tf).abs().mean())
