"""nbgrader configuration of the SR course kit (nbgrader 0.9.6).

source/ and release/ live at the repository root; everything nbgrader creates at run time (submitted/,
autograded/, feedback/, the gradebook) lives under course/ and is git-ignored. Every hardening measured in
``../shared/docs/nbgrader-notes.md`` is applied here, so plain ``nbgrader generate_assignment superres`` and
``nbgrader autograde superres`` from the repository root need no environment set by hand.

The kit's plugins are named by their dotted path in the installed ``course`` package (``course.grading.*``,
instructor-only, never released); what nbgrader, its kernels and the grading command agree on (variables,
folders, commands) comes from ``course.grading.contract``. A course copy (``course.demo.copy_course``) holds this
file and the course's content; its code is always the installed kit's.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# nbgrader puts its working folder, the course root, first on sys.path, for plugins kept beside this file. This
# course keeps none there (its plugins are the installed kit's), and in a course copy that folder's course/ (the
# course's state and content, no __init__.py) would be found there first, as a namespace package, in place of the
# kit's `course` package (an editable install is found after sys.path): such an entry is taken out again.
sys.path[:] = [p for p in sys.path if not (os.path.isdir(os.path.join(p or os.curdir, "course"))
                                           and not os.path.isfile(os.path.join(p or os.curdir, "course", "__init__.py")))]
try:
    import course
    from course import gradebook_schema, paths
    from course.gradebook_url import gradebook_url
    from course.grading import contract
except ImportError as e:
    raise ImportError(f"{e}: the course kit is not installed in this Python ({sys.executable}): "
                      "pip install -e '.[instructor]' (make install)") from None
if getattr(course, "__file__", None) is None:  # (cannot happen after the line above; said plainly if it does)
    raise ImportError(f"`course` is {list(course.__path__)}, not the kit's package")

os.makedirs(os.path.join(HERE, "course"), exist_ok=True)  # sqlite needs the folder before the first command
# a new gradebook is stamped with its schema's version read in this process, not by a new `alembic` process
gradebook_schema.stamp_in_process()

# Inherited by the kernels nbgrader starts: the command that decides a hidden check (the kit's, in this Python);
# no warnings or progress bars on stderr (any stderr output costs a test cell its points).
os.environ[contract.CHECK_COMMAND_ENV] = contract.check_command_json()
os.environ.setdefault("PYTHONWARNINGS", "ignore")
os.environ.setdefault("TQDM_DISABLE", "1")

# Offline maths: the formgrader and the feedback pages load MathJax from the Jupyter server (jupyter-server-mathjax)
# through the kit's template course/templates/nbconvert/templates/base/mathjax.html.j2, not from a CDN.
TEMPLATES = str(paths.TEMPLATES)
if TEMPLATES not in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (TEMPLATES, os.environ.get("JUPYTER_PATH")) if p)

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "sr-course-kit"
c.CourseDirectory.source_directory = contract.SOURCE_DIR
c.CourseDirectory.release_directory = contract.RELEASE_DIR
c.CourseDirectory.submitted_directory = contract.SUBMITTED_DIR
c.CourseDirectory.autograded_directory = contract.AUTOGRADED_DIR
c.CourseDirectory.feedback_directory = contract.FEEDBACK_DIR
c.CourseDirectory.solution_directory = contract.SOLUTION_DIR
c.CourseDirectory.db_url = gradebook_url(HERE)  # $SR_KIT_GRADEBOOK_URL (PostgreSQL), else the SQLite file
# nbgrader's exchange (release_assignment -> fetch_assignment/submit -> collect), course-local and git-ignored.
# nbgrader wants its root writable by everyone (inbound/ is write-only for students, outbound/ read-only).
# Students' JupyterLab reads the same place through course/jupyter/nbgrader_config.py (`make lab`).
EXCHANGE = os.environ.get(contract.EXCHANGE_ENV) or os.path.join(HERE, contract.EXCHANGE_DIR)
if not os.path.isdir(EXCHANGE) and os.access(os.path.dirname(EXCHANGE), os.W_OK):
    os.makedirs(EXCHANGE)
    os.chmod(EXCHANGE, 0o777)
c.Exchange.root = EXCHANGE
# What a hand-in holds is declared once, in course/jupyter/handin.py (next to the students' configuration, which
# loads it the same way). `nbgrader collect` copies a submission's hand-in (notebooks, report, results/, the
# submission pictures, the curves) and never follows a link; generate_assignment, release and autograde copy
# notebooks only: no generated module or run output goes into the release or over a submission (solution leak,
# stale module), and course/autograded/ holds nothing else the formgrader could serve.
_spec = importlib.util.spec_from_file_location("sr_kit_handin", os.path.join(HERE, "course", "jupyter", "handin.py"))
handin = sys.modules.get("sr_kit_handin") or importlib.util.module_from_spec(_spec)
if "sr_kit_handin" not in sys.modules:
    sys.modules["sr_kit_handin"] = handin
    _spec.loader.exec_module(handin)
c.ExchangeFactory.collect = "sr_kit_handin.HandinCollect"
c.CourseDirectory.ignore = list(handin.NBGRADER_IGNORE)
c.CourseDirectory.max_file_size = handin.MAX_FILE_BYTES // 1000  # (kB) any other exchange copy

# Release notebooks open clean: complete kernelspec and language_info (course.grading.release_metadata)
c.GenerateAssignment.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter", "nbgrader.preprocessors.InstantiateTests",
    "nbgrader.preprocessors.LockCells", "nbgrader.preprocessors.ClearSolutions", "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.CheckCellMetadata", "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.SaveCells", "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme", "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.CheckCellMetadata", "course.grading.release_metadata.CompleteNotebookMetadata",
]

# Autograde: restore deleted or edited test cells, strip cell tags (skip-execution), fixed kernel, CPU timeouts.
c.OverwriteCells.add_missing_cells = True
# The submitted outputs are stashed before ClearOutput and shown, labelled, before each manually graded answer
# (course.grading.submitted_outputs); cells the course asks outputs of are flagged when submitted without.
c.StashSubmittedOutputs.expected_outputs = {"03_train": ["plots"], "04_test": ["evaluate_code"],
                                            "05_super_resolution": ["figure"]}
c.Autograde.sanitize_preprocessors = [
    "course.grading.submitted_outputs.StashSubmittedOutputs",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "course.grading.localized_cells.LocalizedOverwriteCells",  # nbgrader's, then a translated notebook's in its language
    "course.grading.strip_cell_tags.StripCellTags",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A translated submission keeps its language tag (metadata.sr_kit.language) for its feedback
c.ClearMetadataPreprocessor.preserve_nb_metadata_mask = {("language_info", "name"), ("sr_kit", "language")}
# Execution keeps a bounded amount of output (every kind counted); the stored notebook is sanitised (no script
# can run when the formgrader or the feedback renders it) and at most 20 MB. Hidden checks: see hidden_check().
c.Autograde.autograde_preprocessors = [
    "course.grading.limited_output_execute.LimitedOutputExecute",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
    "course.grading.submitted_outputs.ShowSubmittedOutputs",
    "course.grading.report_cell.ShowReport",
    "course.grading.sanitize_notebook.SanitizeNotebook",
]
c.Execute.kernel_name = "python3"
c.Execute.timeout = 300  # per cell; training in 03_train is shrunk under NBGRADER_EXECUTION
c.Execute.interrupt_on_timeout = True

# Feedback never shows the hidden tests' source; answers not graded yet say "awaiting manual grading".
c.GenerateFeedback.exporter_class = "course.grading.feedback_kit.KitFeedbackExporter"
c.GenerateFeedback.preprocessors = [
    "course.grading.feedback_kit.GetGradesMarkingPending",
    "course.grading.feedback_kit.RedactHiddenTestsInOutputs",
    "nbgrader.preprocessors.ClearHiddenTests",
    "course.grading.sanitize_notebook.SanitizeNotebook",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# The class server's formgrader (course.hub) grades nothing itself: its autograde button would run student code as
# the grader account, outside any sandbox; `python -m course.grade` grades (docs/hub.md)
if os.environ.get(contract.FORMGRADER_SERVICE_ENV) and not os.environ.get(contract.SANDBOX_ENV):
    c.Autograde.sanitize_preprocessors = ["course.grading.refuse_autograde.RefuseUnsandboxedAutograde"]

# Sandboxed grading (`python -m course.grade`, which sets $SR_KIT_SANDBOX): kernels run in bubblewrap through the
# sr-sandbox kernelspec (IPC transport: TCP cannot cross the sandbox's empty network namespace), output is
# capped, and hidden checks are decided by a trusted process, the submission's check server (course.grading).
if os.environ.get(contract.SANDBOX_ENV):
    import json

    # the pipes of the trusted check server that course.grade hands to this process: never inherited by a kernel
    for _fd in json.loads(os.environ.get(contract.CHECK_SERVER_ENV) or "{}").get("fds", []):
        try:
            os.set_inheritable(_fd, False)
        except OSError:
            pass
    c.Execute.kernel_name = os.environ.get(contract.KERNEL_ENV, "python3")
    c.KernelManager.transport = "ipc"
    # IPC socket paths are relative to each process's cwd unless absolute: the grader's private runtime folder
    c.KernelManager.ip = os.path.join(os.environ.get("JUPYTER_RUNTIME_DIR", HERE), "kernel-ipc")
    c.Execute.timeout = int(os.environ.get(contract.CELL_TIMEOUT_ENV, "300"))
    c.Autograde.autograde_preprocessors = [
        "course.grading.trusted_hidden_checks.PrewarmHiddenChecks",
        "course.grading.limited_output_execute.LimitedOutputExecute",
        "course.grading.trusted_hidden_checks.TrustedHiddenChecks",
        "course.grading.submitted_outputs.ShowSubmittedOutputs",  # before ClearMetadataPreprocessor (drops the stash)
        "course.grading.report_cell.ShowReport",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "course.grading.trusted_scores.TrustedScores",  # the trusted decisions, again, right before scores are read
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
        "course.grading.sanitize_notebook.SanitizeNotebook",
    ]
