"""What the processes of a grading run agree on, declared once: environment variables, folders, file names,
commands and frame formats, each with a line of help.

The processes: the grading command (``python -m course.grade``); nbgrader, configured by ``nbgrader_config.py``
(which reads this module) and running the plugins of :mod:`course.grading`; the trusted check processes
(``check_server``, ``run_check``, ``trusted_forkserver``); the sandbox's kernel launcher (:mod:`course.sandbox`); the notebook's
kernel (the student's code and ``sr_utils``); the hidden checks' student side (``student_side.py``, sandboxed).
Every process that can import ``course`` imports its names from here, never a string literal of its own.

Two of them cannot import ``course``, and so this module *names* some values that are defined elsewhere:

* the kernel runs ``sr_utils``, which students have without ``course`` (the student kit) and which imports
  nothing above it. What a kernel reads -- its language, how hidden checks are decided, where notebooks write while
  graded, the data folder -- is defined in ``sr_utils`` (the kit's public side) and imported here. ``sr_utils`` is
  *given* the grader's values: the command that decides a hidden check arrives in ``$SR_KIT_CHECK_COMMAND``
  (:func:`check_command`, set by ``nbgrader_config.py``); it never looks for ``course/`` itself;
* the student side is sent as source to a sandbox that sees ``sr_utils`` but not ``course``: the frame format and
  its boot are defined in ``student_wire.py`` (one of the student side's modules) and imported here. ``course/jupyter/handin.py`` (shipped to students with their
  nbgrader configuration) likewise defines where the exchange is.

Not the grader's, for completeness: ``$SR_KIT_PROFILE`` (``sr_utils.config``: the training profile a user may
force; the grader never sets it, nbgrader's run is always ``grading``).

Paths below are relative to the *course root*, the folder holding ``nbgrader_config.py`` (the kit's checkout, or a
course copy such as ``course.demo.copy_course`` makes), or to :data:`STATE_DIR` where said.
"""
from __future__ import annotations

import json
import signal
import sys

# Named here, defined where a process that cannot import ``course`` reads them (see above):
# $SR_KIT_EXCHANGE: nbgrader's exchange when it is not EXCHANGE_DIR (course/jupyter/handin.py: students' side too)
from course.jupyter.handin import EXCHANGE_ENV
# $SR_KIT_LANGUAGE: a process's language (a notebook's first cell sets it; the check command answers in it)
from sr_utils.i18n import LANGUAGE_ENV
# $SR_DATA_DIR: the data the notebooks read (the grading command gives the sandbox its own, read-only)
from sr_utils.lists import DATA_DIR_ENV
# $SR_KIT_HIDDEN_CHECKS: how a kernel's hidden_check is decided; AFTER_NOTEBOOK: by the grader once the notebook ran
# (the sandboxed grading command), else by the command of $SR_KIT_CHECK_COMMAND (a JSON list: check_command below),
# whose verdict lines are "<token> PASS <check>" / "<token> FAIL <check> <reason>" (CHECK_PASS, CHECK_FAIL)
from sr_utils.notebook import AFTER_NOTEBOOK, CHECK_COMMAND_ENV, CHECK_FAIL, CHECK_PASS, HIDDEN_CHECKS_ENV
# .grading-run: where a notebook writes while nbgrader runs it (its checkpoints, table and pictures: what 04 and 05
# are judged on, read there by the checks)
from sr_utils.notebook import GRADING_SCRATCH

# The student side's frames and modules (described below)
from .student_wire import BOOT, FRAME_LENGTH, MAX_ANSWER, MAX_REQUEST, STUDENT_SIDE_MODULES

