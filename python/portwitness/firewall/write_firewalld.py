"""firewalld: one service definition per Arcserve role (backup server, agent, management service,
callback receiver, other), each port with its justification as an XML comment. A firewalld service
opens ports for the sources of the zone it is added to: addresses a rule is narrowed to are noted
in comments, for the zone's sources (`firewall-cmd --zone=Z --add-source=ADDR`)."""

from __future__ import annotations

from portwitness.firewall.escape import xml_comment, xml_text
from portwitness.firewall.plan import AllowList
from portwitness.firewall.write_common import header, rule_name

DESCRIPTIONS = {
    "backup-server": "Arcserve Backup server: RPC services, engines, portmapper and endpoint mapper",
    "agent": "Arcserve Backup agent: what backup servers connect to",
    "management": "Arcserve CA Management Service",
    "callback": "Arcserve management callback range, on the hosts the service calls back",
    "other": "Other services seen in the traffic",
}


def firewalld(al: AllowList) -> dict[str, str]:
    """File name -> service XML, one per role that has rules."""
    roles: dict[str, list] = {}
    for a in al.allows:
        roles.setdefault(a.role, []).append(a)
    out = {}
    for role, allows in roles.items():
        name = f"portwitness-{role}"
        lines = ['<?xml version="1.0" encoding="utf-8"?>']
        lines += [f"<!-- {xml_comment(h)} -->" for h in header(al, f"firewalld service {name}")]
        lines += [
            "<service>",
            f"  <short>{xml_text(name)}</short>",
            f"  <description>{xml_text(DESCRIPTIONS.get(role, role))}</description>",
        ]
        seen: set[tuple[str, str]] = set()
        for a in allows:
            lines.append(f"  <!-- {xml_comment(rule_name(a) + ': ' + a.justification)} -->")
            if a.dsts:
                lines.append(f"  <!-- {xml_comment('only on the host with address ' + ' '.join(a.dsts))} -->")
            if a.peers:
                lines.append(
                    f"  <!-- {xml_comment('only from ' + ' '.join(a.peers) + ': give the zone these sources')} -->"
                )
            if not a.active:
                lines.append(
                    f"  <!-- {xml_comment(f'bound to host {a.host} by name: generate with --target {a.host} to use it')} -->"
                )
                continue
            for r in a.ports:
                port = f"{r.lo}" if r.lo == r.hi else f"{r.lo}-{r.hi}"
                if (a.transport, port) in seen:
                    lines.append(f"  <!-- {xml_comment(f'{a.transport} {port} is already listed above')} -->")
                    continue
                seen.add((a.transport, port))
                lines.append(f'  <port protocol="{a.transport}" port="{port}"/>')
        lines += ["</service>", ""]
        out[f"{name}.xml"] = "\n".join(lines)
    return out


def firewalld_text(al: AllowList) -> str:
    """Every service file, one after the other, each opened by a line naming its file."""
    return "".join(f"<!-- ===== {name} ===== -->\n{text}" for name, text in firewalld(al).items())
