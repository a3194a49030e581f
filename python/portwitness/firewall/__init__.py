"""Firewalls: the allow-list a configuration needs, written in the syntax of the firewall an
administrator runs (`plan`, `write_*`), and a real ruleset read (`read`, `read_nft`,
`read_iptables`, `windows`) and evaluated against the connection attempts of captures
(`evaluate`, `check`). docs/firewall.md states the semantics evaluated and what is not."""
