"""How a torchmedic API call on a generated setup ended: a result, a torchmedic error or a crash, the probes that
failed, whether the user's state is as it should be, and the seconds it took."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

from test_diagnose_state import assert_same, snapshot

import torchmedic
from torchmedic import TorchMedicError, TorchMedicWarning

from generated import Case, build, train
from plan import Plan

BUDGET_S = {"diagnose": 2.0, "repair": 3.0}  # seconds: enough for the tiny generated models to reach the trials
RANGE_STEPS = 20  # find_lr steps: the property is about how it ends, not how fine its curve is
MONITOR_STEPS = 6  # steps of the user's loop under the monitor, every one sampled
APIS = ("diagnose", "find_lr", "repair", "monitor")


def call(api: str, case: Case) -> Any:
    """One call of a torchmedic API on the case, as a user would write it."""
    if api == "diagnose":
        return torchmedic.diagnose(case.model, case.loader, case.loss_fn, case.given_optimizer,
                                   budget_s=BUDGET_S[api], keys=case.keys)  # fmt: skip
    if api == "find_lr":
        return torchmedic.find_lr(case.model, case.loader, case.loss_fn, case.given_optimizer, num_iter=RANGE_STEPS,
                                  keys=case.keys)  # fmt: skip
    if api == "repair":
        return torchmedic.repair(case.model, case.loader, case.loss_fn, case.given_optimizer,
                                 budget_s=BUDGET_S[api], keys=case.keys)  # fmt: skip
    with torchmedic.Monitor(case.model, case.given_optimizer, every=1) as monitor:
        train(case, MONITOR_STEPS, monitor)
    return monitor


@dataclass
class Outcome:
    """How one call ended (its result, the torchmedic error it raised, or another exception: a crash), the probes
    that failed (warned and were skipped), the first part of the user's state it left changed, and its seconds."""

    result: Any = None
    refusal: TorchMedicError | None = None
    crash: Exception | None = None
    probe_failures: tuple[str, ...] = ()
    difference: str | None = None
    seconds: float = 0.0


def _ended(api: str, case: Case) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TorchMedicWarning)
        started = time.perf_counter()
        try:
            outcome = Outcome(result=call(api, case))
        except TorchMedicError as exc:
            outcome = Outcome(refusal=exc)
        except Exception as exc:
            outcome = Outcome(crash=exc)
        outcome.seconds = time.perf_counter() - started
    outcome.probe_failures = tuple(str(w.message) for w in caught if issubclass(w.category, TorchMedicWarning))
    return outcome


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    try:
        assert_same(before, after)
    except AssertionError as exc:
        return str(exc)
    return None


HOOKS = ("hooks", "optimizer_hooks", "global_hooks")


def check(api: str, plan: Plan) -> Outcome:
    """Build the plan, call the API and compare the user's state with what it should be: as before the call, or
    for the monitor, as after the same loop run plainly (and with the same hooks as before it)."""
    case = build(plan)
    state = snapshot(case.model, case.optimizer, case.scheduler, case.loader)
    outcome = _ended(api, case)
    after = snapshot(case.model, case.optimizer, case.scheduler, case.loader)
    if api != "monitor":
        outcome.difference = _difference(state, after)
        return outcome
    plain = build(plan)
    train(plain, MONITOR_STEPS)
    expected = snapshot(plain.model, plain.optimizer, plain.scheduler, plain.loader)
    outcome.difference = _difference({k: state[k] for k in HOOKS}, {k: after[k] for k in HOOKS}) or _difference(
        {k: v for k, v in expected.items() if k not in HOOKS}, {k: v for k, v in after.items() if k not in HOOKS}
    )
    return outcome
