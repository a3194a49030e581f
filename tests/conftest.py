from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
# Public test-suite captures that must not be copied into the repository: beside the checkout, or
# wherever PORTWITNESS_CAPTURES points.
SHARED_CAPTURES = Path(os.environ.get("PORTWITNESS_CAPTURES") or ROOT.parent / "shared" / "captures")

# --- What some tests need beyond what pip installs -------------------------------------------------
#
# A test says what it needs with `@requires("tshark")` (or `pytestmark = requires(...)`); the markers
# `tshark` and `interop` imply their needs. When something is missing the test is skipped with one
# line naming it and the Debian package that brings it, and the run ends with a count and how to run
# them. PORTWITNESS_REQUIRE_ALL=1 (set by .ci/run) turns every such skip into a failure, so CI proves
# them all.

REQUIRE_ALL = "PORTWITNESS_REQUIRE_ALL"
SAMBA_DCERPCD = "/usr/libexec/samba/samba-dcerpcd"


@dataclass(frozen=True)
class Need:
    name: str
    package: str | None  # the Debian package; None for what no package brings
    why: str  # the skip reason's tail when there is no package

    def present(self) -> bool:
        if self.name == "root":
            return os.geteuid() == 0
        if self.name == "real captures":
            return SHARED_CAPTURES.is_dir()
        if self.name == "chromium":
            return bool(shutil.which("chromium") or shutil.which("chromium-browser"))
        if self.name == "samba-dcerpcd":
            return os.access(SAMBA_DCERPCD, os.X_OK)
        return shutil.which(self.name) is not None


def reason(missing: list[Need]) -> str:
    """One line: what is missing, then how to get it (packages together, in the order met)."""
    packages = list(dict.fromkeys(n.package for n in missing if n.package))
    how = ([f"apt-get install {' '.join(packages)}"] if packages else []) + [
        n.why for n in missing if not n.package
    ]
    return f"needs {', '.join(n.name for n in missing)} ({'; '.join(how)})"


def _tool(name: str, package: str) -> Need:
    return Need(name, package, "")


NEEDS = {
    n.name: n
    for n in (
        _tool("tshark", "tshark"),
        _tool("tcpdump", "tcpdump"),
        _tool("rpcbind", "rpcbind"),
        _tool("rpcinfo", "rpcbind"),
        _tool("samba-dcerpcd", "samba"),
        _tool("rpcclient", "smbclient"),
        _tool("openssl", "openssl"),
        _tool("chromium", "chromium"),
        _tool("nft", "nftables"),
        _tool("iptables", "iptables"),
        _tool("groff", "groff-base"),
        _tool("unshare", "util-linux"),
        _tool("nsenter", "util-linux"),
        _tool("script", "bsdutils"),
        _tool("timeout", "coreutils"),
        _tool("ip", "iproute2"),
        _tool("ss", "iproute2"),
        Need("root", None, "run as root: network namespaces, a capture on lo, ports 111 and 135"),
        Need(
            "real captures",
            None,
            "public test-suite captures kept out of the repository: put them in ../shared/captures "
            "beside the checkout, or point PORTWITNESS_CAPTURES at them",
        ),
    )
}

# The real peers of the interop tests (tests/test_interop.py) and what runs them.
INTEROP = (
    "root",
    "unshare",
    "nsenter",
    "timeout",
    "ip",
    "ss",
    "tcpdump",
    "rpcbind",
    "rpcinfo",
    "samba-dcerpcd",
    "rpcclient",
    "openssl",
)
IMPLIED = {"tshark": ("tshark",), "interop": INTEROP}


def requires(*names: str) -> pytest.MarkDecorator:
    """Mark a test (or, as `pytestmark`, a module) as needing these tools, root or the real captures."""
    unknown = [n for n in names if n not in NEEDS]
    if unknown:
        raise ValueError(f"unknown needs {unknown}: add them to conftest.NEEDS")
    return pytest.mark.requires(*names)


def need(*names: str) -> None:
    """Inside a test or fixture: skip (or, under PORTWITNESS_REQUIRE_ALL=1, fail) unless present."""
    missing = [NEEDS[n] for n in names if not NEEDS[n].present()]
    if missing:
        # "tests/test_x.py::test_y (call)": pytest's own name for the test running now.
        _missing(os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0], missing)


# The tests skipped (or failed) for what was missing, by node id, for the summary at the end.
_LACKED: dict[str, list[Need]] = {}


