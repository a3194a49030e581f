"""Inputs as they come (a FIFO read once as a stream, symlinks followed, loops found) and failures
of the Python side as one line and the documented exit code, never a traceback or a hang: a
malformed or lost Dask scheduler, errors of every kind the package raises. A `Capture` may be read
from several threads at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS
from portwitness._core import PortwitnessError
from portwitness.cli import main

SAMPLE = PCAPS / "sample.pcap"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _env() -> dict[str, str]:
    env = dict(os.environ)
    return env


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portwitness.cli", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- FIFOs, symlinks, empty paths ----------------------------------------------------------------


def _feed(fifo, data: bytes, reader: subprocess.Popen, timeout: float = 60) -> None:
    """Write the capture into the pipe once the reader has opened it. A plain open for writing would
    wait for ever if the reader died first; opening without blocking fails (ENXIO) until it is there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            if reader.poll() is not None:
                pytest.fail(f"the run ended before it opened the pipe: {reader.communicate()[1]}")
            if time.monotonic() > deadline:
                reader.kill()
                pytest.fail("the run never opened the pipe")
            time.sleep(0.01)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as w:
        w.write(data)


@pytest.mark.parametrize("threads", ["1", "2", "4"])
def test_a_fifo_is_read_once_as_a_stream(tmp_path, threads):
    """A writer that opens the pipe, writes the whole capture at once and closes it (as `tcpdump -w
    FIFO` of a short capture does): the decode must not open the pipe to probe it and open it
    again, which lost the data or waited for ever for a second writer."""
    data = SAMPLE.read_bytes()
    want = pw.decode(SAMPLE).flows.drop("capture")
    for i in range(6):
        fifo = tmp_path / f"live{i}.pcap"
        os.mkfifo(fifo)
        out = tmp_path / f"flows{i}.parquet"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portwitness.cli",
                "flows",
                str(fifo),
                "--threads",
                threads,
                "-o",
                str(out),
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _feed(fifo, data, proc)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"run {i} with {threads} threads hung on the FIFO")
        assert proc.returncode == 0, err
        assert pl.read_parquet(out).drop("capture").equals(want, null_equal=True), f"run {i}"


