"""pytest imports test files by basename (tests/ has no packages): two files of one name in
unit/ and integration/ stop the whole run at collection. Caught here, in the unit run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_a_name_of_its_own() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
