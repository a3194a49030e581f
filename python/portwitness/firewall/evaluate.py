"""Evaluation: what a ruleset does with the first packet of a connection attempt, with the
ruleset's own semantics.

Netfilter (nftables and iptables): the base chains of the hook (input for a packet to the host,
output for one it sends) in priority order; in each, rules in order, the first whose conditions
all hold applies its verdict: accept ends that chain (the next base chain still sees the packet),
drop and reject end the packet's way, jump runs another chain and comes back unless it decided,
goto runs it without coming back, return goes back to the caller (in a base chain: the policy);
a chain run to its end returns, a base chain then applies its policy. The first packet of an
attempt has conntrack state new, so `established,related` rules never match it.

Windows Defender Firewall: see `windows.evaluate`."""

from __future__ import annotations

from portwitness.firewall import windows
from portwitness.firewall.decision import ALLOWED, DROPPED, REJECTED, UNDECIDED, Decision
from portwitness.firewall.ruleset import (
    ACCEPT,
    DROP,
    GOTO,
    JUMP,
    MAX_NESTING,
    REJECT,
    RETURN,
    Chain,
    Packet,
    Rule,
    Ruleset,
)

__all__ = ["ALLOWED", "DROPPED", "REJECTED", "UNDECIDED", "Decision", "evaluate"]

_OUTCOME = {ACCEPT: ALLOWED, DROP: DROPPED, REJECT: REJECTED}


def evaluate(ruleset: Ruleset, packet: Packet, hook: str = "input") -> Decision:
    if ruleset.source.startswith("windows"):
        return windows.evaluate(ruleset, packet, hook)
    if packet.family not in ruleset.families:
        return Decision(UNDECIDED, None, f"the ruleset has no IPv{packet.family} rules")
    hits: list[Rule] = []
    decided: Decision | None = None
    chains = ruleset.base_chains(hook, packet.family)
    for chain in chains:
        verdict, rule = _run(ruleset, chain, packet, hits, 0)
        if verdict is None or verdict == RETURN:
            verdict, rule = chain.policy, None
        if verdict == "unknown":
            assert rule is not None
            return Decision(UNDECIDED, rule, _name(rule), hits)
        by = _name(rule) if rule is not None else f"policy {chain.policy} of chain {_chain_name(chain)}"
        this = Decision(_OUTCOME[verdict], rule, by, hits)
        if verdict != ACCEPT:
            return this
        # Accepted by every base chain: a rule that accepted tells more than a policy that did.
        if decided is None or (decided.rule is None and rule is not None):
            decided = this
    if decided is None:
        return Decision(ALLOWED, None, f"no {hook} chain: the packet is accepted", hits)
    return decided


def _run(
    ruleset: Ruleset, chain: Chain, p: Packet, hits: list[Rule], depth: int
) -> tuple[str | None, Rule | None]:
    """The verdict of `chain` (None: it ran to its end or returned) and the rule that gave it."""
    if depth > MAX_NESTING:
        # Readers refuse jump loops, so only a chain of jumps deeper than the kernel's own limit gets here.
        return "unknown", None
    for rule in chain.rules:
        m = rule.matches(p)
        if m is False:
            continue
        if m is None:
            return "unknown", rule
        hits.append(rule)
        if rule.verdict in (JUMP, GOTO):
            target = ruleset.chains.get((chain.family, chain.table, rule.target or ""))
            if target is None:
                return "unknown", rule
            verdict, by = _run(ruleset, target, p, hits, depth + 1)
            if verdict == "unknown" and by is None:
                return "unknown", rule
            if verdict not in (None, RETURN):
                return verdict, by
            if rule.verdict == GOTO:
                return None, None
        elif rule.verdict == RETURN:
            return RETURN, rule
        elif rule.verdict is not None:
            return rule.verdict, rule
    return None, None


def _chain_name(chain: Chain) -> str:
    return f"{chain.family} {chain.table} {chain.name}" if chain.family else chain.name


def _name(rule: Rule) -> str:
    return f"{rule.location}: {rule.text}"
