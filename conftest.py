"""Markers for the slow tests, so the fast unit tests can run alone.

``pytest -m "not slow"`` runs the unit tests in under a minute; ``pytest --nbval`` runs
everything: the unit tests, the end-to-end runs of the command line and benchmarks (marked
``slow`` where they are defined), the book build and browser checks (marked ``book``), and
every notebook (each cell an item, marked ``notebook``).

The tests run in parallel, one worker per CPU core (pytest-xdist, ``-n auto`` in pyproject.toml). A
notebook's cells, and a test file's tests, go to one worker and run there in order (the cells share
a kernel, the tests their module's fixtures); the budget smoke test's notebook executions go one by
one, so that they spread over the workers (the scheduler below). Each
worker, and the notebook kernels it starts, gets an equal share of the cores as its torch threads:
two trainings that each take every core run 5 to 20 times slower than two that share them.
``pytest -n 0`` runs everything in one process; ``OMP_NUM_THREADS`` set beforehand is respected.
"""
import os
from pathlib import Path

import pytest

BOOK_TESTS = Path(__file__).parent / "tests" / "test_book.py"


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        share = max(1, cores // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(share)  # kernels and subprocesses inherit it
        import torch

        torch.set_num_threads(share)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class FileScopes(LoadScopeScheduling):
        """A file's items go to one worker, in order; each test of the budget smoke test goes alone."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path.endswith("test_budgets.py") else path

    return FileScopes(config, log)


def pytest_collection_modifyitems(items):
    for item in items:
        path = Path(str(item.path))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            item.add_marker(pytest.mark.slow)
        elif path == BOOK_TESTS:
            item.add_marker(pytest.mark.book)
            item.add_marker(pytest.mark.slow)
