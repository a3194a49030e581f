"""Nothing lost, nothing silently wrong: every output appears whole or not at all, an existing
output survives a killed run, a full disk or a signal unchanged, no command writes over one of its
inputs, and a dataset shows only committed runs whatever happened to the writer.

Crashes are injected with PORTWITNESS_CRASH_AT=<point>[:<n>] (the process SIGKILLs itself at the
n-th time it reaches a named point: after a batch of text, a spill part, a dataset part, before a
rename, before the manifest's commit) or by signalling a run from outside once its temporary file
appears."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS, ROOT, generate_capture, requires
from portwitness.cli import main
from portwitness.dataset import LOCK, MANIFEST, check, read_dataset, writer_lock
from portwitness.outputs import CRASH_ENV, PAUSE_ENV

DEMO = ROOT / "python" / "portwitness" / "demo"
SAMPLE = PCAPS / "sample.pcap"
CONFIG = DEMO / "PortsConfig.cfg"
MGMT = DEMO / "mgmt.properties"
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A capture of 4,316 flows: they spill in many parts; as CSV 0.8 MB, as Parquet 140 kB."""
    out = tmp_path_factory.mktemp("big") / "big.pcap"
    return generate_capture(out, "--size", "10M", "--flows", "30000", "--seed", "5")


def pw_run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """The command line in a process of its own (so that it can be killed)."""
    return subprocess.run(
        [sys.executable, "-m", "portwitness.cli", *args],
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pw_start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "portwitness.cli", *args],
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, PAUSE_ENV)}
    env.update(extra or {})
    return env


