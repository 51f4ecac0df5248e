"""Live rules for the loss: softmax applied twice, a loss that does not fit the targets, broadcast shapes."""

from __future__ import annotations

import math

from torchmedic import signal_names as N
from torchmedic.finding import Evidence, format_value
from torchmedic.rules.live.common import MECHANISM_LIVE, SEEN_LIVE, SPECIFIC, number
from torchmedic.rules.registry import Claim, rule
from torchmedic.signals import Signals
from torchmedic.thresholds import Thresholds

BINARY = ("binary_cross_entropy", "binary_cross_entropy_with_logits")
ELEMENTWISE = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")


@rule("loss.double_softmax", seen_by="live")
def double_softmax(s: Signals, t: Thresholds) -> Claim | None:
    """Cross-entropy applies log-softmax itself; on probabilities in [0, 1] it sees nearly uniform logits."""
    deviation, low, units = number(s, N.OUTPUT_ROW_SUM_DEV), number(s, N.OUTPUT_MIN), s.get(N.OUTPUT_UNITS, 0)
    if deviation is None or low is None or deviation > t.max_row_sum_dev or low < 0 or units < 2:
        return None
    loss, on_outputs = number(s, N.LOSS), number(s, N.LOSS_CE_ON_OUTPUTS)
    matches = loss is not None and on_outputs is not None and abs(loss - on_outputs) <= t.loss_match * max(1.0, loss)
    if s.get(N.LOSS_KIND) != "cross_entropy" and not matches:
        return None
    floor = math.log(1 + (units - 1) / math.e)  # cross-entropy of perfect probabilities taken as logits
    evidence = [Evidence("mean |row sum - 1| of the outputs", deviation, "far from 0 for logits")]
    if matches and loss is not None and on_outputs is not None:
        evidence.append(
            Evidence(
                "logged loss vs cross-entropy on the outputs as logits",
                [loss, on_outputs],
                "different: the outputs should be the logits",
            )
        )
    evidence.append(Evidence("lowest loss reachable this way", floor, "0"))
    return Claim(
        SPECIFIC,
        f"the model outputs probabilities (rows sum to 1) and the loss applies softmax again: the loss cannot go "
        f"below {floor:.2f} and its gradients are tiny, so predictions stay nearly uniform.",
        evidence,
        "Return raw logits from forward (drop the final softmax); apply softmax only for predictions.",
        "return self.fc(x)  # no softmax: nn.CrossEntropyLoss applies log-softmax itself",
    )


@rule("loss.task_mismatch", seen_by="live")
def task_mismatch(s: Signals, t: Thresholds) -> Claim | None:
    """A loss assumes a kind of target: 0/1 labels for binary cross-entropy, log-probabilities for NLL."""
    kind, top = s.get(N.LOSS_KIND), number(s, N.TARGET_MAX)
    if kind in BINARY and top is not None and top > 1:
        return Claim(
            SPECIFIC,
            f"{kind} gets targets up to {format_value(top)}: class indices, not 0/1 labels. Binary cross-entropy "
            "cannot fit them and the output settles between classes.",
            [Evidence("largest target", top, "<= 1 for binary cross-entropy")],
            "For more than two classes, output one logit per class and use cross-entropy.",
            "self.fc = nn.Linear(hidden, num_classes)\nloss_fn = nn.CrossEntropyLoss()  # targets: class indices",
        )
    loss = number(s, N.LOSS)
    if s.get(N.TARGET_KIND) == "index" and loss is not None and loss < 0 and kind in (None, "nll_loss"):
        return Claim(
            MECHANISM_LIVE,
            f"the classification loss is negative ({format_value(loss)}): nll_loss on raw scores instead of "
            "log-probabilities rewards making the target score ever larger, without bound.",
            [Evidence(N.LOSS, loss, ">= 0 for a classification loss")],
            "Give nll_loss log-probabilities, or use cross_entropy on the raw logits.",
            "loss = F.cross_entropy(logits, y)  # or F.nll_loss(F.log_softmax(logits, dim=1), y)",
        )
    return None


@rule("loss.shape_broadcast", seen_by="live")
def shape_broadcast(s: Signals, t: Thresholds) -> Claim | None:
    """An elementwise loss on (N, 1) outputs and (N,) targets compares every output with every target."""
    pairs, outputs = s.get(N.LOSS_BROADCAST_NUMEL), s.get(N.LOSS_OUTPUT_NUMEL)
    if not pairs or not outputs or pairs <= outputs:
        return None
    kind = s.get(N.LOSS_KIND)
    if kind is None and not _loss_is_broadcast(s, t):
        return None  # the outputs logged are the model's; the loss may well get them reshaped
    if kind is not None and kind not in ELEMENTWISE:
        return None
    shape_o, shape_t = s.get(N.OUTPUT_SHAPE), s.get(N.TARGET_SHAPE)
    return Claim(
        SEEN_LIVE,
        f"outputs of shape {shape_o} and targets of shape {shape_t} broadcast to {pairs} pairs in the loss: "
        "every output is compared with every target, so the best the model can do is predict their mean.",
        [Evidence("elements compared by the loss / outputs", pairs / outputs, "1")],
        "Give outputs and targets the same shape.",
        "loss = loss_fn(model(x).squeeze(-1), y)",
    )


def _loss_is_broadcast(s: Signals, t: Thresholds) -> bool:
    """The logged loss equals the broadcast (N, N) mean error and not the aligned one."""
    loss = number(s, N.LOSS)
    if loss is None:
        return False
    for names in (
        (N.LOSS_MSE_BROADCAST, N.LOSS_MSE_ALIGNED),
        (N.LOSS_L1_BROADCAST, N.LOSS_L1_ALIGNED),
    ):
        broadcast, aligned = number(s, names[0]), number(s, names[1])
        if broadcast is None or aligned is None:
            continue
        tolerance = t.loss_match * max(1.0, abs(loss))
        if abs(loss - broadcast) <= tolerance < abs(loss - aligned):
            return True
    return False
