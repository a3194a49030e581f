"""What a ruleset decided for a packet: the verdicts, and the rule or policy that gave one."""

from __future__ import annotations

from dataclasses import dataclass, field

from portwitness.firewall.ruleset import Rule

ALLOWED, DROPPED, REJECTED, UNDECIDED = "allowed", "dropped", "rejected", "not evaluated"


@dataclass
class Decision:
    verdict: str  # allowed | dropped | rejected | not evaluated
    rule: Rule | None  # the rule that decided (None: a policy or the default action)
    by: str  # how the report names what decided: the rule's location and text, or the policy
    # Every rule whose conditions all held on the way (rules no traffic matches are reported).
    hits: list[Rule] = field(default_factory=list)
