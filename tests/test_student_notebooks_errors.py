"""The students' copies under misuse: a second run never replaces a copy a student has worked in without
--overwrite, and every mistake is one line with exit code 2 and nothing written."""
import os
import sys
from pathlib import Path

import pytest
from script_loader import load_script
from test_cli_errors import snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def students():
    return load_script("scripts/student_notebooks.py")


def written(students, out, *extra) -> int:
    return students.main(["--out", str(out), *extra])


def test_a_second_run_keeps_the_students_work(students, tmp_path, capsys):
    assert written(students, tmp_path / "class") == 0
    edited = next((tmp_path / "class").rglob("*.ipynb"))
    edited.write_text(edited.read_text().replace('"cells": [', '"cells": [ ', 1))  # a student's change
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert written(students, tmp_path / "class") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"student_notebooks.py: --out {tmp_path / 'class'} already holds ")
    assert "a student may have worked in them: give --overwrite to replace them, or choose another --out" in err
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_the_copies(students, tmp_path):
    assert written(students, tmp_path) == 0
    edited = next(tmp_path.rglob("*.ipynb"))
    original = edited.read_bytes()
    edited.write_bytes(b"{}")
    assert written(students, tmp_path, "--overwrite") == 0
    assert edited.read_bytes() == original


def test_out_that_is_a_file_is_one_line(students, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert written(students, notes) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "a file stands where a folder is needed; choose another --out" in err
    assert snapshot(tmp_path) == {"notes.txt": b"mine"}


def test_out_inside_the_book_is_one_line(students, capsys):
    assert written(students, ROOT / "book" / "students") == 2
    err = capsys.readouterr().err
    assert "lies inside the book's folder; choose a folder outside book/" in err and "Traceback" not in err
    assert not (ROOT / "book" / "students").exists()


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root may write in read-only folders")
def test_a_read_only_out_is_one_line(students, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert written(students, locked / "class") == 1
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "could not write to" in err and "choose another --out" in err
