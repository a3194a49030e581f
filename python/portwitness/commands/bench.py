"""`portwitness bench`: portwitness timed beside other tools on one capture (`portwitness.bench`)."""

from __future__ import annotations

import click


@click.command()
@click.argument("capture", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--against",
    default="tshark,dpkt",
    show_default=True,
    help="Comma separated peers: tshark (defaults and a minimal profile), dpkt, scapy, nfpcapd, argus.",
)
@click.option(
    "--runs", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per tool (medians)."
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def bench(capture: str, against: str, runs: int, json_out: str | None) -> int:
    """Time portwitness on CAPTURE side by side with other tools, in one run, page cache warm:
    wall time, MB/s, packets/s, peak RSS and portwitness's speed-up over each."""
    from portwitness import bench as harness

    argv = [capture, "--against", against, "--runs", str(runs)]
    if json_out:
        argv += ["--json", json_out]
    try:
        return harness.main(argv, prog="portwitness bench")
    except SystemExit as e:  # argparse's own usage errors
        if e.code not in (0, None):
            raise click.UsageError(f"bad --against value {against!r}") from None
        return 0
