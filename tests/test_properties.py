"""Properties over generated setups (tests/plan.py, tests/generated.py): on any model, batch format and optimizer
a user could write, diagnose(), find_lr(), repair() and the Monitor end with a result or a torchmedic error that
says what is wrong, never another exception, and leave every part of the user's state as it was (for the monitor:
as the same loop leaves it unmonitored). Budgets are measured by bench/property_bench.py, not here: machines are
noisy."""

from __future__ import annotations

import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torchmedic import InputError, LossError, ModelError

from outcomes import APIS, check
from plan import FAMILIES, PROFILE, plans

MIN_MESSAGE = 40  # characters: an error that names the problem says more than a type name and a word


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("api", APIS)
@settings(settings.get_profile(PROFILE))
@given(data=st.data())
def test_ends_well_and_leaves_the_users_state_as_it_was(api: str, family: str, data: st.DataObject) -> None:
    outcome = check(api, data.draw(plans(family), label="plan"))
    assert outcome.crash is None, "".join(traceback.format_exception(outcome.crash))
    if outcome.refusal is not None:
        assert isinstance(outcome.refusal, (InputError, ModelError, LossError)), repr(outcome.refusal)
        assert len(str(outcome.refusal)) >= MIN_MESSAGE, str(outcome.refusal)
    assert not outcome.probe_failures, outcome.probe_failures
    assert outcome.difference is None, f"{api} changed the user's {outcome.difference}"
