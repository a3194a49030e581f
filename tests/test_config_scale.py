"""Attribution and the per-rule statistics at configuration scale: a PortsConfig.cfg of 10,000 lines
against 50,000 flows (one condition per rule took minutes and gigabytes there), held against a
rule-by-rule reference; and the interval join held against the rule-by-rule order on random rules.
Timings are in benches/config_scale.py, not asserted here."""

from __future__ import annotations

import importlib
import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from portwitness.audit.hosts import addresses_of, match_hosts
from portwitness.audit.intervals import paint
from portwitness.audit.ranges import in_ranges, outside
from portwitness.config import read_portsconfig
from portwitness.config.model import KIND_CALLBACK, KIND_SERVICE, Origin, PortRange, Rule

attribute_mod = importlib.import_module("portwitness.audit.attribute")
services_mod = importlib.import_module("portwitness.audit.services")

T0 = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)
SERVICES = ("caservd", "tapeengine", "jobengine", "dbengine")


def ip_of(k: int) -> str:
    return f"10.200.{k // 250}.{k % 250 + 1}"


def governs(r: Rule, ip: str | None) -> bool:
    """hosts.on_host, rule by rule."""
    if r.ip is not None:
        return ip == r.ip
    if r.exclude_ips:
        return ip is not None and ip not in r.exclude_ips
    return True


def first_rule(rules: list[Rule], transport: str | None, ip: str | None, port: int | None) -> Rule | None:
    for r in rules:
        if r.kind != KIND_SERVICE or not r.ports or port is None or transport not in r.transports:
            continue
        if governs(r, ip) and r.covers(port):
            return r
    return None


def flows_frame(rows: list[tuple]) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "flow_id": list(range(n)),
            "server_ip": [r[0] for r in rows],
            "transport": [r[1] for r in rows],
            "server_port": [r[2] for r in rows],
            "client_ip": [f"10.64.{i // 250 % 250}.{i % 250 + 1}" for i in range(n)],
            "service": [r[3] if len(r) > 3 else None for r in rows],
            "outcome": ["completed" if i % 3 else "refused" for i in range(n)],
            "bytes_c2s": [100] * n,
            "bytes_s2c": [200] * n,
            "tls_sni": [None] * n,
            "auth_machines": [None] * n,
            "first_ts": [T0 + timedelta(seconds=i) for i in range(n)],
            "last_ts": [T0 + timedelta(seconds=i + 1) for i in range(n)],
        },
        schema_overrides={
            "flow_id": pl.UInt64,
            "server_ip": pl.String,
            "transport": pl.String,
            "server_port": pl.UInt16,
            "service": pl.String,
            "bytes_c2s": pl.UInt64,
            "bytes_s2c": pl.UInt64,
            "tls_sni": pl.String,
            "auth_machines": pl.String,
            "first_ts": pl.Datetime("ns", "UTC"),
            "last_ts": pl.Datetime("ns", "UTC"),
        },
    )


def test_paint_keeps_the_best_priority_at_every_port():
    rng = random.Random(7)
    for _ in range(2000):
        ranges = []
        for _ in range(rng.randint(0, 8)):
            lo = rng.randint(1, 60)
            ranges.append((lo, min(70, lo + rng.randint(0, 15)), rng.randint(0, 10)))
        segments = paint(ranges)
        assert all(a[1] < b[0] for a, b in zip(segments, segments[1:], strict=False))
        for port in range(75):
            want = min((p for lo, hi, p in ranges if lo <= port <= hi), default=None)
            got = [p for lo, hi, p in segments if lo <= port <= hi]
            assert got == ([] if want is None else [want]), (ranges, port)