def _missing(nodeid: str, missing: list[Need]) -> None:
    _LACKED[nodeid] = missing
    why = reason(missing)
    if os.environ.get(REQUIRE_ALL) == "1":
        pytest.fail(f"{why} [{REQUIRE_ALL}=1]", pytrace=False)
    pytest.skip(why)


def _needs_of(item: pytest.Item) -> list[str]:
    names: list[str] = []
    for mark in item.iter_markers():
        if mark.name == "requires":
            names += mark.args
        names += IMPLIED.get(mark.name, ())
    # Parametrized over a real capture, or given the folder of them.
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec else ()
    if "shared_captures" in getattr(item, "fixturenames", ()) or any(
        isinstance(p, Path) and p.is_relative_to(SHARED_CAPTURES) for p in params
    ):
        names.append("real captures")
    return list(dict.fromkeys(names))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*needs): tools, root or the real captures the test needs (conftest.NEEDS)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = [NEEDS[n] for n in _needs_of(item) if not NEEDS[n].present()]
    if missing:
        _missing(item.nodeid, missing)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lacked = _LACKED
    if not lacked:
        return
    # Counted by what brings it: the interop tests' eleven tools are a few packages and root.
    by_need = Counter(
        what for needs in lacked.values() for what in dict.fromkeys(n.package or n.name for n in needs)
    )
    packages = sorted({n.package for needs in lacked.values() for n in needs if n.package})
    require_all = os.environ.get(REQUIRE_ALL) == "1"
    tr = terminalreporter
    tr.write_sep("-", "what this machine lacks")
    counts = ", ".join(f"{name} {count}" for name, count in sorted(by_need.items()))
    verb = "failed" if require_all else "skipped"
    tr.write_line(f"{len(lacked)} tests {verb} for what this machine lacks ({counts}).")
    how = []
    if packages:
        how.append(f"apt-get install {' '.join(packages)}")
    if "root" in by_need:
        how.append("run as root")
    if "real captures" in by_need:
        how.append("put the real captures in ../shared/captures or point PORTWITNESS_CAPTURES at them")
    then = (
        f"or unset {REQUIRE_ALL} to skip them"
        if require_all
        else f"{REQUIRE_ALL}=1 makes these skips failures"
    )
    tr.write_line(f"To run them: {'; '.join(how)} (bash .ci/run does all of it); {then}.")


FLOW_KEYS = [
    "transport",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "packets_c2s",
    "packets_s2c",
    "bytes_c2s",
    "bytes_s2c",
    "payload_c2s",
    "payload_s2c",
    "vlan",
    "encap",
    "tunnel_id",
    "outcome",
    "orientation",
]


def fixtures() -> list[Path]:
    """Every capture in pcaps/ that has expected flows beside it."""
    return sorted(p for p in PCAPS.iterdir() if (PCAPS / f"{p.name}.flows.json").exists())


def expected_flows(capture: Path) -> list[dict]:
    return json.loads((capture.parent / f"{capture.name}.flows.json").read_text())


# What tells one flow of a fixture from another.
FLOW_ID = ["transport", "client_ip", "client_port", "server_ip", "server_port", "vlan", "tunnel_id"]


def canonical(rows: list[dict], keys: list[str] = FLOW_KEYS) -> list[dict]:
    # Expected rows written before a column existed hold its null value.
    rows = [{k: r.get(k) for k in keys} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def planted(capture: Path, table: str) -> list[dict]:
    """The rows the fixture generator wrote in `<capture>.<table>.json`."""
    return json.loads((capture.parent / f"{capture.name}.{table}.json").read_text())


def with_planted(table: str) -> list[Path]:
    """Every capture in pcaps/ that has a `<capture>.<table>.json` beside it."""
    return sorted(p for p in PCAPS.iterdir() if (PCAPS / f"{p.name}.{table}.json").exists())


def ns_rows(frame, columns: list[str]) -> list[dict]:
    """Rows of a decoded table restricted to `columns`, where a `<c>_ns` column is the
    timestamp column `<c>` in integer nanoseconds (the generator's spelling)."""
    exprs = [pl.col(c[:-3]).dt.epoch("ns").alias(c) if c.endswith("_ns") else pl.col(c) for c in columns]
    return frame.select(exprs).to_dicts()


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    need("real captures")
    return SHARED_CAPTURES


def generate_capture(out: Path, *options: str) -> Path:
    """A synthetic capture from benches/generate.py (`options`: its command-line options)."""
    import subprocess
    import sys

    cmd = [sys.executable, str(ROOT / "benches" / "generate.py"), str(out), *options]
    subprocess.run(cmd, check=True, capture_output=True)
    return out
