"""Every registered pre-flight rule has a sick setup that it names first and a healthy look-alike it leaves alone."""

from __future__ import annotations

import pytest

import torchmedic
from torchmedic.causes import pre_causes
from torchmedic.rules import rules_for

from setups import PATIENT_BUDGET_S, benign, sick

PRE_RULES = sorted(r.cause for r in rules_for("pre"))


def test_every_pre_cause_has_a_rule() -> None:
    assert sorted(pre_causes()) == PRE_RULES


@pytest.mark.parametrize("cause", PRE_RULES)
def test_rule_names_its_sick_setup_first(cause: str) -> None:
    setup = sick(cause)
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=PATIENT_BUDGET_S)
    assert report.findings, f"no finding for a setup broken by {cause}"
    top = report.findings[0]
    assert top.cause == cause, report
    assert 0.0 <= top.confidence <= 1.0
    assert top.summary and top.evidence and top.fix.advice


@pytest.mark.parametrize("cause", PRE_RULES)
def test_rule_stays_silent_on_a_healthy_look_alike(cause: str) -> None:
    setup = benign(cause)
    report = torchmedic.diagnose(setup.model, setup.loader, setup.loss_fn, setup.optimizer, budget_s=PATIENT_BUDGET_S)
    assert report.healthy, report
