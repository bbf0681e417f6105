"""The version a new gradebook is stamped with, read in-process (``course.gradebook_schema``), is the one nbgrader's
own ``alembic`` process gives; and a new course's first nbgrader command stamps its gradebook with it, with no
``alembic`` to run."""
import os
import sqlite3
import subprocess
import sys

from course.gradebook_schema import alembic_head
from course.grading.contract import GRADEBOOK, GRADEBOOK_URL_ENV
from course.paths import tool, tool_env


def test_the_revision_read_in_process_is_the_one_nbgraders_alembic_process_gives():
    out = subprocess.run([sys.executable, "-c", "from nbgrader.api import get_alembic_version as v; print(v())"],
                         env=tool_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == alembic_head() != ""


def test_a_new_courses_first_nbgrader_command_stamps_its_gradebook_without_an_alembic_process(tmp_path):
    from course.demo import copy_course

    root = copy_course(tmp_path / "course")
    env = {k: v for k, v in tool_env().items() if k != GRADEBOOK_URL_ENV}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not os.path.exists(f"{p}/alembic"))
    out = subprocess.run([tool("nbgrader"), "db", "student", "list"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]  # (nbgrader's own way: "No such file or directory: 'alembic'")
    with sqlite3.connect(root / GRADEBOOK) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(alembic_head(),)]
