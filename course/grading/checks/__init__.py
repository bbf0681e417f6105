"""Hidden checks of the ``superres`` assignment (instructor-only: never copied into the release).

The checks of each notebook are a module: :mod:`.models_checks` (01_models), :mod:`.solver_checks`
(02_solver: the oracles of the training epochs), :mod:`.results_checks` (04_test and
05_super_resolution: what the submission's checkpoints compute); what they share (the :func:`check`
registry, :func:`expect`, seeds drawn at check time, :class:`Remote`, :func:`computes_reference`) is
:mod:`.common`. This package holds the registry the check processes look checks up in by name:
:data:`CHECKS`, :data:`SOURCES_ONLY`, :data:`PREPARE`, :func:`load_ahead`.

Each check is decided here, in a trusted process that never imports or executes student code. It talks to the
student-side process (:mod:`..student_side`, sandboxed by the grader) through a :class:`~..student_client.Student`:
"build class X with these arguments", "run forward on these tensors", "describe your layers", "set these
parameters", "run one training epoch of your solver on these kit networks and batches, with recording optimizers
and scalers". Inputs, initial weights and batches are drawn here at check time; the answers (plain tensors and
numbers) are compared with what the assignment asks for and, for training, with oracles computed here on the same
kit networks. What the student side says about its structure only chooses a failing check's message: every model
check ends by recomputing the student's network here, with the reference architecture holding the same weights
(:func:`.common.computes_reference`), and notebooks 04/05 are judged on the table and pictures recomputed here from the
student's checkpoints (:mod:`..recompute`). A check raises :class:`CheckFailed` with one line that says what
is wrong without giving the solution; student-controlled text in it is truncated and escaped
(``student_client.student_text``).

A reason is written as an English template with named fields, ``CheckFailed("... {got}, expected {want}",
got=..., want=...)`` or ``expect(condition, "...", **fields)``, never as an f-string: the template is what the
course's catalogue (``course/locales/zh_CN.py``) translates, and the reason is put into the student's language
only when shown (``student_client.Message``). An English phrase used inside a reason (a ``what`` of a request,
a hint) is a :class:`Message` too. ``tests/course_tests/grading/test_grading_i18n.py`` reads every reason of
these files.
"""
from __future__ import annotations

from ..student_client import decide_checks, run_checks  # noqa: F401 (re-exported for run_check, check_server)
from .common import CHECKS
from . import models_checks, solver_checks, results_checks  # noqa: F401,E402 (registering, in this order)
from .results_checks import PREPARE, load_ahead  # noqa: F401 (re-exported for check_server)

__all__ = ["CHECKS", "SOURCES_ONLY", "OPTIMIZER_CHECKS", "PREPARE", "load_ahead", "decide_checks", "run_checks"]

# Checks that read nothing but the submitted notebooks' sources (the ``%%writefile`` cells that make models.py and
# solver.py), never what running a notebook produced: the grader may decide them while the notebook runs.
SOURCES_ONLY = frozenset({"conv_block", "subpixel_block", "residual_block", "srresnet", "generator",
                          "discriminator", "srresnet_epoch", "srgan_epoch"})
# Checks whose student side runs the student's training steps: the first optimizer a process builds imports
# torch._dynamo (~1 s of CPU), which the check server has the student side pay before the first of them, outside
# their time, and only in a submission that asks for one.
OPTIMIZER_CHECKS = frozenset({"srresnet_epoch", "srgan_epoch"})
