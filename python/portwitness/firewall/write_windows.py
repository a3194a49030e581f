"""Windows Defender Firewall: a PowerShell script of `New-NetFirewallRule` lines and a batch file of
`netsh advfirewall firewall add rule` lines, one inbound allow rule each, its justification in the
rule's description and on a comment line above it. `-Program` / `program=` is written where the
catalog names the service's executable and the installation directory is given."""

from __future__ import annotations

import ntpath

from portwitness.firewall.escape import cmd_string, cmd_text, hash_comment, ps_string
from portwitness.firewall.plan import Allow, AllowList
from portwitness.firewall.write_common import header, rule_name

GROUP = "portwitness"


def _program(a: Allow, install_dir: str | None) -> str | None:
    return ntpath.join(install_dir, a.executable) if install_dir and a.executable else None


def powershell(al: AllowList, install_dir: str | None = None) -> str:
    out = [f"# {hash_comment(h)}" for h in header(al, "PowerShell, Windows Defender Firewall")]
    out.append(
        "# Run in an elevated PowerShell; each line adds one inbound allow rule (group 'portwitness')."
    )
    out.append(
        "# The rules of an earlier run of this script go first, so that running it again replaces them."
    )
    out.append(f"Remove-NetFirewallRule -Group {ps_string(GROUP)} -ErrorAction SilentlyContinue")
    for i, a in enumerate(al.allows, 1):
        out.append(f"# {hash_comment(rule_name(a) + ': ' + a.justification)}")
        args = [
            "New-NetFirewallRule",
            f"-Name {ps_string(f'portwitness-{i}')}",
            f"-DisplayName {ps_string(rule_name(a), 200)}",
            f"-Group {ps_string(GROUP)}",
            "-Direction Inbound",
            "-Action Allow",
            f"-Protocol {a.transport.upper()}",
            f"-LocalPort {','.join(ps_string(str(r)) for r in a.ports)}",
        ]
        if a.dsts:
            args.append(f"-LocalAddress {','.join(ps_string(d) for d in a.dsts)}")
        if a.peers:
            args.append(f"-RemoteAddress {','.join(ps_string(p) for p in a.peers)}")
        program = _program(a, install_dir)
        if program:
            args.append(f"-Program {ps_string(program)}")
        args.append(f"-Description {ps_string(a.justification, 1000)}")
        line = " ".join(args)
        if not a.active:
            out.append(
                f"# bound to host {hash_comment(a.host)} by name: generate with --target {hash_comment(a.host)} to use it"
            )
            line = "# " + line
        out.append(line)
    return "\n".join(out) + "\n"


def netsh(al: AllowList, install_dir: str | None = None) -> str:
    out = ["@echo off"]
    out += [f"rem {cmd_text(h)}" for h in header(al, "netsh advfirewall, Windows Defender Firewall")]
    out.append("rem Run as administrator; each line adds one inbound allow rule.")
    for a in al.allows:
        out.append(f"rem {cmd_text(rule_name(a) + ': ' + a.justification)}")
        args = [
            "netsh advfirewall firewall add rule",
            f"name={cmd_string(rule_name(a), 200)}",
            "dir=in",
            "action=allow",
            f"protocol={a.transport.upper()}",
            f"localport={','.join(str(r) for r in a.ports)}",
        ]
        if a.dsts:
            args.append(f"localip={','.join(cmd_text(d) for d in a.dsts)}")
        if a.peers:
            args.append(f"remoteip={','.join(cmd_text(p) for p in a.peers)}")
        program = _program(a, install_dir)
        if program:
            args.append(f"program={cmd_string(program)}")
        args.append(f"description={cmd_string(a.justification, 1000)}")
        line = " ".join(args)
        if not a.active:
            out.append(
                f"rem bound to host {cmd_text(a.host)} by name: generate with --target {cmd_text(a.host)} to use it"
            )
            line = "rem " + line
        out.append(line)
    return "\r\n".join(out) + "\r\n"
