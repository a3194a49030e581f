"""The `portwitness firewall` commands: rules written from the configuration, and a real ruleset
checked against the wire. They share the other commands' options, decode and audit
(`portwitness.commands`); the firewall modules are imported when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from portwitness.commands.audit import REPORT_FORMATS, report_format, run_audit
from portwitness.commands.errors import EXIT_FINDINGS
from portwitness.commands.load import load
from portwitness.commands.options import config_options, decode_options, from_dataset_option, load_policy
from portwitness.commands.output import emit, warn, warn_anomalies
from portwitness.errors import PortwitnessError

RULE_FORMATS = ("nftables", "iptables", "ip6tables", "firewalld", "powershell", "netsh", "json")
FAIL_ON = ("blocked-needed", "closed-configured", "not-evaluated")


class RulesetUnusable(click.ClickException, PortwitnessError):
    """A ruleset that cannot be parsed: usage/config error, exit 2."""

    exit_code = 2


@click.group(name="firewall")
def firewall() -> None:
    """Firewall rules from the configuration, and a real ruleset checked against the wire."""


@firewall.command("rules")
@click.argument("captures", nargs=-1)
@from_dataset_option
@config_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RULE_FORMATS),
    default="nftables",
    show_default=True,
    help="nftables (nft -f), iptables / ip6tables (iptables-restore), firewalld (a service XML "
    "per Arcserve role), powershell (New-NetFirewallRule), netsh (a batch file), json (the list).",
)
@click.option(
    "--observed-only",
    is_flag=True,
    help="Keep only the rules the captures used, narrowed to the addresses that used them and "
    "the dynamic ports handed out (default with captures: add the learned ports not configured).",
)
@click.option(
    "--target",
    metavar="HOST",
    help="Only the rules of this host (name or address) and of every host; rules bound to it "
    "by name are written active.",
)
@click.option(
    "--install-dir",
    metavar="DIR",
    help="Arcserve's installation directory on Windows: rules of services whose executable the "
    "catalog names get -Program / program= DIR\\EXE.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True),
    help="Write to a file (firewalld: a directory, one service file per role).",
)
@decode_options
def rules(
    captures: tuple[str, ...],
    dataset: str | None,
    config: str | None,
    mgmt_config: str | None,
    policy: str | None,
    pipe_pair_is_range: bool,
    fmt: str,
    observed_only: bool,
    target: str | None,
    install_dir: str | None,
    output: str | None,
    max_flows: int,
    idle_timeout: float,
) -> None:
    """The allow-list each host needs, from the configuration (PortsConfig.cfg, management
    settings, a TOML policy; without any, the catalog's defaults), in the syntax of the
    firewall: per host, transport and port or range, each rule commented with the
    configuration line or the flow that justifies it.

    With CAPTURES (or --from-dataset), ports the traffic used for known services that no rule
    opens are added, saying so; with --observed-only the rules are narrowed to the traffic."""
    from portwitness.firewall.plan import allow_list

    if observed_only and not (captures or dataset):
        raise click.UsageError("--observed-only needs CAPTURES or --from-dataset")
    pol = load_policy(config, mgmt_config, policy, pipe_pair_is_range)
    flows = None
    if captures or dataset:
        with load(captures, dataset, max_flows, idle_timeout) as cap:
            warn_anomalies(cap)
            a = run_audit(cap, pol, (None, None), ())
            flows = a.flows
            a.close()
    al = allow_list(pol, flows, observed_only=observed_only, target=target)
    if (
        fmt == "firewalld"
        and output not in (None, "-")
        and (output.endswith(("/", "\\")) or Path(output).is_dir())
    ):
        from portwitness.firewall.write_firewalld import firewalld

        Path(output).mkdir(parents=True, exist_ok=True)
        from portwitness.outputs import write_text

        for name, text in firewalld(al).items():
            write_text(Path(output) / name, text)
        return
    emit(_rules_text(al, fmt, install_dir), output)


@firewall.command("check")
@click.argument("ruleset", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("captures", nargs=-1)
@from_dataset_option
@config_options
@click.option(
    "--ruleset-format",
    type=click.Choice(["auto", "nftables", "iptables", "windows-json", "netsh"]),
    default="auto",
    show_default=True,
    help="nftables: nft -j list ruleset; iptables: iptables-save (IPv4 and IPv6 one after the "
    "other); windows-json: Get-NetFirewallRule with its filters, ConvertTo-Json; netsh: show rule "
    "name=all verbose.",
)
@click.option(
    "--host",
    "this_host",
    metavar="ADDRESS",
    help="The address of the host that runs the ruleset: attempts to it go through its input, "
    "from it through its output, others are left out (default: each attempt as it arrives at "
    "its server).",
)
@click.option("--iif", metavar="NAME", help="The interface the captured traffic arrived on.")
@click.option(
    "--profile",
    type=click.Choice(["domain", "private", "public"]),
    help="Windows: the active profile (default: not known; rules of some profiles only are not evaluated).",
)
@click.option(
    "--default-inbound",
    type=click.Choice(["block", "allow"]),
    default="block",
    show_default=True,
    help="Windows: the profile's default inbound action.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    help="Output format (default: by extension, else table).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Write to a file.")
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    multiple=True,
    help="Exit with 3 when findings of that kind exist (repeatable).",
)
@decode_options
def check(
    ruleset: str,
    captures: tuple[str, ...],
    dataset: str | None,
    config: str | None,
    mgmt_config: str | None,
    policy: str | None,
    pipe_pair_is_range: bool,
    ruleset_format: str,
    this_host: str | None,
    iif: str | None,
    profile: str | None,
    default_inbound: str,
    fmt: str | None,
    output: str | None,
    fail_on: tuple[str, ...],
    max_flows: int,
    idle_timeout: float,
) -> int:
    """Evaluate every connection attempt of CAPTURES (or --from-dataset) against RULESET with
    the ruleset's own semantics: which attempts it allows or drops and by which rule, which
    flows that got through it would have blocked, which refused or unanswered attempts it
    explains, which rules nothing matched, which configured ports it leaves closed, and which
    of its constructs are not evaluated (docs/firewall.md)."""
    from portwitness.firewall.check import check as run_check
    from portwitness.firewall.plan import allow_list
    from portwitness.firewall.read import load_ruleset
    from portwitness.firewall.ruleset import RulesetError

    fmt = fmt or report_format(output)
    try:
        rs = load_ruleset(ruleset, ruleset_format)
    except RulesetError as e:
        raise RulesetUnusable(str(e)) from None
    rs.profile, rs.default_inbound = profile, default_inbound
    pol = load_policy(config, mgmt_config, policy, pipe_pair_is_range)
    with load(captures, dataset, max_flows, idle_timeout) as cap:
        warn_anomalies(cap)
        a = run_audit(cap, pol, (None, None), ())
        flows = a.flows.to_dicts()
        a.close()
    configured = allow_list(pol, None).allows if pol is not None else None
    try:
        res = run_check(rs, flows, configured, host=this_host, iif=iif)
    except RulesetError as e:
        raise RulesetUnusable(str(e)) from None
    _write_check(res, fmt, output)
    hit = [k for k in fail_on if res.count(k)]
    if hit:
        warn(f"failing on {', '.join(f'{res.count(k)} {k}' for k in hit)}")
        return EXIT_FINDINGS
    return 0


def _rules_text(al: Any, fmt: str, install_dir: str | None) -> str:
    if fmt == "nftables":
        from portwitness.firewall.write_nft import nftables

        return nftables(al)
    if fmt in ("iptables", "ip6tables"):
        from portwitness.firewall.write_iptables import iptables

        return iptables(al, 6 if fmt == "ip6tables" else 4)
    if fmt == "firewalld":
        from portwitness.firewall.write_firewalld import firewalld_text

        return firewalld_text(al)
    if fmt == "powershell":
        from portwitness.firewall.write_windows import powershell

        return powershell(al, install_dir)
    if fmt == "netsh":
        from portwitness.firewall.write_windows import netsh

        return netsh(al, install_dir)
    import json

    rows = [
        {
            "host": a.host,
            "direction": "inbound",
            "transport": a.transport,
            "ports": a.ports_text,
            "to": list(a.dsts),
            "from": list(a.peers),
            "service": a.service,
            "role": a.role,
            "active": a.active,
            "why": list(a.why),
        }
        for a in al.allows
    ]
    doc = {
        "schema": "portwitness.firewall-rules/1",
        "sources": al.sources,
        "rules": rows,
        "not_opened": al.unopened,
        "left_out": al.left_out,
    }
    return json.dumps(doc, indent=2) + "\n"


def _write_check(res: Any, fmt: str, output: str | None) -> None:
    from portwitness.firewall import report

    if fmt == "table":
        if output in (None, "-"):
            report.print_table(res)
        else:
            from rich.console import Console

            from portwitness.outputs import open_output

            with open_output(output, "w", encoding="utf-8") as fh:
                report.print_table(res, Console(file=fh, width=200, soft_wrap=False))
        return
    text = {
        "json": report.to_json,
        "csv": report.to_csv,
        "markdown": report.to_markdown,
        "html": report.to_html,
    }[fmt](res)
    emit(text, output)