def left(directory: Path) -> list[str]:
    """What a run left beside its outputs: temporary files and spill directories."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".portwitness-"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- outputs -------------------------------------------------------------------------------------

FLOWS_POINTS = [
    ("csv", "text-batch:1"),
    ("csv", "spill-part:1"),
    ("csv", "spill-part:3"),
    ("csv", "before-rename"),
    ("ndjson", "text-batch:1"),
    ("json", "text-batch:1"),
    ("json", "before-rename"),
    ("parquet", "spill-part:2"),
    ("parquet", "before-rename"),
]


@pytest.mark.parametrize(("fmt", "point"), FLOWS_POINTS)
def test_a_killed_flows_run_leaves_the_previous_output_whole(tmp_path, big, fmt, point):
    out = tmp_path / f"flows.{fmt}"
    spill = ["--max-flows", "500", "--spill-rows", "500"]
    first = pw_run("flows", str(SAMPLE), "-o", str(out))
    assert first.returncode == 0, first.stderr
    before = out.read_bytes()
    killed = pw_run("flows", str(big), *spill, "-o", str(out), env={CRASH_ENV: point})
    assert killed.returncode == KILLED, killed.stderr
    assert out.read_bytes() == before
    # What the killed run left carries its pid; the next run here removes it.
    assert left(tmp_path), "the crash point was not reached"
    again = pw_run("flows", str(big), *spill, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert left(tmp_path) == []
    whole = pw.decode(big, max_flows=500).flows
    if fmt == "parquet":
        assert pl.read_parquet(out).equals(whole, null_equal=True)
    elif fmt == "csv":
        # The flows as every CSV output writes them (times RFC 3339 with Z, formula cells neutralised).
        from portwitness.render import write_frame

        write_frame(whole, str(tmp_path / "expected.csv"), "csv")
        assert out.read_bytes() == (tmp_path / "expected.csv").read_bytes()


def test_an_output_killed_from_outside_is_never_cut(tmp_path, big):
    """SIGKILL from outside, the moment the run's file appears: the output is the old one."""
    out = tmp_path / "flows.csv"
    out.write_text("previous\n")
    proc = pw_start(
        "flows", str(big), "--max-flows", "500", "--spill-rows", "500", "-o", str(out),
        env={PAUSE_ENV: "text-batch:30"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            grown = out.read_bytes() != b"previous\n"
            if grown or any(n.startswith(".portwitness-tmp-") for n in left(tmp_path)):
                break
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.communicate()
    assert out.read_text() == "previous\n"


@pytest.mark.parametrize(
    ("argv", "name", "nth"),
    [
        (["report", str(SAMPLE), "--format", "json"], "r.json", 1),
        (["report", str(SAMPLE)], "r.md", 1),
        (["report", str(SAMPLE)], "r.html", 1),
        (["report", str(SAMPLE)], "r.csv", 1),
        (["report", str(SAMPLE)], "r.txt", 1),
        (["usage", str(SAMPLE)], "u.csv", 1),
        (["usage", str(SAMPLE)], "u.parquet", 1),
        (["rpcinfo", str(SAMPLE), "--format", "json"], "i.json", 1),
        (["rpcinfo", str(SAMPLE), "--format", "csv"], "i.csv", 1),
        (["config", "check", str(CONFIG), "--format", "json"], "c.json", 1),
        (["config", "check", str(CONFIG), "--format", "csv"], "c.csv", 1),
        (["demo", "--format", "markdown"], "d.md", 1),
        # The flows first, then the anomalies: killed before the second rename.
        (["flows", str(SAMPLE), "-o", "{dir}/f.csv", "--anomalies"], "a.csv", 2),
        (["flows", str(SAMPLE), "-o", "{dir}/f.parquet", "--anomalies"], "a.json", 2),
    ],
)
def test_every_writer_replaces_its_output_only_when_complete(tmp_path, argv, name, nth):
    out = tmp_path / name
    out.write_bytes(b"the previous output\n")
    argv = [a.replace("{dir}", str(tmp_path)) for a in argv]
    args = [*argv, str(out)] if argv[-1] == "--anomalies" else [*argv, "-o", str(out)]
    killed = pw_run(*args, env={CRASH_ENV: f"before-rename:{nth}"})
    assert killed.returncode == KILLED, killed.stderr
    assert out.read_bytes() == b"the previous output\n"
    assert killed_pid(tmp_path) != "none"
    done = pw_run(*args)
    assert done.returncode in (0, 3), done.stderr
    assert out.read_bytes() != b"the previous output\n" and out.stat().st_size > 0
    assert left(tmp_path) == []


def killed_pid(directory: Path) -> str:
    """The pid in the name of what a killed run left (they all carry it)."""
    names = [n for n in left(directory) if n.startswith(".portwitness-tmp-")]
    return names[0].split("-")[2] if names else "none"


def test_leftovers_of_a_live_process_are_not_touched(tmp_path):
    mine = tmp_path / f".portwitness-tmp-{os.getpid()}-abcd-out.csv"
    mine.write_text("still being written")
    dead = tmp_path / ".portwitness-tmp-999999999-abcd-out.csv"
    dead.write_text("left by a killed run")
    rc = main(["flows", str(SAMPLE), "-o", str(tmp_path / "out.csv")])
    assert rc == 0
    assert mine.exists() and not dead.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_remove_the_temporary_file(tmp_path, big, sig):
    out = tmp_path / "flows.csv"
    out.write_text("previous\n")
    proc = pw_start(
        "flows", str(big), "--max-flows", "500", "--spill-rows", "500", "-o", str(out),
        env={PAUSE_ENV: "text-batch:30"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            n.startswith(".portwitness-tmp-") for n in left(tmp_path)
        ):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        time.sleep(0.2)  # into the pause, writing
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert out.read_text() == "previous\n"
    assert left(tmp_path) == []
    assert "Traceback" not in err


# --- inputs are never written over ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["rpcinfo", "{cap}", "--format", "json", "-o", "{cap}"],
        ["rpcinfo", "{cap}", "--format", "csv", "-o", "{link}"],
        ["flows", "{cap}", "--format", "csv", "-o", "{cap}"],
        ["flows", "{cap}", "-o", "{dir}/out.csv", "--anomalies", "{hard}"],
        ["flows", "{dir}", "--format", "csv", "-o", "{cap}"],
        ["usage", "{cap}", "--format", "csv", "-o", "{link}"],
        ["report", "{cap}", "--config", "{cfg}", "--format", "json", "-o", "{cfg}"],
        ["config", "check", "{cfg}", "--format", "csv", "-o", "{cfglink}"],
    ],
)
def test_no_command_writes_over_its_input(tmp_path, capsys, argv):
    cap = tmp_path / "in.pcap"
    shutil.copy(SAMPLE, cap)
    cfg = tmp_path / "PortsConfig.cfg"
    shutil.copy(CONFIG, cfg)
    (tmp_path / "link.pcap").symlink_to(cap)
    (tmp_path / "cfglink.cfg").symlink_to(cfg)
    # A hard link to the capture, named as the output it would be taken for.
    os.link(cap, tmp_path / "hard.csv")
    names = {
        "{cap}": cap,
        "{link}": tmp_path / "link.pcap",
        "{hard}": tmp_path / "hard.csv",
        "{cfg}": cfg,
        "{cfglink}": tmp_path / "cfglink.cfg",
        "{dir}": tmp_path,
    }
    args = []
    for a in argv:
        for k, v in names.items():
            a = a.replace(k, str(v))
        args.append(a)
    rc, out, err = run(capsys, *args)
    assert rc == 2, err
    (line,) = err.splitlines()
    target = args[args.index("-o") + 1] if "--anomalies" not in args else args[-1]
    assert line.startswith(f"portwitness: error: {target}: is an input of this run")
    assert cap.read_bytes() == SAMPLE.read_bytes() and cfg.read_bytes() == CONFIG.read_bytes()


# --- datasets ------------------------------------------------------------------------------------


def dataset_files(ds: Path) -> list[str]:
    return sorted(str(p.relative_to(ds)) for p in ds.rglob("*") if p.is_file() and p.name != LOCK)


def new_parts(ds: Path, before: list[str]) -> list[str]:
    """Parts of the tables (run-N*.parquet under a table's directory) not in `before`."""
    return [f for f in dataset_files(ds) if f not in before and Path(f).name.startswith("run-")]


@pytest.mark.parametrize(
    "point",
    ["dataset-part:1", "dataset-part:4", "dataset-before-commit", "before-rename:3", "dataset-after-commit"],
)
def test_a_killed_dataset_run_is_never_read_and_the_next_run_cleans_it(tmp_path, point):
    ds = tmp_path / "ds"
    first = pw_run("flows", str(SAMPLE), "-o", f"{ds}/")
    assert first.returncode == 0, first.stderr
    before = read_dataset(ds)
    killed = pw_run("flows", str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/", env={CRASH_ENV: point})
    assert killed.returncode == KILLED, killed.stderr
    after = read_dataset(ds)
    committed = point == "dataset-after-commit"
    if not committed:
        for name in ("flows", "rpc_calls", "captures"):
            assert getattr(after, name).equals(getattr(before, name), null_equal=True), name
        assert after.stats == before.stats
        assert check(ds).problems, "the killed run left nothing behind"
    # The next writer removes what the killed one left, and numbers on from what was committed.
    nxt = pw_run("flows", str(PCAPS / "tcp_basic.pcap"), "-o", f"{ds}/")
    assert nxt.returncode == 0, nxt.stderr
    sound = pw_run("dataset", "check", str(ds))
    assert sound.returncode == 0, sound.stderr
    final = read_dataset(ds)
    assert final.flows["flow_id"].n_unique() == final.flows.height
    expect = before.flows.height + pw.decode(PCAPS / "tcp_basic.pcap").flows.height
    if committed:
        expect += pw.decode(PCAPS / "epm_dynamic.pcap").flows.height
    assert final.flows.height == expect
    manifest = json.loads((ds / MANIFEST).read_text())
    runs = [r["run"] for r in manifest["runs"]]
    assert len(runs) == len(set(runs)) == (3 if committed else 2)
    assert not any(n.startswith(".portwitness-") for n in os.listdir(ds))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_dataset_run_stopped_by_a_signal_takes_its_parts_with_it(tmp_path, sig):
    ds = tmp_path / "ds"
    assert pw_run("flows", str(SAMPLE), "-o", f"{ds}/").returncode == 0
    files = dataset_files(ds)
    proc = pw_start(
        "flows", str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/", env={PAUSE_ENV: "dataset-part:30"}
    )
    try:
        # The signal lands while the run has written a part and waits (PAUSE_ENV): the moment
        # a new part of a table is there. Any new file would not do: the run's flow spill sits
        # in the dataset's directory during the decode.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not new_parts(ds, files):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    assert "Traceback" not in err
    # Nothing to clean up for the next run: the dataset is as it was.
    assert dataset_files(ds) == files
    assert check(ds).problems == []


def test_orphaned_parts_are_not_read_and_do_not_reuse_ids(tmp_path, capsys):
    """A part a killed writer left (run number the manifest has not committed) is not read;
    the next run neither counts it nor reuses its run number and flow ids for something else."""
    ds = tmp_path / "ds"
    rc, _, _ = run(capsys, "flows", str(SAMPLE), "-o", f"{ds}/")
    manifest = json.loads((ds / MANIFEST).read_text())
    direct = run(capsys, "report", str(SAMPLE), "--format", "json")[1]
    # As a writer killed between parts leaves it: a part of the next run, no manifest entry.
    nxt = manifest["next_run"]
    (part,) = (ds / "flows").rglob("run-0.parquet")
    orphan = ds / "flows" / "capture=epm_dynamic.pcap-0123456789abcdef" / "hour=20260301T02"
    orphan.mkdir(parents=True)
    shutil.copy(part, orphan / f"run-{nxt}.parquet")
    stored = run(capsys, "report", "--from-dataset", str(ds), "--format", "json")[1]
    assert stored == direct
    rc, _, err = run(capsys, "dataset", "check", str(ds))
    assert rc == 1 and err.splitlines() == [
        f"portwitness: {orphan / f'run-{nxt}.parquet'}: not committed (dataset repair removes it)"
    ]
    rc, _, _ = run(capsys, "flows", str(PCAPS / "tcp_basic.pcap"), "-o", f"{ds}/")
    assert rc == 0 and not orphan.exists()
    back = read_dataset(ds)
    assert back.flows["flow_id"].n_unique() == back.flows.height
    assert run(capsys, "dataset", "check", str(ds))[0] == 0


def test_two_writers_at_once_are_serialised(tmp_path):
    ds = tmp_path / "ds"
    a = pw_start("flows", str(SAMPLE), "-o", f"{ds}/", env={PAUSE_ENV: "dataset-part:2"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lock = ds / LOCK
            if lock.exists() and lock.read_text().strip() == str(a.pid):
                break
            time.sleep(0.01)
        b = pw_start("flows", str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/")
        _, err_b = b.communicate(timeout=120)
        _, err_a = a.communicate(timeout=120)
    finally:
        a.kill()
        a.communicate()
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    both = read_dataset(ds)
    want = pw.decode(SAMPLE).flows.height + pw.decode(PCAPS / "epm_dynamic.pcap").flows.height
    assert both.flows.height == want
    assert both.flows["flow_id"].n_unique() == both.flows.height
    assert sorted(set(both.flows["capture"].to_list())) == sorted(
        [str(SAMPLE), str(PCAPS / "epm_dynamic.pcap")]
    )
    assert check(ds).problems == []


def test_a_second_writer_that_will_not_wait_is_refused_naming_the_holder(tmp_path, capsys, monkeypatch):
    ds = tmp_path / "ds"
    assert run(capsys, "flows", str(SAMPLE), "-o", f"{ds}/")[0] == 0
    monkeypatch.setenv("PORTWITNESS_DATASET_LOCK_TIMEOUT", "0")
    with writer_lock(ds):
        rc, _, err = run(capsys, "flows", str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/")
    assert rc == 1
    (line,) = err.splitlines()
    assert line == (
        f"portwitness: error: {ds}: another writer (pid {os.getpid()}) holds the dataset's lock; "
        "try again once it is done"
    )
    assert read_dataset(ds).flows.height == pw.decode(SAMPLE).flows.height


def test_one_capture_through_different_paths_is_stored_once(tmp_path, capsys, monkeypatch):
    ds = tmp_path / "ds"
    (tmp_path / "caps").mkdir()
    cap = tmp_path / "caps" / "x.pcap"
    shutil.copy(SAMPLE, cap)
    (tmp_path / "alias.pcap").symlink_to(cap)
    monkeypatch.chdir(tmp_path)
    for given in ("caps/x.pcap", str(cap), "alias.pcap", "./caps/../caps/x.pcap"):
        assert run(capsys, "flows", given, "-o", f"{ds}/")[0] == 0
    assert read_dataset(ds).flows.height == pw.decode(SAMPLE).flows.height
    # A different file at the same path is another capture, kept beside the first.
    other = PCAPS / "epm_dynamic.pcap"
    shutil.copy(other, cap)
    assert run(capsys, "flows", "caps/x.pcap", "-o", f"{ds}/")[0] == 0
    back = read_dataset(ds)
    assert back.flows.height == pw.decode(SAMPLE).flows.height + pw.decode(other).flows.height
    assert back.flows["flow_id"].n_unique() == back.flows.height
    assert check(ds).problems == []


def test_check_and_repair(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert run(capsys, "flows", str(SAMPLE), "-o", f"{ds}/")[0] == 0
    assert run(capsys, "flows", str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/")[0] == 0
    rc, _, err = run(capsys, "dataset", "check", str(ds))
    assert rc == 0 and err.startswith(f"portwitness: dataset {ds}: ok, 2 runs, 2 captures, ")
    # A committed part lost, another cut short, a file nobody committed.
    parts = sorted((ds / "flows").rglob("run-*.parquet"))
    parts[0].unlink()
    next((ds / "mappings").rglob("run-1.parquet")).write_bytes(b"PAR1 cut short")
    stray = ds / "tls" / "capture=gone-00" / "hour=none"
    stray.mkdir(parents=True)
    (stray / "run-7.parquet").write_bytes(b"half")
    rc, _, err = run(capsys, "dataset", "check", str(ds))
    lines = err.splitlines()
    assert rc == 1 and len(lines) == 3, err
    assert any(f"{parts[0]}: committed part missing" in x for x in lines)
    assert any("committed part unreadable" in x for x in lines)
    assert any("run-7.parquet: not committed (dataset repair removes it)" in x for x in lines)
    rc, _, err = run(capsys, "report", "--from-dataset", str(ds))
    assert rc == 1 and len(err.splitlines()) == 1 and "dataset check" in err
    rc, _, err = run(capsys, "dataset", "repair", str(ds))
    assert rc == 0 and "dropped capture" in err and "removed (not committed)" in err
    assert run(capsys, "dataset", "check", str(ds))[0] == 0
    assert run(capsys, "report", "--from-dataset", str(ds), "--format", "json")[0] == 0
    assert run(capsys, "dataset", "check", str(tmp_path / "nothing"))[0] == 1


def test_a_dataset_written_before_parts_were_listed_still_reads(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert run(capsys, "flows", str(SAMPLE), str(PCAPS / "epm_dynamic.pcap"), "-o", f"{ds}/")[0] == 0
    want = read_dataset(ds)
    # As the previous release wrote it: no parts listed, captures keyed by path alone.
    m = json.loads((ds / MANIFEST).read_text())
    for r in m["runs"]:
        del r["parts"]
    for c in m["captures"].values():
        del c["fingerprint"], c["resolved"]
    (ds / MANIFEST).write_text(json.dumps(m))
    back = read_dataset(ds)
    assert back.flows.equals(want.flows, null_equal=True)
    assert check(ds).problems == []
    # Written again, a capture of such a dataset replaces its old entry.
    assert run(capsys, "flows", str(SAMPLE), "-o", f"{ds}/")[0] == 0
    again = read_dataset(ds)
    assert again.flows.height == want.flows.height
    assert check(ds).problems == []


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a tmpfs of the size asked for: every write past it fails with ENOSPC."""
    mounted = []

    def mount(size: str) -> Path:
        d = tmp_path / f"small{len(mounted)}"
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], check=True)
        mounted.append(d)
        return d

    try:
        yield mount
    finally:
        for d in mounted:
            subprocess.run(["umount", "-l", str(d)], check=False)


@requires("root")
@pytest.mark.parametrize("fmt", ["csv", "parquet", "ndjson"])
def test_a_full_disk_leaves_the_previous_output_and_one_line(small_disk, big, fmt):
    disk = small_disk("128k")
    out = disk / f"flows.{fmt}"
    assert pw_run("flows", str(SAMPLE), "-o", str(out)).returncode == 0
    before = out.read_bytes()
    for spill in ([], ["--max-flows", "500", "--spill-rows", "500"]):
        done = pw_run("flows", str(big), *spill, "-o", str(out))
        assert done.returncode == 1, done.stderr
        (line,) = done.stderr.strip().splitlines()[-1:]
        assert line.startswith("portwitness: error: ") and line.endswith("No space left on device"), (
            done.stderr
        )
        assert "Traceback" not in done.stderr
        assert out.read_bytes() == before
        assert left(disk) == []


@requires("root")
def test_a_full_disk_during_a_dataset_run_leaves_the_dataset_as_it_was(small_disk, big):
    # The dataset of the sample takes 164 kB of it (15 files).
    ds = small_disk("256k") / "ds"
    assert pw_run("flows", str(SAMPLE), "-o", f"{ds}/").returncode == 0
    before, files = read_dataset(ds), dataset_files(ds)
    done = pw_run("flows", str(big), "-o", f"{ds}/")
    assert done.returncode == 1 and "No space left on device" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 + done.stderr.count("warning:")
    assert dataset_files(ds) == files
    assert read_dataset(ds).flows.equals(before.flows, null_equal=True)
    assert pw_run("dataset", "check", str(ds)).returncode == 0


def test_a_damaged_manifest_is_one_line_for_every_command(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert run(capsys, "flows", str(SAMPLE), "-o", f"{ds}/")[0] == 0
    (ds / MANIFEST).write_text('{"format": "portwitness.dataset/1", "runs": 3}')
    for argv in (
        ["dataset", "check", str(ds)],
        ["dataset", "repair", str(ds)],
        ["report", "--from-dataset", str(ds)],
        ["flows", str(SAMPLE), "-o", f"{ds}/"],
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 1, argv
        assert err.splitlines() == [
            f"portwitness: error: {ds / MANIFEST}: damaged dataset manifest ('runs' missing or not a list)"
        ], argv
