"""Run the property tests' generated setups (tests/plan.py, tests/generated.py) in larger numbers and count, per
API, how the calls ended: crashes (an exception that is not a torchmedic error), probe failures, state differences
and budget overruns (more than budget_s + 10%), with the median and the longest seconds.

Run from the repository root: `python bench/property_bench.py [--examples N] [--api NAME] [--threads N]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the generators and the state snapshot

from outcomes import APIS, BUDGET_S, Outcome, check
from plan import FAMILIES, PROFILE, Plan, plans

OVERRUN = 1.10  # the allowance: budget_s plus 10%
SHOWN = 3  # examples of each kind of failure printed under the table


@dataclass
class Tally:
    """How one API's calls ended, with a few of the plans that went wrong."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[tuple[str, Plan, str]] = field(default_factory=list)

    def add(self, api: str, plan: Plan, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        budget = BUDGET_S.get(api)
        for kind, detail in (
            ("crash", None if outcome.crash is None else f"{type(outcome.crash).__name__}: {outcome.crash}"),
            ("probe failure", "; ".join(outcome.probe_failures) or None),
            ("state difference", outcome.difference),
            ("overrun", f"{outcome.seconds:.2f} s" if budget and outcome.seconds > budget * OVERRUN else None),
        ):
            if detail is not None:
                self.failures.append((kind, plan, detail))

    def count(self, kind: str) -> int:
        return sum(k == kind for k, _, _ in self.failures)


def run(api: str, examples: int) -> Tally:
    """`examples` generated setups of each model family through `api`."""
    tally = Tally()
    for family in FAMILIES:
        _through(api, family, examples, tally)()
    return tally


def _through(api: str, family: str, examples: int, tally: Tally) -> Callable[[], None]:
    """A hypothesis run of `examples` setups of `family` through `api`, each outcome added to `tally`."""

    @settings(settings.get_profile(PROFILE), max_examples=examples)
    @given(data=st.data())
    def one(data: st.DataObject) -> None:
        plan = data.draw(plans(family))
        tally.add(api, plan, check(api, plan))

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10, help="setups per model family and API")
    parser.add_argument("--api", choices=APIS, action="append", help="only these APIs (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tallies = {api: run(api, args.examples) for api in args.api or APIS}
    print(f"{'api':<9} {'cases':>5} {'refused':>7} {'crashes':>7} {'probe fail':>10} {'state diff':>10} "
          f"{'overruns':>8} {'budget s':>8} {'median s':>8} {'max s':>6}")  # fmt: skip
    for api, tally in tallies.items():
        seconds = [o.seconds for o in tally.outcomes]
        refused = sum(o.refusal is not None for o in tally.outcomes)
        budget = f"{BUDGET_S[api]:.1f}" if api in BUDGET_S else "-"
        print(f"{api:<9} {len(seconds):>5} {refused:>7} {tally.count('crash'):>7} {tally.count('probe failure'):>10} "
              f"{tally.count('state difference'):>10} {tally.count('overrun'):>8} {budget:>8} "
              f"{statistics.median(seconds):>8.2f} {max(seconds):>6.2f}")  # fmt: skip
    for api, tally in tallies.items():
        refusals = Counter(str(o.refusal)[:160] for o in tally.outcomes if o.refusal is not None)
        for message, count in refusals.most_common():
            print(f"\n{api} refused {count}x: {message}")
        for kind in ("crash", "probe failure", "state difference", "overrun"):
            for _, plan, detail in [f for f in tally.failures if f[0] == kind][:SHOWN]:
                print(f"\n{api} {kind}: {detail[:500]}\n  {plan}")


if __name__ == "__main__":
    main()
