"""Rules turn signals into findings. Importing this package registers every rule (see `registry.RULES`)."""

from torchmedic.rules import live, pre  # noqa: F401  (import registers the rules)
from torchmedic.rules.registry import RULES, Rule, evaluate, rule, rules_for

__all__ = ["RULES", "Rule", "evaluate", "rule", "rules_for"]
