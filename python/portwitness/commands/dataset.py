"""`portwitness dataset check` and `dataset repair`: the datasets `flows -o DIR/` writes, verified
and made whole again."""

from __future__ import annotations

import click

from portwitness.commands.errors import EXIT_UNREADABLE


@click.group()
def dataset() -> None:
    """Check and repair datasets written by flows CAPTURES -o DIR/."""


@dataset.command("check")
@click.argument("directory", type=click.Path(file_okay=False))
def dataset_check(directory: str) -> int:
    """Verify the dataset in DIRECTORY: the manifest reads, every committed part exists, reads and
    holds the rows the manifest says, nothing lies there that no committed run holds (what a killed
    writer left), and run numbers and flow ids are unique. Exit 0 when sound, 1 with one line per
    problem."""
    from portwitness.dataset import check

    got = check(directory)
    for p in got.problems:
        click.echo(f"portwitness: {p}", err=True)
    if got.problems:
        return EXIT_UNREADABLE
    click.echo(
        f"portwitness: dataset {directory}: ok, {got.runs} runs, {got.captures} captures, {got.flows} flows",
        err=True,
    )
    return 0


@dataset.command("repair")
@click.argument("directory", type=click.Path(file_okay=False))
def dataset_repair(directory: str) -> int:
    """Make the dataset in DIRECTORY what its manifest commits: remove what no committed run holds
    (parts of a run that was killed, temporary files) and drop the captures whose committed parts
    are missing or damaged. One line per change; then `dataset check` passes."""
    from portwitness.dataset import repair

    said = repair(directory)
    for line in said:
        click.echo(f"portwitness: {line}", err=True)
    if not said:
        click.echo(f"portwitness: dataset {directory}: nothing to repair", err=True)
    return 0
