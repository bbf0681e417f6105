"""The version of nbgrader's gradebook schema, read in the process that creates a gradebook.

nbgrader stamps a new gradebook with the newest revision of its own migration scripts, which it learns by running
``alembic heads`` as a new Python (``nbgrader.api.get_alembic_version``): ~2.5 s of CPU, paid by the first
nbgrader command in every new course folder (a demo's or a test's course copy, a new course). :func:`alembic_head`
reads the same revision from the same scripts in this process (a few hundredths of a second where nbgrader is
imported), and :func:`stamp_in_process` has nbgrader use it: ``nbgrader_config.py`` calls it for nbgrader's
commands, :mod:`course.roster` for its own gradebook. Upgrading an older gradebook is left to nbgrader (``alembic
upgrade``, by name: ``course.paths.tools_on_path``). ``tests/course_tests/test_gradebook_schema.py`` holds the
revision to nbgrader's own answer.
"""
from __future__ import annotations


def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook migrations (what nbgrader reads from ``alembic heads``)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


def stamp_in_process() -> None:
    """Have this process's nbgrader stamp the gradebooks it creates with :func:`alembic_head`."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head
