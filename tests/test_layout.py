"""A codebase a newcomer can carry on: no Python file outside the tests grows past 600 lines (split
it by job instead), and the modules split that way still offer the names their users import."""

from __future__ import annotations

from pathlib import Path

import portwitness.dataset

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
# Everything but tests/: the package, the benches, the scripts, the fuzzers' helpers, the fixtures'
# generators.
WHERE = ("python", "benches", "scripts", "fuzz", "pcaps")


def test_no_python_file_outside_the_tests_is_over_600_lines():
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for top in WHERE
        for path in sorted((ROOT / top).rglob("*.py"))
    }
    assert len(sizes) > 50, sorted(sizes)
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_the_dataset_package_offers_the_names_of_the_module_it_was():
    # The public names of `portwitness.dataset` when it was one module.
    public = {
        "ADDED_LATER",
        "BY_FLOW",
        "FINGERPRINT_BLOCK",
        "FORMAT",
        "LOCK",
        "LOCK_TIMEOUT",
        "LOCK_TIMEOUT_ENV",
        "MANIFEST",
        "ROW_GROUP",
        "TABLES",
        "TIME_COLUMN",
        "UNKNOWN",
        "Checked",
        "DatasetError",
        "capture_key",
        "check",
        "committed_parts",
        "fingerprint",
        "orphans",
        "read_dataset",
        "repair",
        "write_dataset",
        "writer_lock",
    }
    assert set(portwitness.dataset.__all__) == public
    assert [n for n in sorted(public) if not hasattr(portwitness.dataset, n)] == []