def test_a_fifo_in_the_api_with_several_files(tmp_path):
    """Beside regular files, with threads to decode files in parallel: still read once."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    data = (PCAPS / "epm_dynamic.pcap").read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as w:
            w.write(data)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    got = {}

    def decode() -> None:
        got["cap"] = pw.decode([SAMPLE, fifo], threads=4)

    d = threading.Thread(target=decode, daemon=True)
    d.start()
    d.join(60)
    assert not d.is_alive(), "the decode hung on the FIFO"
    want = pw.decode([SAMPLE, PCAPS / "epm_dynamic.pcap"]).flows.height
    assert got["cap"].flows.height == want


def test_symlinked_inputs_and_directories_are_followed(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.pcap").write_bytes(SAMPLE.read_bytes())
    top = tmp_path / "top"
    top.mkdir()
    (top / "via").symlink_to(real, target_is_directory=True)
    (top / "b.pcap").symlink_to(PCAPS / "epm_dynamic.pcap")
    cap = pw.decode(top)
    assert sorted(set(cap.flows["capture"].to_list())) == [str(top / "b.pcap"), str(top / "via" / "a.pcap")]
    rc, _, err = run(capsys, "flows", str(tmp_path / "top" / "via" / "a.pcap"), "--format", "csv")
    assert rc == 0, err


def test_symlink_loops_are_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "self").symlink_to(tmp_path / "self")
    rc, _, err = run(capsys, "flows", str(tmp_path / "self"))
    assert rc == 1 and err.splitlines() == [f"portwitness: error: {tmp_path / 'self'}: symbolic link loop"]
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "x.pcap").write_bytes(SAMPLE.read_bytes())
    (d / "sub" / "up").symlink_to(d, target_is_directory=True)
    rc, _, err = run(capsys, "flows", str(d))
    (line,) = err.splitlines()
    assert rc == 1 and line.startswith(f"portwitness: error: {d}: symbolic link loop: ")


def test_an_empty_path_is_an_error_not_the_working_directory(tmp_path, capsys, monkeypatch):
    (tmp_path / "here.pcap").write_bytes(SAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "flows", "")
    assert rc == 1 and not out
    assert err.splitlines() == ['portwitness: error: "": an empty path names no capture']


# --- Dask --------------------------------------------------------------------------------------------


def test_a_malformed_scheduler_address_is_one_line_at_once():
    t0 = time.monotonic()
    done = cli("flows", str(SAMPLE), "--scheduler", "notaurl", timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "portwitness: error: cannot reach the Dask scheduler at notaurl: missing port number in address 'notaurl'"
    ]
    # Before: the line, then a traceback of the half-made client 30 s later, at exit.
    assert time.monotonic() - t0 < 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_dies_mid_run_is_one_line_and_no_output(tmp_path):
    pytest.importorskip("distributed")
    port = _free_port()
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port)]
        + ["--dashboard-address", ":0", "--no-show"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    connected = threading.Event()

    def watch() -> None:
        assert scheduler.stderr is not None
        for line in scheduler.stderr:
            if "Receive client connection" in line:
                connected.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out = tmp_path / "flows.csv"
    # The scheduler has no workers: the run waits on it until it dies.
    run_ = subprocess.Popen(
        [sys.executable, "-m", "portwitness.cli", "flows", str(SAMPLE), "-o", str(out)]
        + ["--scheduler", f"tcp://127.0.0.1:{port}"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert connected.wait(60), "the run never reached the scheduler"
        time.sleep(0.5)
        scheduler.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        _, err = run_.communicate(timeout=60)
        assert time.monotonic() - t0 < 30
    finally:
        run_.kill()
        run_.communicate()
        scheduler.kill()
        scheduler.wait()
        watcher.join(10)
        if scheduler.stderr is not None:
            scheduler.stderr.close()
    assert run_.returncode == 1
    assert err.splitlines() == [
        f"portwitness: error: lost the Dask scheduler at tcp://127.0.0.1:{port} during the run "
        "(CancelledError); nothing was written"
    ]
    assert sorted(os.listdir(tmp_path)) == []


def test_a_fifo_is_refused_on_a_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    rc, _, err = run(capsys, "flows", str(fifo), "--scheduler", "tcp://127.0.0.1:1")
    assert rc == 2 and "not a regular file" in err and len(err.splitlines()) == 1


# --- the package's errors and threads ------------------------------------------------------------


def test_every_error_the_package_raises_is_a_portwitness_error():
    from portwitness.audit import AuditError
    from portwitness.audit.hosts import HostFilterError
    from portwitness.config.model import ConfigError
    from portwitness.config.ports import PortSyntaxError, parse_port_item
    from portwitness.dataset import DatasetError
    from portwitness.inputs import UnreadableInputError
    from portwitness.outputs import OutputIsInputError

    for cls in (
        AuditError,
        HostFilterError,
        ConfigError,
        PortSyntaxError,
        DatasetError,
        UnreadableInputError,
        OutputIsInputError,
    ):
        assert issubclass(cls, PortwitnessError), cls
    with pytest.raises(PortwitnessError):
        parse_port_item("70000")
    # Still a ValueError, for callers that caught it as one.
    with pytest.raises(ValueError):
        parse_port_item("x")


def _read_at_once(cap: pw.Capture, names: list[str]) -> tuple[list[object], list[BaseException]]:
    """Reads the tables `names` of `cap`, one thread each, all released at once."""
    barrier = threading.Barrier(len(names))
    got: list[object] = []
    errors: list[BaseException] = []

    def read(name: str) -> None:
        try:
            barrier.wait()
            got.append(getattr(cap, name))
            cap.arrow("tls")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=read, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got, errors


def test_a_capture_may_be_read_from_several_threads_at_once():
    for _ in range(30):
        cap = pw.decode([SAMPLE, PCAPS / "epm_dynamic.pcap"], threads=1)
        got, errors = _read_at_once(cap, ["flows"] * 6 + ["mappings"] * 2)
        assert errors == []
        # One frame, converted once, whichever thread came first.
        assert sum(g is cap.flows for g in got) == 6
        assert cap.flows.height == 23


def test_an_unwritable_dataset_directory_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc, _, err = run(capsys, "flows", str(SAMPLE), "-o", f"{blocker}/ds/")
    assert rc == 1 and len(err.splitlines()) == 1 and str(blocker) in err, err


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_an_output_the_system_refuses_is_one_line(tmp_path, capsys, monkeypatch, fmt):
    """EACCES (a directory the user may not write; root may, so the refusal is simulated where the
    temporary file is made): one line naming the output, exit 1, nothing left."""
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if os.path.basename(os.fspath(path)).startswith(".portwitness-tmp-"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    out = tmp_path / f"flows.{fmt}"
    rc, _, err = run(capsys, "flows", str(SAMPLE), "-o", str(out))
    assert rc == 1 and err.splitlines() == [f"portwitness: error: {out}: permission denied"]
    assert os.listdir(tmp_path) == []
