"""repair(): diagnose, apply the fix of each finding to copies, choose the LR for the repaired setup, and verify it
with a pilot run on held-out samples; try other options while the budget allows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from torchmedic import progress
from torchmedic.batch import Batch, BatchKeys, prediction_at
from torchmedic.context import Context, build
from torchmedic.doctor import check_arguments, diagnose
from torchmedic.errors import InputError
from torchmedic.finding import Finding
from torchmedic.guard import preserved
from torchmedic.repair.change import Unresolved
from torchmedic.repair.config import RepairConfig
from torchmedic.repair.pilot import Pilot, run_pilot
from torchmedic.repair.plan import Built, Step, steps_for, variants
from torchmedic.repair.plan import build as build_attempt
from torchmedic.repair.result import Attempt, RepairResult, script_of
from torchmedic.report import Report
from torchmedic.samples import without_held_out
from torchmedic.setup import Setup

FIRST_PILOTS_SHARE = 0.2  # the before pilot and the first attempt always run, for at least this share of the budget


def repair(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[..., Any],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    budget_s: float = 60.0,
    device: torch.device | str | None = None,
    keys: BatchKeys | None = None,
    config: RepairConfig | None = None,
) -> RepairResult:
    """Fix what diagnose() finds, on copies, and prove the fix with a short training run on held-out samples.

    Returns the repaired model, a fresh optimizer over it, the loss and the loader to train with, what changed and
    why, the lines to change in your own script, and the pilot metrics before and after. Remedies that cannot be
    applied automatically (NaN data, labels unrelated to their inputs, a graph cut in forward, ...) are listed in
    `unresolved` with what to change. The user's objects and every RNG, the loader's generators included, are left
    exactly as they were.
    """
    config = config or RepairConfig()
    check_arguments(model, loss_fn, optimizer)
    if not budget_s > 0:
        raise InputError(f"budget_s={budget_s}: repair needs a positive budget in seconds (60 is usual).")
    started = time.perf_counter()
    with preserved(model, optimizer, loader):
        report = diagnose(model, loader, loss_fn, optimizer, device=device,
                          budget_s=config.diagnose_share * budget_s, keys=keys, config=config.diagnose)  # fmt: skip
        ws = _workspace(model, loader, loss_fn, optimizer, device, keys or BatchKeys(), config, report, budget_s)
        with prediction_at(ws.ctx.prediction_key):
            result = _search(ws, report, budget_s, config)
    result.elapsed_s = time.perf_counter() - started
    return result


@dataclass
class Workspace:
    """The copies and batches as diagnose() reads them (with the diagnosis's signals) in `ctx`, and what pilots train
    on: the batches read, minus the held-out samples."""

    ctx: Context
    config: RepairConfig
    pool: tuple[Batch, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return self.ctx.remaining


def _workspace(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[..., Any],
    optimizer: torch.optim.Optimizer | None,
    device: torch.device | str | None,
    keys: BatchKeys,
    config: RepairConfig,
    report: Report,
    budget_s: float,
) -> Workspace:
    """Copies and batches as diagnose() reads them, the diagnosis's signals, and the pilot's training batches."""
    remaining = max(budget_s * (1 - config.diagnose_share), 1e-3)
    ctx = build(model, loader, loss_fn, optimizer, device, remaining, keys, config.diagnose)  # reads as diagnose did
    ctx.signals.extend(report.signals)
    ctx.train_batches = config.pilot_steps
    pool = without_held_out(ctx.audit, ctx.held_out, config.diagnose.max_trial_batch, config.pilot_steps, ctx.device)
    ws = Workspace(ctx, config, pool)
    if not pool:
        ws.pool = ctx.train
        ws.notes.append(
            "no sample read differs from the held-out ones (too few batches, or identical samples): the pilots are "
            "measured on samples they trained on"
        )
    return ws


def _pilot(ws: Workspace, label: str, setup: Setup, deadline: float) -> Pilot:
    progress.step(f"pilot: {label}")
    return run_pilot(label, setup, ws.config, deadline)


def _search(ws: Workspace, report: Report, budget_s: float, config: RepairConfig) -> RepairResult:
    """The before pilot, then attempts until one verifies or the budget is spent; the result from the one that
    verified, else from the primary plan (changes that did not verify either are not worth a change to a script)."""
    ctx = ws.ctx
    original = Setup(ctx.base, ctx.spec, ctx.loss_fn, ctx.loader, ws.pool, ctx.held_out)
    first_deadline = max(ctx.deadline, time.perf_counter() + FIRST_PILOTS_SHARE * budget_s)
    before = _pilot(ws, "before", original, first_deadline)
    steps, orphans = steps_for(report.findings)
    unchanged = Built(original)  # the primary plan when every fix was refused: nothing to pilot
    tried: list[tuple[Built, Attempt]] = []
    seen: set[tuple[str, ...]] = {()}  # the unchanged setup is the before pilot
    if steps or not before.learned:
        for index, variant in enumerate(variants(steps, config.max_attempts)):
            if tried and not _affordable(ws, tried[-1][1].pilot, before):
                ws.notes.append(f"out of budget before trying: {variant.label}")
                break
            built = build_attempt(ctx, steps, variant, original)
            unchanged = built if index == 0 else unchanged
            if built.setup.history not in seen:
                seen.add(built.setup.history)
                pilot = _pilot(ws, variant.label, built.setup, first_deadline if not tried else ctx.deadline)
                tried.append((built, Attempt(variant.label, tuple(built.changes), built.setup.spec.lr, pilot)))
            if any(a.pilot.learned for _, a in tried) and not (index == 0 and _unconvincing(ws, steps, tried, before)):
                break
            if index == 0 and not tried and before.learned:
                break  # nothing could be changed, and the setup learns as it is
            blocker = _blocker(ws, unchanged)
            if index == 0 and blocker:
                ws.notes.append(f"no other options tried: {blocker} is left to fix by hand and explains the failure")
                break
    verified = [t for t in tried if t[1].pilot.learned]
    if verified:
        built, attempt = _best(ws, verified)
        return _result(ws, report, built, before, attempt.pilot, orphans, [a for _, a in tried])
    primary = tried[0] if tried and tried[0][0] is unchanged else None
    if primary is not None and primary[1].pilot.error and not before.error:
        unchanged, primary = _undone(original, report, primary), None
    after = primary[1].pilot if primary is not None else before  # unverified extras are not worth your change
    return _result(ws, report, unchanged, before, after, orphans, [a for _, a in tried])


def _undone(original: Setup, report: Report, raised: tuple[Built, Attempt]) -> Built:
    """The user's setup as it was, when the plan's changes made its pilot raise: changes that break training are
    never returned; their causes are left to the user with the error."""
    built, attempt = raised
    changed = [f for f in report.findings if any(f.cause in c.causes for c in built.changes)]
    why = f"its fix made training raise ({attempt.pilot.error}): fix it by hand"
    return replace(built, setup=original, changes=[], refused=built.refused + [(f, why) for f in changed])


def _unconvincing(ws: Workspace, steps: list[Step], tried: list[tuple[Built, Attempt]], before: Pilot) -> bool:
    """The plan kept the user's LR and learned barely better than the user's setup: the next attempt re-chooses the
    LR, since a fix that rescales the inputs or the logits moves the LR that trains best by orders of magnitude."""
    kept_lr = bool(steps) and all(s.remedy.stage != "lr" for s in steps)
    return kept_lr and bool(tried) and tried[0][1].pilot.score < before.score + ws.config.lr_switch_skill


def _best(ws: Workspace, verified: list[tuple[Built, Attempt]]) -> tuple[Built, Attempt]:
    """The first attempt that verified, unless a later one learned clearly more: a new LR line in your script must
    buy `lr_switch_skill` of the way from chance to perfect (or of R^2)."""
    first = verified[0]
    better = [t for t in verified[1:] if t[1].pilot.score >= first[1].pilot.score + ws.config.lr_switch_skill]
    return max(better, key=lambda t: t[1].pilot.score) if better else first


def _blocker(ws: Workspace, built: Built) -> str:
    """A refused cause confident enough to explain why the setup cannot learn: no LR or option will help."""
    causes = [f.cause for f, _ in built.refused if f.confidence >= ws.config.blocker_confidence]
    return ", ".join(causes)


def _affordable(ws: Workspace, last: Pilot, before: Pilot) -> bool:
    """Another attempt fits: its pilot (and maybe a range test) cost about what the last pilot did."""
    cost = 1.5 * max(last.seconds, before.seconds)
    return ws.remaining >= cost


def _result(
    ws: Workspace,
    report: Report,
    built: Built,
    before: Pilot,
    after: Pilot,
    orphans: list[Finding],
    attempts: list[Attempt],
) -> RepairResult:
    setup = built.setup
    model = setup.model()
    unresolved = [_unresolved(f, reason) for f, reason in built.refused]
    unresolved += [_unresolved(f, "no automatic fix for this cause") for f in orphans]
    unresolved += [_unresolved(f, f"the pilot verified {what}, but your loader cannot be rebuilt to make it")
                   for f, what in built.by_hand]  # fmt: skip
    notes = list(ws.notes) + [f"{f.cause}: {reason}" for f, reason in built.needless]
    blockers = [u.cause for u in unresolved if u.confidence >= ws.config.blocker_confidence]
    verified = after.learned and not blockers
    if after.learned and blockers:  # the pilot cannot see what they break (a batch-mixing model scores on a batch)
        notes.append(f"the pilot learned, but {', '.join(blockers)} is left to fix by hand: not verified")
    if verified:  # a doubtful cause left alone did not stop the repaired setup from learning
        doubtful = [u for u in unresolved if u.confidence < ws.config.blocker_confidence]
        notes += [f"not remedied, and not needed to learn: {u.cause} (confidence {u.confidence:.2f}): {u.reason}"
                  for u in doubtful]  # fmt: skip
        unresolved = [u for u in unresolved if u not in doubtful]
    if before.learned and after.score < before.score:
        notes.append(
            f"your setup learned more in its pilot (score {before.score:.2f}) than the repaired one "
            f"({after.score:.2f}): the pilots do not show that the changes help"
        )
    if not report.findings:
        notes.append("diagnose() found no cause" + ("" if before.learned else "; the setup does not learn either"))
    return RepairResult(
        model=model,
        optimizer=setup.optimizer(model),
        loss_fn=setup.loss_fn,
        loader=setup.loader,
        changes=list(built.changes),
        before=before,
        after=after,
        verified=verified,
        report=report,
        unresolved=unresolved,
        script=script_of(list(built.changes), unresolved),
        attempts=attempts,
        notes=notes,
    )


def _unresolved(finding: Finding, reason: str) -> Unresolved:
    return Unresolved(finding.cause, finding.confidence, reason, finding.fix.advice, finding.fix.code)