__all__ = ["EXCHANGE_ENV", "LANGUAGE_ENV", "DATA_DIR_ENV", "HIDDEN_CHECKS_ENV", "AFTER_NOTEBOOK", "CHECK_COMMAND_ENV",
           "CHECK_PASS", "CHECK_FAIL", "GRADING_SCRATCH", "BOOT", "FRAME_LENGTH", "MAX_REQUEST", "MAX_ANSWER",
           "STUDENT_SIDE_MODULES",
           "SANDBOX_ENV", "CHECK_SERVER_ENV", "VERDICTS_ENV", "CELL_TIMEOUT_ENV", "KERNEL_ENV", "CHECKS_NICENESS_ENV",
           "COURSE_ROOT_ENV", "GRADEBOOK_URL_ENV", "FORMGRADER_SERVICE_ENV", "HUB_SETTINGS_ENV",
           "SOURCE_DIR", "RELEASE_DIR", "SUBMITTED_DIR", "AUTOGRADED_DIR",
           "FEEDBACK_DIR",
           "SOLUTION_DIR", "GRADEBOOK", "EXCHANGE_DIR", "GRADES_DIR", "STATE_DIR", "RUNTIME_DIR", "VERDICTS_DIR",
           "LOGS_DIR", "FORKSERVER_LOG", "DISK_DIR", "NUMBA_DIR", "CELLS_DIR", "OVER_DISK_RECORD",
           "KERNEL_DISAGREES_RECORD", "DISAGREE_FAILED", "SHOWN_RESULT", "SHOWN_NUMBER_DISPLAYED",
           "SHOWN_NUMBER_PRINTED", "KERNEL_DISAGREES", "RUN_CHECK_MODULE", "CHECK_SERVER_MODULE", "EARLY", "DECIDE",
           "WARMED_MARK", "TRUSTED_FORKSERVER_MODULE", "FORKED_MARK", "STACK_DUMP_SIGNAL", "KERNEL_ZYGOTE_ENV",
           "KERNEL_PARENT_ENV",
           "KERNEL_PROVISIONER", "ZYGOTE_MARK", "ZYGOTE_KERNELS_OPTION", "CLUSTER_DIR", "CLUSTER_CA", "CLUSTER_KEY",
           "CLUSTER_WORKER_MODULE",
           "CLUSTER_WORKER_PLUGIN", "CLUSTER_WORKER_LOG", "CLUSTER_WORKER_LOCK", "python_module", "check_command",
           "check_command_json"]

# ---------------------------------------------------------------------------------------------------------
# Environment variables set by the grading command (course.grade) or nbgrader_config.py
# ---------------------------------------------------------------------------------------------------------
#: The sandbox's settings, ``course.sandbox.SandboxSpec`` as JSON, from the grading command to nbgrader, its
#: kernels' launcher and the check servers; set means sandboxed grading (nbgrader_config.py then takes the
#: kernel, transport, timeout and preprocessors of the sandboxed run).
SANDBOX_ENV = "SR_KIT_SANDBOX"
#: The pipes of the check server the grading command started for a submission, and the socket of its zygote's
#: kernels, handed to its nbgrader process: JSON ``{"folder": <the submission's grading folder>, "fds": [<requests
#: end>, <answers end>], "kernels": <socket>}``.
CHECK_SERVER_ENV = "SR_KIT_CHECK_SERVER"
#: The folder where ``TrustedHiddenChecks`` records, per student, the verdicts and decisions (:data:`VERDICTS_DIR`).
VERDICTS_ENV = "SR_KIT_VERDICTS_DIR"
#: Seconds a notebook cell may run (``--cell-timeout``): nbgrader's ``Execute.timeout`` in a sandboxed run.
CELL_TIMEOUT_ENV = "SR_KIT_CELL_TIMEOUT"
#: The kernelspec nbgrader runs notebooks with: ``course.sandbox.KERNEL_NAME`` sandboxed, ``python3`` with --unsafe.
KERNEL_ENV = "SR_KIT_KERNEL"
#: ``0``: every kernel of a sandboxed run starts as a new sandboxed Python, and every student side in a sandbox of its
#: own; else (the default) a submission's kernels and student side are forked from its zygote
#: (``course.sandbox.submission_zygote``), which imported what they need once.
KERNEL_ZYGOTE_ENV = "SR_KIT_KERNEL_ZYGOTE"
#: The pid of the nbgrader process that starts a sandboxed kernel (set by ``course.sandbox.kernel_provisioner``): the
#: kernel's launcher dies with it, and exits at once if it is already gone (``course.sandbox.die_with_parent``).
KERNEL_PARENT_ENV = "SR_KIT_KERNEL_PARENT"
#: The niceness of the hidden checks' processes (check server and student side): ``course.sandbox.CHECKS_NICENESS``
#: with one worker (they use what the kernel leaves idle), 0 with more.
CHECKS_NICENESS_ENV = "SR_KIT_CHECKS_NICENESS"
#: The course root being graded: the working folder of the processes the grading command starts.
COURSE_ROOT_ENV = "SR_KIT_COURSE_ROOT"
#: The gradebook's SQLAlchemy URL when it is not the course root's SQLite file (:data:`GRADEBOOK`): a PostgreSQL
#: server's, for graders, TAs and the MOS step writing at once (``course.gradebook_url``; set by the instructor, read
#: by nbgrader_config.py and every kit command that opens the gradebook; never given to a sandbox).
GRADEBOOK_URL_ENV = "SR_KIT_GRADEBOOK_URL"
#: Set (to the service's name) in the class server's formgrader service (``course.hub``): nbgrader_config.py then
#: refuses an autograde that is not the grading command's sandboxed one (the formgrader's button would run student
#: code as the grader account, which owns the solutions and the gradebook).
FORMGRADER_SERVICE_ENV = "SR_KIT_FORMGRADER_SERVICE"
#: The class server's settings file (``course.hub.settings``), from ``python -m course.hub start`` to the hub's
#: configuration file (``course/hub/jupyterhub_config.py``) and its spawner.
HUB_SETTINGS_ENV = "SR_KIT_HUB_SETTINGS"

