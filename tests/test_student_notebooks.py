"""The students' copies: every notebook, its exercises kept, no solution, no output, code unchanged."""
import re
from pathlib import Path

import nbformat
import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def students():
    return load_script("scripts/student_notebooks.py")


@pytest.fixture(scope="module")
def copies(students, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = students.write_students(out)
    return out, written, students.notebooks()


def test_every_notebook_of_the_book_has_a_student_copy(copies):
    out, written, originals = copies
    assert len(written) == len(originals) >= 12
    assert [w.relative_to(out) for w in written] == [o.relative_to(ROOT / "book") for o in originals]
    for path in written:  # the badge would open the book's notebook, solutions included
        assert "colab.research.google.com" not in path.read_text()


def test_no_solution_survives_and_every_exercise_does(copies):
    out, written, originals = copies
    solutions = 0
    for copy_path, original_path in zip(written, originals):
        copy, original = nbformat.read(copy_path, 4), nbformat.read(original_path, 4)
        text = "\n".join(c.source for c in copy.cells)
        original_text = "\n".join(c.source for c in original.cells if c.cell_type == "markdown")
        assert "{solution}" not in text and ":class: dropdown" not in text, copy_path
        # Each solution's own words are gone too, not only its fence: its longest line is absent.
        for block in re.findall(r"```\{solution\}.*?\n(.*?)\n```", original_text, flags=re.S):
            longest = max(block.splitlines(), key=len).strip()
            assert longest not in text, (copy_path, longest)
            solutions += 1
        exercises = re.findall(r"\{exercise\}\n:label: (\S+)", text)
        assert exercises == re.findall(r"\{exercise\}\n:label: (\S+)", original_text), copy_path
    assert solutions >= 20


def test_outputs_are_cleared_and_code_is_unchanged(copies):
    out, written, originals = copies
    for copy_path, original_path in zip(written, originals):
        copy, original = nbformat.read(copy_path, 4), nbformat.read(original_path, 4)
        assert all(c.outputs == [] and c.execution_count is None for c in copy.cells if c.cell_type == "code")
        assert [c.source for c in copy.cells if c.cell_type == "code"] == \
            [c.source for c in original.cells if c.cell_type == "code"], copy_path


def test_an_unclosed_solution_is_an_error(students):
    with pytest.raises(ValueError, match="not closed"):
        students.strip_solutions("text\n```{solution} x\nanswer\n")


def test_the_output_folder_cannot_be_the_book(students):
    with pytest.raises(students.Refused, match="inside the book's folder"):
        students.write_students(ROOT / "book" / "students")
    assert not (ROOT / "book" / "students").exists()


@pytest.mark.slow
def test_a_student_copy_runs_top_to_bottom_from_its_own_folder(copies):
    """The code cells equal the book's (checked above), and nbval runs those; this runs one copy where it
    was written, so that nothing depends on the book's folder."""
    from nbclient import NotebookClient

    out, written, _ = copies
    path = out / "foundations" / "problem.ipynb"
    notebook = nbformat.read(path, 4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   ).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
