"""The seams between the core and the package, and between the package's layers: one exception
hierarchy, a typed decode result, the decode's defaults and table names defined once in the core,
and no import cycle."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import portwitness
from conftest import PCAPS
from portwitness import _core, errors
from portwitness.capture import Capture, Options
from portwitness.errors import ArgumentError, PortwitnessError, UsageError

ROOT = Path(__file__).resolve().parent.parent


def _package_modules() -> list[str]:
    found = [portwitness.__name__]
    for info in pkgutil.walk_packages(portwitness.__path__, prefix="portwitness."):
        found.append(info.name)
    return found


def _exceptions() -> dict[str, type[BaseException]]:
    """Every exception class a module of the package defines (or the core makes), by its place."""
    seen: dict[str, type[BaseException]] = {}
    for name in _package_modules():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # A script of an optional extra (bench's dpkt peer): it defines no exception.
            assert e.name and not e.name.startswith("portwitness"), e
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("portwitness")
            ):
                seen[f"{value.__module__}.{value.__qualname__}"] = value
    return seen


def test_every_exception_derives_from_the_base():
    found = _exceptions()
    # The ones the brief names and the CLI maps, so that a walk finding nothing cannot pass.
    for name in (
        "portwitness._core.CaptureFormatError",
        "portwitness._core.InternalError",
        "portwitness.dataset.manifest.DatasetError",
        "portwitness.inputs.UnreadableInputError",
        "portwitness.config.model.ConfigError",
        "portwitness.filters.FilterError",
        "portwitness.audit.AuditError",
        "portwitness.audit.hosts.HostFilterError",
        "portwitness.outputs.OutputIsInputError",
        "portwitness.firewall.ruleset.RulesetError",
        "portwitness.formats.FormatError",
        "portwitness.commands.errors.Interrupted",
    ):
        assert name in found, name
    # SIGTERM stays a KeyboardInterrupt: no `except Exception` may swallow it on its way out.
    signals = {n for n, cls in found.items() if not issubclass(cls, Exception)}
    assert signals == {"portwitness.outputs.Terminated"}
    strays = sorted(
        n for n, cls in found.items() if n not in signals and not issubclass(cls, PortwitnessError)
    )
    # A private exception a module raises and catches itself never reaches a caller.
    assert [n for n in strays if not n.rsplit(".", 1)[1].startswith("_")] == []


def test_the_two_branches_tell_the_exit_code():
    usage = [
        "portwitness.config.model.ConfigError",
        "portwitness.filters.FilterError",
        "portwitness.audit.hosts.HostFilterError",
        "portwitness.outputs.OutputIsInputError",
        "portwitness.formats.FormatError",
    ]
    found = _exceptions()
    for name in usage:
        assert issubclass(found[name], UsageError), name
    for name in ("portwitness.inputs.UnreadableInputError", "portwitness.dataset.manifest.DatasetError"):
        assert not issubclass(found[name], UsageError), name
    # An argument's value: also what a caller of the library catches as ValueError.
    assert issubclass(ArgumentError, UsageError) and issubclass(ArgumentError, ValueError)
    assert errors.PortwitnessError is _core.PortwitnessError is portwitness.PortwitnessError


def test_unknown_table_is_an_argument_error():
    with pytest.raises(ArgumentError, match="no table named 'flow': the tables are flows, anomalies"):
        _core.decode([str(PCAPS / "sample.pcap")], tables=["flow"])


def test_decode_returns_a_typed_result():
    out = _core.decode([str(PCAPS / "sample.pcap")], threads=1)
    assert isinstance(out, _core.DecodeResult)
    assert tuple(out.tables) == _core.TABLES
    flows = pl.DataFrame(out.flows)
    for name in _core.TABLES:
        assert getattr(out, name) is not None, name
    assert flows.height == out.stats["flows"] > 0
    assert out.stats["records"] == pl.DataFrame(out.captures)["packets"].sum()
    assert out.inputs == [
        {"path": str(PCAPS / "sample.pcap"), "packets": out.stats["records"], "error": None}
    ]
    assert set(out.border) == {"live_flows", "end_gaps", "end_anomalies", "withdrawn_mappings"}
    assert all(isinstance(v, int) for v in (*out.stats.values(), *out.anomaly_counts.values()))
    only = _core.decode([str(PCAPS / "sample.pcap")], threads=1, tables=["flows"])
    assert list(only.tables) == ["flows"] and only.rpc_calls is None
    assert pl.DataFrame(only.flows).equals(flows)


def test_decode_defaults_are_the_cores():
    d = _core.DECODE_DEFAULTS
    assert isinstance(d, _core.DecodeDefaults)
    # The library's `Options::default()` (src/flow/table.rs, src/packet/frag.rs, src/decode).
    assert (d.max_flows, d.idle_timeout, d.max_fragment_datagrams, d.max_fragment_bytes) == (
        1_000_000,
        600.0,
        4096,
        64 << 20,
    )
    assert (d.fragment_timeout, d.threads, d.chunk_bytes, d.spill_rows) == (30.0, 0, 0, 262_144)
    opts = Options()
    for f in dataclasses.fields(Options):
        assert getattr(opts, f.name) == getattr(d, f.name), f.name
    params = inspect.signature(portwitness.decode).parameters
    for name in ("max_flows", "idle_timeout", "max_fragment_datagrams", "max_fragment_bytes", "threads"):
        assert params[name].default == getattr(d, name), name
    assert params["spill_rows"].default == d.spill_rows

    from portwitness.cli import cli

    flows = {p.name: p.default for p in cli.commands["flows"].params}
    assert (flows["max_flows"], flows["idle_timeout"]) == (d.max_flows, d.idle_timeout)


def test_table_names_are_the_cores():
    import portwitness.dataset as dataset
    from portwitness import capture

    assert _core.TABLES == (
        "flows",
        "anomalies",
        "captures",
        "rpc_calls",
        "mappings",
        "dcerpc_calls",
        "tls",
        "names",
    )
    assert capture.TABLES is dataset.TABLES is _core.TABLES
    # Capture holds each table as a field of its own, typed.
    assert [f.name for f in dataclasses.fields(Capture)][: len(_core.TABLES)] == list(_core.TABLES)


def test_no_import_cycle():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_imports.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no import cycle among" in done.stdout


def test_import_check_sees_function_level_cycles(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import check_imports
    finally:
        sys.path.pop(0)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from pkg import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = check_imports.python_graph(pkg)
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == set()
    assert check_imports.cycles(graph) == [["pkg.a", "pkg.b"]]
