"""Shared fixtures. The tests mirror the packages (``sr_utils_tests/``, ``data_tools_tests/``, ``course_tests/`` with
``grading/`` and ``mos/``; not named like the packages, which they would shadow on ``sys.path``); fixtures used in
several folders live beside this file and are imported by name.

Tests that need ``../shared/data`` skip with a reason when it is absent — except under CI (``CI`` set), where a
missing ``../shared`` is a failure so that these tests can never silently skip there.

Two lanes: ``make test`` runs everything; ``make test-fast`` (``-m "not integration"``) leaves out the modules of
:data:`INTEGRATION_MODULES`, which run nbgrader, Jupyter servers, browsers, sandboxes or whole notebooks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: Fixture modules of this folder shared by tests in several folders (``class_batch``: the class graded once).
pytest_plugins = ["class_batch"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SR_SHARED_DATA", REPO.parent / "shared" / "data"))
BENCHMARK = SHARED_DATA / "benchmark"

#: Test modules of the integration lane, and what makes each slow: every other module is a unit test module of
#: the fast lane (``make test-fast``, a few minutes on 2 cores).
INTEGRATION_MODULES = {
    "test_assignment": "nbgrader round trips of the whole assignment",
    "test_checkpoint_notebook": "runs notebooks in a kernel",
    "test_course_browser": "JupyterLab and the formgrader in Chromium",
    "test_demo": "the whole `make demo`",
    "test_docs": "runs every command the docs show",
    "test_exchange": "nbgrader's exchange between Unix accounts",
    "test_gradebook_schema": "nbgrader creating a gradebook, and its `alembic` process",
    "test_gradebook_server": "a PostgreSQL server, two TAs and the MOS step at once, a grading run writing to it",
    "test_grading_sandbox": "grades batches of submissions in bubblewrap",
    "test_hidden_checks": "the hidden checks on mutants and variants",
    "test_hub": "the class server: JupyterHub, its proxy and servers as throw-away Unix accounts",
    "test_kernel_zygote": "kernels forked in bubblewrap sandboxes",
    "test_lab_zh_browser": "JupyterLab in Chinese in Chromium (make lab LANGUAGE=zh-CN, the kit's, a shared server)",
    "test_mos_browser": "the rating app in Chromium",
    "test_recomputation": "the hidden checks on networks that lie, and on tables and pictures of checkpoints",
    "test_release": "nbgrader generate_assignment",
    "test_sandbox_and_intake": "bubblewrap sandboxes, intake and small grading runs",
    "test_sandbox_hardening": "storms CPU in bubblewrap sandboxes and grades two submissions side by side",
    "test_shared_machine": "a throw-away Unix account against a closed course, with grading and the exchange",
    "test_student_trial": "sets up a student kit and runs the five notebooks",
    "test_submitted_outputs": "nbgrader autograde of a small assignment",
    "test_unanswering_kernel": "runs kernels into cell timeouts",
    "test_visible_tests": "runs notebook cells in a kernel",
}


#: Tests that measure CPU shares or wall time against a machine at rest: ``make test`` runs them by themselves
#: (``-m alone``), after the others have run on several processes, so that no other test's load is in their figures.
ALONE = {"test_a_storm_in_one_worker_leaves_its_neighbour_its_share",
         "test_two_workers_a_storm_does_not_change_the_neighbours_grade"}
#: The modules that define them: ``-m alone`` collects only these (importing every module costs ~15 s of CPU).
ALONE_MODULES = {"test_sandbox_hardening"}
#: The test modules that read the class graded once (``class_batch``): on several processes, one runs them all.
CLASS_BATCH_MODULES = {"test_grading_sandbox", "test_assignment"}


def pytest_configure(config):
    """Temporary folders under /var/tmp rather than /tmp: the courses the tests grade live there, and a grading
    sandbox forks a submission's kernels and student side from one zygote only where the graded folders are not
    beneath its own /tmp (``course/sandbox/submission_zygote.py``). Set before xdist starts its workers, which
    inherit it."""
    import tempfile

    if tempfile.gettempdir() == "/tmp" and os.path.isdir("/var/tmp") and os.access("/var/tmp", os.W_OK):
        os.environ["TMPDIR"] = "/var/tmp"
        tempfile.tempdir = None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)
        if item.originalname in ALONE:
            item.add_marker(pytest.mark.alone)


def pytest_ignore_collect(collection_path, config):
    """With ``-m alone`` (the second part of ``make test``), the test modules of :data:`ALONE_MODULES` only."""
    if (config.getoption("markexpr") == "alone" and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_") and collection_path.stem not in ALONE_MODULES):
        return True
    return None


def work_unit_of(nodeid: str) -> str:
    """The work unit of a test on several processes: its module's path, or ``class_batch``."""
    module = nodeid.split("::", 1)[0]
    return "class_batch" if Path(module).stem in CLASS_BATCH_MODULES else module


def work_unit_rank(unit: str) -> int:
    """The order work units are handed out in: the class batch, the integration modules (long, few tests each),
    then the unit test modules, many and short, which fill the processes' last minutes evenly."""
    return 0 if unit == "class_batch" else 1 if Path(unit).stem in INTEGRATION_MODULES else 2


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """How ``pytest -n N`` (pytest-xdist) shares the tests out: one test module at a time (its module fixtures are
    made once), the modules of :data:`CLASS_BATCH_MODULES` together on one process; in the order of
    :func:`work_unit_rank`."""
    from xdist.scheduler import LoadScopeScheduling

    class ClassBatchFirst(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return work_unit_of(nodeid)

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # (the queue is complete when the first unit is handed out)
                self.ordered = True
                for unit in sorted(self.workqueue, key=work_unit_rank):
                    self.workqueue.move_to_end(unit)
            super()._assign_work_unit(node)

    return ClassBatchFirst(config, log)


def require_shared(path: Path) -> Path:
    """Return ``path`` if it exists; skip (or fail under CI) otherwise."""
    if path.exists():
        return path
    msg = (f"{path} is absent: these tests compare against MATLAB-made images from ../shared/data "
           "(a user's clone has no ../shared; set SR_SHARED_DATA to point elsewhere)")
    if os.environ.get("CI"):
        pytest.fail("CI is set but " + msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def benchmark_dir() -> Path:
    return require_shared(BENCHMARK / "README.md").parent


def benchmark_images(set_name: str, lr_folder: str = "LR_bicubic") -> list[tuple[str, Path, Path]]:
    """(name, HR path, LR path) of one set, listed at collection time (empty when ../shared is absent)."""
    hr_dir = BENCHMARK / set_name / "HR"
    if not hr_dir.is_dir():
        return []
    return [(p.stem, p, BENCHMARK / set_name / lr_folder / "X4" / f"{p.stem}x4.png") for p in sorted(hr_dir.glob("*.png"))]


def read_png(path: Path) -> np.ndarray:
    """Raw pixels of a PNG as stored (no mode conversion: 'L' stays 2-D)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im).copy()
