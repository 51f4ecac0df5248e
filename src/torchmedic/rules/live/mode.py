"""Live rules for train/eval mode: eval mode while training, train mode at evaluation, BatchNorm on tiny batches."""

from __future__ import annotations

from torchmedic import signal_names as N
from torchmedic.finding import Evidence
from torchmedic.rules.live.common import MECHANISM_LIVE, PLAUSIBLE, SEEN_LIVE
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds


@rule("mode.eval_during_training", seen_by="live")
def eval_during_training(s: Signals, t: Thresholds) -> Claim | None:
    """Dropout and BatchNorm behave differently in the two modes, so the mode must match what the loop does."""
    layers = s.get(N.MODE_DEPENDENT_LAYERS, 0)
    if not layers:
        return None  # without dropout or BatchNorm the mode changes nothing
    if s.get(N.MODE_TRAINING) is False:
        return Claim(
            SEEN_LIVE,
            f"the model is in eval mode while the optimizer trains it: its {layers} dropout/BatchNorm layers use "
            "their inference behaviour (no dropout, frozen running statistics). A model.eval() for validation "
            "without model.train() afterwards?",
            [
                Evidence("model.training at optimizer steps", False, "True"),
                Evidence("dropout/BatchNorm layers affected", layers, "0"),
            ],
            "Put the model back in train mode at the start of every training epoch.",
            "for epoch in range(epochs):\n    model.train()\n    for x, y in loader:\n        ...",
        )
    forwards, in_train = s.get(N.EVAL_FORWARDS, 0), s.get(N.EVAL_TRAIN_MODE_FORWARDS, 0)
    if forwards >= t.min_eval_forwards and in_train == forwards:
        return Claim(
            PLAUSIBLE,
            f"all {forwards} forwards without gradient (evaluation) ran in train mode: dropout stays on and "
            "BatchNorm normalizes with the evaluation batch and updates its running statistics.",
            [
                Evidence("evaluation forwards in train mode", in_train, "0"),
                Evidence("dropout/BatchNorm layers affected", layers, "0"),
            ],
            "Switch to eval mode for evaluation and back to train mode afterwards.",
            "model.eval()\nwith torch.no_grad():\n    preds = model(x_val)\nmodel.train()",
        )
    return None


@rule("mode.bn_small_batch", seen_by="live")
def bn_small_batch(s: Signals, t: Thresholds) -> Claim | None:
    """BatchNorm normalizes with the batch's own mean and std: over 1-2 samples these are noise."""
    size = s.get(N.BN_BATCH_SIZE)
    if size is None or size > t.max_bn_batch or s.get(N.MODE_TRAINING) is False:
        return None
    return Claim(
        MECHANISM_LIVE,
        f"BatchNorm layers train on batches of {size}: the batch mean and std of {size} samples are noise, so "
        "training outputs depend on the batch partner and eval outputs (running statistics) differ from them.",
        [Evidence("batch size seen by BatchNorm in training", size, f"> {t.max_bn_batch} (usually >= 16)")],
        "Use larger batches, or GroupNorm/LayerNorm, which do not depend on the batch.",
        "nn.GroupNorm(num_groups=8, num_channels=64)  # instead of nn.BatchNorm2d(64)",
    )