# ---------------------------------------------------------------------------------------------------------
# The course root's folders (nbgrader_config.py gives them to nbgrader; git-ignored except source/, release/)
# ---------------------------------------------------------------------------------------------------------
SOURCE_DIR = "source"                 #: the instructor's notebooks, solutions and hidden tests
RELEASE_DIR = "release"               #: the student version nbgrader generates
SUBMITTED_DIR = "course/submitted"    #: <student>/<assignment>/: hand-ins, as collected
AUTOGRADED_DIR = "course/autograded"  #: <student>/<assignment>/: graded notebooks (the only folder a kernel runs in)
FEEDBACK_DIR = "course/feedback"      #: <student>/<assignment>/: feedback pages
SOLUTION_DIR = "course/solution"      #: nbgrader's solution folder
GRADEBOOK = "course/gradebook.db"     #: nbgrader's gradebook (sqlite; unless $SR_KIT_GRADEBOOK_URL names one)
EXCHANGE_DIR = "course/exchange"      #: nbgrader's exchange, unless $SR_KIT_EXCHANGE says where (or a link to it)
GRADES_DIR = "course/grades"          #: grades.csv, breakdown.csv, summary.txt of the grading command
STATE_DIR = "course/.grading"         #: the grading command's private state (the folders below)

# Inside STATE_DIR:
RUNTIME_DIR = "runtime"        #: w<slot>/: a worker's kernel runtime (connection files, IPC sockets), in its sandbox
VERDICTS_DIR = "verdicts"      #: <student>/: <notebook>.json (each check: passed, reason), CELLS_DIR, the records
LOGS_DIR = "logs"              #: <student>.log: the nbgrader process and check server of a submission
FORKSERVER_LOG = "forkserver.log"  #: the run's fork server of trusted processes (until they get their own log)
DISK_DIR = "disk"              #: <student>/: the size-limited tmpfs a submission is graded in (as root)
NUMBA_DIR = "numba"            #: the trusted processes' compiled imresize kernels (NUMBA_CACHE_DIR)

# Grading over several machines (``course.grade --cluster``, Dask distributed: docs/grading.md)
CLUSTER_DIR = "course/.cluster"  #: the cluster's TLS files (``python -m course.cluster credentials``), course root
CLUSTER_CA, CLUSTER_KEY = "ca.pem", "key.pem"  #: in CLUSTER_DIR: the certificate (its own CA) and its private key
#: ``dask worker ADDRESS --preload CLUSTER_WORKER_MODULE --course-dir DIR``: a worker that grades in course DIR
CLUSTER_WORKER_MODULE = "course.grading.cluster_worker"
CLUSTER_WORKER_PLUGIN = "sr-kit-course"  #: the name of the worker plugin that preload installs
CLUSTER_WORKER_LOG = "cluster-worker.log"  #: in STATE_DIR: a worker's "<time> <start|done> <student> ..." lines
CLUSTER_WORKER_LOCK = "cluster-worker.lock"  #: in STATE_DIR: held by the one worker process of a course folder

# ---------------------------------------------------------------------------------------------------------
# Records: what TrustedHiddenChecks (in nbgrader) leaves in VERDICTS_DIR/<student>/ for the grading command
# ---------------------------------------------------------------------------------------------------------
CELLS_DIR = "cells"                             #: <notebook>.json: each graded cell's decision, kernel run, verdicts
OVER_DISK_RECORD = "over-disk-bound.txt"        #: "<notebook>: <why>": the submission wrote past its disk bound
KERNEL_DISAGREES_RECORD = "kernel-disagrees.txt"  #: "<notebook>/<grade_id> <code>" lines, codes of KERNEL_DISAGREES
#: The codes of KERNEL_DISAGREES_RECORD (graded cells whose kernel outputs disagree with the trusted decisions) and
#: what the grading command's summary says for each.
DISAGREE_FAILED, SHOWN_RESULT, SHOWN_NUMBER_DISPLAYED, SHOWN_NUMBER_PRINTED = (
    "kernel_passed_trusted_failed", "execute_result", "number_displayed", "number_printed")