def test_interval_join_picks_the_first_rule_in_order():
    rng = random.Random(11)
    ips = [f"10.0.0.{i}" for i in range(6)]
    for _ in range(200):
        rules = []
        for j in range(rng.randint(0, 12)):
            ports = []
            for _ in range(rng.randint(0, 3)):
                lo = rng.randint(1, 40)
                ports.append(PortRange(lo, lo + rng.randint(0, 8)))
            ip = rng.choice(ips) if rng.random() < 0.3 else None
            excluded = tuple(rng.sample(ips, rng.randint(1, 3))) if ip is None and rng.random() < 0.3 else ()
            rules.append(
                Rule(
                    service=f"s{j}",
                    kind=rng.choice([KIND_SERVICE] * 4 + [KIND_CALLBACK]),
                    transports=rng.choice([("tcp",), ("udp",), ("tcp", "udp")]),
                    ports=tuple(ports),
                    ip=ip,
                    exclude_ips=excluded,
                    origin=Origin("PortsConfig.cfg", j + 1),
                )
            )
        rows = [
            (
                rng.choice([*ips, None]),
                rng.choice(["tcp", "udp", "icmp", None]),
                rng.choice([None, *range(50)]),
            )
            for _ in range(rng.randint(0, 60))
        ]
        got = attribute_mod._port_rules(flows_frame(rows), rules, "config").sort("flow_id")
        want = [first_rule(rules, t, ip, port) for ip, t, port in rows]
        assert got["config_service"].to_list() == [r.service if r else None for r in want]
        assert got["config_origin"].to_list() == [str(r.origin) if r else None for r in want]


@pytest.fixture(scope="module")
def big():
    """A 10,000-line PortsConfig.cfg (general lines, then lines bound to 2,000 servers' addresses)
    and 50,000 flows over those servers and ports."""
    rng = random.Random(3)
    lines = [f"{name} {20000 + n * 7}-{20000 + n * 7 + 5}" for n, name in enumerate(SERVICES)]
    for i in range(10_000 - len(lines)):
        k, name = i % 2000, SERVICES[i % len(SERVICES)]
        lo = 20000 + (i * 13) % 2000
        lines.append(f"{name}\t{lo}-{lo + 3};{lo + 40}\tsrv{k}\t{ip_of(k)}")
    policy = read_portsconfig("PortsConfig.cfg", text="\r\n".join(lines) + "\r\n")
    rules, _, _ = match_hosts(policy.rules, pl.DataFrame(schema={"name": pl.String, "ip": pl.String}))
    rows = []
    for _ in range(50_000):
        # Mostly on a port a line of the server gives, sometimes between its ranges.
        i = rng.randrange(10_000)
        lo = 20000 + (i * 13) % 2000
        rows.append((ip_of(i % 2000), rng.choice(["tcp", "tcp", "udp"]), lo + rng.choice([0, 1, 3, 20, 40])))
    return rules, rows


def test_ten_thousand_lines_attribute_fifty_thousand_flows(big):
    rules, rows = big
    assert len(rules) == 10_000
    got = attribute_mod._port_rules(flows_frame(rows), rules, "config").sort("flow_id")
    # The reference, rule by rule in order, over the rules of the flow's address and the general ones.
    by_ip: dict[str | None, list[tuple[int, Rule]]] = {}
    for n, r in enumerate(rules):
        by_ip.setdefault(r.ip, []).append((n, r))
    want = []
    for ip, t, port in rows:
        candidates = sorted(by_ip.get(ip, []) + by_ip.get(None, []), key=lambda x: x[0])
        hit = first_rule([r for _, r in candidates], t, ip, port)
        want.append(str(hit.origin) if hit else None)
    assert got["config_origin"].to_list() == want
    assert sum(w is not None for w in want) > 20_000


