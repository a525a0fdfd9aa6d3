"""Markers for the slow tests, so the fast unit tests can run alone.

``pytest -m "not slow"`` runs the unit tests in under a minute; ``pytest --nbval`` runs
everything: the unit tests, the end-to-end runs of the command line and benchmarks (marked
``slow`` where they are defined), the book build and browser checks (marked ``book``), and
every notebook (each cell an item, marked ``notebook``).
"""
from pathlib import Path

import pytest

BOOK_TESTS = Path(__file__).parent / "tests" / "test_book.py"


def pytest_collection_modifyitems(items):
    for item in items:
        path = Path(str(item.path))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)
        elif path == BOOK_TESTS:
            item.add_marker(pytest.mark.book)
            item.add_marker(pytest.mark.slow)