KERNEL_DISAGREES = {DISAGREE_FAILED: "its kernel ran it without failure, the trusted checks failed it",
                    SHOWN_RESULT: "its kernel showed a result (execute_result)",
                    SHOWN_NUMBER_DISPLAYED: "its kernel displayed a bare number",
                    SHOWN_NUMBER_PRINTED: "its kernel printed a bare number"}

# ---------------------------------------------------------------------------------------------------------
# Commands and their formats
# ---------------------------------------------------------------------------------------------------------
#: ``RUN_CHECK_MODULE CHECK... --submission FOLDER`` (a one-time token on stdin): the verdict lines above.
RUN_CHECK_MODULE = "course.grading.run_check"
#: ``CHECK_SERVER_MODULE FOLDER``: one JSON request per line on stdin, ``{"op": EARLY|DECIDE, "names": [...],
#: "timeout": s, "language": l}``; one JSON answer per line on stdout, ``{"verdicts": {name: [passed, reason]},
#: "ran": [...], "seconds": s}``.
CHECK_SERVER_MODULE = "course.grading.check_server"
EARLY, DECIDE = "early", "decide"  #: the check server's requests: decide what needs no run yet / the rest
#: The line a check server writes in a submission's log when its student side builds a first optimizer ahead of the
#: checks that train (``checks.OPTIMIZER_CHECKS``): only submissions whose notebooks ask for such a check pay it.
WARMED_MARK = "[check server] student side warmed for"
#: ``TRUSTED_FORKSERVER_MODULE FD`` (FD: its end of a SOCK_SEQPACKET socket pair): imports nbgrader, torch and the checks once, then
#: forks a submission's nbgrader process or check server for each job; one JSON object per message, the protocol
#: in its docstring. Each child's log starts with a line beginning with FORKED_MARK.
TRUSTED_FORKSERVER_MODULE = "course.grading.trusted_forkserver"
FORKED_MARK = "[trusted fork server]"
#: The signal on which a process forked by the fork server writes the stack of each of its threads to its log
#: (``faulthandler``): the grading command sends it to a submission's nbgrader process before killing it at the
#: submission timeout, so that the log says where it waited.
STACK_DUMP_SIGNAL = signal.SIGUSR1
#: The kernel provisioner of the sandbox's kernelspec (jupyter_client's entry point group
#: ``jupyter_client.kernel_provisioners``, declared in pyproject.toml): ``course.sandbox.kernel_provisioner``. The
#: lines it writes in a submission's log begin with ZYGOTE_MARK.
KERNEL_PROVISIONER = "sr-sandbox-zygote"
ZYGOTE_MARK = "[kernel zygote]"
#: ``CHECK_SERVER_MODULE FOLDER ZYGOTE_KERNELS_OPTION FD``: the check server's end of the socket of its zygote's
#: kernels (``course.sandbox.submission_zygote``), which it hands to the zygote it starts; the other end is the
#: submission's nbgrader process's (``"kernels"`` in ``$SR_KIT_CHECK_SERVER``).
ZYGOTE_KERNELS_OPTION = "--zygote-kernels-fd"
#: ``FEEDBACK_SERVER_MODULE ASSIGNMENT [NBGRADER OPTION...]`` in the course root: a student id per line on stdin,
#: ``FEEDBACK_DONE <student> <exit code>`` on stdout once that student's ``nbgrader generate_feedback`` has run.
FEEDBACK_SERVER_MODULE = "course.grading.feedback_server"
FEEDBACK_DONE = "feedback-done"
#: The student side (``student_side.py``) runs as ``python -I -c BOOT FOLDER``: the sources of its modules
#: (STUDENT_SIDE_MODULES) arrive on stdin, one frame each; then requests and answers are frames, a ``FRAME_LENGTH`` (``struct``) byte count followed by that
#: many bytes of ``torch.save`` of plain data, at most MAX_REQUEST / MAX_ANSWER bytes.


def python_module(module: str, *args: str, bytecode: bool = True) -> list[str]:
    """``python -I [-B] -m module args``: a trusted process of this kit's Python, isolated from the environment's
    ``PYTHON*`` variables and the working folder (a submission's), importing ``course`` as installed."""
    return [sys.executable, "-I", *(() if bytecode else ("-B",)), "-m", module, *args]


def check_command() -> list[str]:
    """The command a kernel's ``hidden_check`` runs (in ``$SR_KIT_CHECK_COMMAND``, as JSON), the check's name and
    ``--submission FOLDER`` added: :data:`RUN_CHECK_MODULE` in this Python."""
    return python_module(RUN_CHECK_MODULE)


def check_command_json() -> str:
    """:func:`check_command` as the value of ``$SR_KIT_CHECK_COMMAND``."""
    return json.dumps(check_command())