def test_ten_thousand_lines_services_statistics(big):
    rules, rows = big
    named = attribute_mod._port_rules(flows_frame(rows), rules, "config").sort("flow_id")
    rows = [(*row, svc) for row, svc in zip(rows, named["config_service"].to_list(), strict=True)]
    out = services_mod.services(flows_frame(rows), rules)
    assert out.height == 10_000
    # Held against the rule's own definition for a sample of rules.
    for n in random.Random(5).sample(range(len(rules)), 60):
        r, row = rules[n], out.row(n, named=True)
        mine = [
            (i, p)
            for i, (ip, t, p, svc) in enumerate(rows)
            if svc == r.service and t in r.transports and governs(r, ip)
        ]
        carried = [
            i
            for i, (ip, t, p, _) in enumerate(rows)
            if i % 3 and t in r.transports and governs(r, ip) and r.covers(p)
        ]
        assert (row["origin"], row["flows"]) == (str(r.origin), len(mine))
        assert row["flows_on_configured"] == sum(r.covers(p) for _, p in mine)
        assert row["port_flows"] == len(carried)
        assert row["ports_seen"] == ";".join(str(p) for p in sorted({p for _, p in mine}))
        assert row["bytes"] == 300 * len(mine)


def test_ranges_lookup_matches_the_ranges_one_by_one():
    rng = random.Random(13)
    for _ in range(500):
        ranges = []
        for _ in range(rng.randint(1, 6)):
            lo = rng.randint(1, 50)
            ranges.append((lo, lo + rng.randint(0, 8)))
        values = [rng.choice([None, *range(65)]) for _ in range(rng.randint(0, 30))]
        got = in_ranges(pl.Series("port", values, dtype=pl.UInt16), ranges).to_list()
        assert got == [v is not None and any(lo <= v <= hi for lo, hi in ranges) for v in values]


def test_callbacks_outside_ten_thousand_ranges():
    # 10,000 callback ranges (a policy may list that many): one condition per range was the old way.
    rules = [
        Rule(
            service="mgmt-callback", kind=KIND_CALLBACK, ports=(PortRange(30000 + 3 * i, 30000 + 3 * i + 1),)
        )
        for i in range(10_000)
    ]
    ports = list(range(29990, 60010, 7))
    traffic = pl.DataFrame({"server_port": ports}, schema={"server_port": pl.UInt16})
    got = outside(traffic, rules, KIND_CALLBACK)["server_port"].to_list()
    assert got == [p for p in ports if not (30000 <= p < 60000 and (p - 30000) % 3 != 2)]


def test_thousands_of_host_lines_match_names_as_addresses_of_does():
    rng = random.Random(17)
    n = 3000
    names = pl.DataFrame(
        {
            "name": [f"srv{i % 2500}" + rng.choice(["", ".corp.example"]) for i in range(n)],
            "ip": [ip_of(i % 2700) for i in range(n)],
            "source": [rng.choice(["dns", "netbios", "auth_unix"]) for _ in range(n)],
            "first_seen": [T0 + timedelta(seconds=i) for i in range(n)],
            "flow_id": list(range(n)),
        },
        schema_overrides={"first_seen": pl.Datetime("ns", "UTC"), "flow_id": pl.UInt64},
    )
    lines = [
        f"{SERVICES[i % 4]} {6000 + i % 50} SRV{rng.randrange(3000)}" + rng.choice(["", ".corp.example"])
        for i in range(4_000)
    ]
    policy = read_portsconfig("PortsConfig.cfg", text="\n".join(["caservd 6000", *lines]) + "\n")
    rules, matches, unmatched = match_hosts(policy.rules, names)
    # The reference: addresses_of, line by line.
    want_bound, want_unmatched, want_matches = 0, [], 0
    for r in policy.rules:
        if r.host is None:
            continue
        found = addresses_of(r.host, names)
        if found.is_empty():
            want_unmatched.append(r)
        else:
            want_bound += len(set(found["ip"].to_list()))
            want_matches += found.height
    assert unmatched == want_unmatched and unmatched
    assert sum(r.host is not None for r in rules) == want_bound
    assert matches.height <= want_matches and matches.height > 0
    general = [r for r in rules if r.host is None and r.service == "caservd"]
    assert general[0].exclude_ips == tuple(sorted({r.ip for r in rules if r.ip and r.service == "caservd"}))
