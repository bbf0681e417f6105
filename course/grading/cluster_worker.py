"""A Dask worker that grades: the preload that gives a ``dask worker`` its course folder, and the task the grading
command sends it for each submission.

    python -m course.cluster worker tls://HOST:8786 --course-dir /srv/sr-course [--threads 2]
    # which runs: dask worker tls://HOST:8786 --nthreads 2 --tls-... --preload course.grading.cluster_worker \\
    #                 --course-dir /srv/sr-course

A worker's course folder is a checkout of the kit at the grading command's version, with the same ``source/``
(checked before each submission: :func:`kit_fingerprint`), used by this worker process alone (a lock in its state
folder), and its ``$SR_KIT_GRADEBOOK_URL`` names the grading command's PostgreSQL gradebook (checked too:
:func:`gradebook_identity`). Each submission arrives as a tar of its hand-in (:func:`pack_tree`), is unpacked into
the worker's ``course/submitted/<student>/<assignment>``, graded by :class:`.run_loop.GradingSlots` -- the sandboxed
path of a one-machine run, ``--nthreads`` submissions at a time; nbgrader writes the grades into the shared
gradebook -- and its graded notebooks, verdicts and log travel back (:func:`grade_submission`'s answer).

A worker killed mid-submission takes its nbgrader process and sandboxes with it (the fork server kills what its
grader leaves: :mod:`.trusted_forkserver`); Dask's scheduler then gives the submission to another worker, and
``nbgrader autograde --force`` there replaces whatever the first one had written.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import os
import socket
import tarfile
import threading
import time
from pathlib import Path

import click
from distributed import WorkerPlugin, get_worker

from course import plain_tree
from course.gradebook_url import gradebook_url, is_sqlite, shown_url
from course.grading.contract import (AUTOGRADED_DIR, CLUSTER_WORKER_LOCK, CLUSTER_WORKER_LOG, CLUSTER_WORKER_MODULE,
                                     CLUSTER_WORKER_PLUGIN, GRADEBOOK_URL_ENV, LOGS_DIR, SOURCE_DIR, STATE_DIR,
                                     SUBMITTED_DIR, VERDICTS_DIR)
from course.grading.errors import GradingError

MAX_TREE_BYTES = 512 << 20  # what one archive may unpack to (a hand-in is small: checkpoints and data never travel)


def pack_tree(folder: Path) -> bytes:
    """The regular files below ``folder`` (nothing followed), as an uncompressed tar of their relative paths."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, _ in sorted(plain_tree.regular_files(folder)):
            with open(path, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_tree(data: bytes, folder: Path) -> None:
    """Replace ``folder`` by the files of :func:`pack_tree`'s ``data`` (regular files only, no path outside it):
    unpacked beside it first, so that a failure leaves the old folder whole."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    incoming = folder.with_name(f".{folder.name}.incoming")
    plain_tree.remove_tree(incoming)
    incoming.mkdir()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
            if sum(m.size for m in members) > MAX_TREE_BYTES or not all(m.isfile() for m in members):
                raise GradingError(f"an archive for {folder} holds more than regular files of at most "
                                   f"{MAX_TREE_BYTES >> 20} MB")
            tar.extractall(incoming, filter="data")
        plain_tree.remove_tree(folder)
        os.replace(incoming, folder)
    finally:
        plain_tree.remove_tree(incoming)


def kit_fingerprint(course_root: Path, assignment: str) -> str:
    """What the grade of a submission depends on besides the submission: the course's source notebooks of
    ``assignment`` (hidden tests, points) and the kit's grading code (the checks among it), as one SHA-256."""
    import course.grading

    h = hashlib.sha256()
    trees = [(Path(course_root) / SOURCE_DIR / assignment, "*.ipynb"),
             (Path(course.grading.__file__).resolve().parent, "*.py")]
    for top, pattern in trees:
        for path in sorted(top.rglob(pattern)):
            if "__pycache__" not in path.parts:
                h.update(path.relative_to(top).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def gradebook_identity(url: str) -> str:
    """Which database ``url`` is, the same from every machine that reaches it: a PostgreSQL cluster's system
    identifier and the database's name (the URL itself, password hidden, where that cannot be read)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            ident = db.execute(text("SELECT system_identifier FROM pg_control_system()")).scalar()
            name = db.execute(text("SELECT current_database()")).scalar()
        return f"postgresql cluster {ident}, database {name}"
    except Exception:  # noqa: BLE001 (not PostgreSQL, or not allowed to read it: the URL stands for it)
        return shown_url(url)
    finally:
        engine.dispose()


class CourseOnWorker(WorkerPlugin):
    """The worker plugin the preload installs (as :data:`.contract.CLUSTER_WORKER_PLUGIN`): the worker's course
    folder, held for this process alone, and the :class:`.run_loop.GradingSlots` it grades in (made at the first
    submission, with the grading command's options: sandbox, limits, timeouts)."""

    def __init__(self, course_dir: Path, threads: int = 1):
        self.course_root = Path(course_dir).resolve()
        self.threads = threads
        self.problem: str | None = None  # why this worker cannot grade (said to the grading command)
        self._lock_file = None
        self._slots = None
        self._slots_key = None
        self._busy = 0
        self._mutex = threading.Lock()
        self._umask = None

    def setup(self, worker) -> None:
        self.name = f"{worker.name} on {socket.gethostname()}"
        self.nthreads = worker.state.nthreads
        try:
            self._check_course()
        except GradingError as e:
            self.problem = str(e)
            return
        from course.grading.permissions import private_umask

        self._umask = private_umask()  # (for the worker's life: its tasks run in threads, at once)
        self._umask.__enter__()

    def _check_course(self) -> None:
        root = self.course_root
        if not (root / "nbgrader_config.py").is_file():
            raise GradingError(f"{root} has no nbgrader_config.py: --course-dir must be a checkout of the kit")
        url = gradebook_url(root)
        if is_sqlite(url):
            raise GradingError(f"its gradebook is the SQLite file {shown_url(url)}, which the grading command "
                               f"does not read: set ${GRADEBOOK_URL_ENV} to the class's PostgreSQL gradebook before "
                               "starting the worker (docs/grading.md)")
        state = root / STATE_DIR
        state.mkdir(parents=True, exist_ok=True)
        f = open(state / CLUSTER_WORKER_LOCK, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise GradingError(f"another worker grades in {root}: one worker process per course folder (give each "
                               "its own --course-dir, or one worker more --threads)") from None
        self._lock_file = f

    def status(self, assignment: str) -> dict:
        """What the grading command checks before it sends anything: can this worker grade ``assignment``, with
        which course and gradebook."""
        if self.problem:
            return {"worker": self.name, "problem": self.problem}
        try:
            return {"worker": self.name, "problem": None, "course": str(self.course_root),
                    "fingerprint": kit_fingerprint(self.course_root, assignment),
                    "gradebook": gradebook_identity(gradebook_url(self.course_root))}
        except Exception as e:  # noqa: BLE001 (said to the grading command, with the worker's name)
            return {"worker": self.name, "problem": f"{type(e).__name__}: {e}"}

    def _log(self, line: str) -> None:
        with open(self.course_root / STATE_DIR / CLUSTER_WORKER_LOG, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

    def _grading_slots(self, options: dict):
        from course.grade import sandbox_spec
        from course.grading.run_loop import GradingSlots
        from course.sandbox import Limits

        key = (options["unsafe"], options["no_cgroup"], options["cell_timeout"],
               tuple(sorted(options["limits"].items())))
        with self._mutex:
            if self._slots is not None and self._slots_key != key:
                if self._busy:
                    raise GradingError(f"worker {self.name} is grading another run's submissions (other options)")
                self._slots.close()
                self._slots = None
            if self._slots is None:
                limits = Limits(**{**options["limits"], "threads": self.threads})
                spec = sandbox_spec(self.course_root, options["unsafe"], limits, options["no_cgroup"],
                                    log=self._log)
                self._slots = GradingSlots(self.course_root, spec, self.nthreads, options["cell_timeout"],
                                           require_cgroup=not options["no_cgroup"])
                self._slots_key = key
            self._busy += 1
            return self._slots

    def grade(self, student: str, assignment: str, hand_in: bytes, options: dict) -> dict:
        """Grade one submission (its hand-in a :func:`pack_tree` archive); returns the result of
        :meth:`GradingSlots.grade` with the worker's name, and ``files``: {what: archive} of its graded
        notebooks, verdicts and log, relative to the course root."""
        if self.problem:
            raise GradingError(f"worker {self.name} cannot grade: {self.problem}")
        mine = kit_fingerprint(self.course_root, assignment)
        if mine != options["fingerprint"]:
            raise GradingError(f"worker {self.name} grades with another version of the kit or of "
                               f"{SOURCE_DIR}/{assignment} than the grading command's (in {self.course_root}): "
                               "bring its checkout to the same commit")
        unpack_tree(hand_in, self.course_root / SUBMITTED_DIR / student / assignment)
        slots = self._grading_slots(options)
        self._log(f"start {student}")
        try:
            result = slots.grade(student, assignment, options["submission_timeout"])
        finally:
            with self._mutex:
                self._busy -= 1
        self._log(f"done {student} {result['status']!r} {result['seconds']:.1f} s")
        root = self.course_root
        files = {}
        for where in (f"{AUTOGRADED_DIR}/{student}/{assignment}", f"{STATE_DIR}/{VERDICTS_DIR}/{student}"):
            if (root / where).is_dir():
                files[where] = pack_tree(root / where)
        log = root / STATE_DIR / LOGS_DIR / f"{student}.log"
        if log.is_file():
            files[f"{STATE_DIR}/{LOGS_DIR}/{student}.log"] = log.read_bytes()[-(4 << 20):]
        return {**result, "worker": self.name, "files": files}

    def teardown(self, worker) -> None:
        if self._slots is not None:
            self._slots.close()
            self._slots = None
        if self._umask is not None:
            self._umask.__exit__(None, None, None)
            self._umask = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _course_on_worker(worker=None) -> CourseOnWorker:
    plugin = (worker or get_worker()).plugins.get(CLUSTER_WORKER_PLUGIN)
    if plugin is None:
        raise GradingError(f"this Dask worker has no course folder: start it with `python -m course.cluster worker "
                           f"ADDRESS --course-dir DIR` (or `dask worker ... --preload {CLUSTER_WORKER_MODULE} "
                           "--course-dir DIR`)")
    return plugin


def grade_submission(student: str, assignment: str, hand_in: bytes, options: dict) -> dict:
    """The task the grading command sends for each submission (runs on a worker)."""
    return _course_on_worker().grade(student, assignment, hand_in, options)


def worker_status(assignment: str, dask_worker=None) -> dict:
    """Run on every worker before a grading run (``Client.run``, which gives ``dask_worker``):
    :meth:`CourseOnWorker.status`."""
    try:
        return _course_on_worker(dask_worker).status(assignment)
    except GradingError as e:
        return {"worker": f"{dask_worker.name} on {socket.gethostname()}", "problem": str(e)}


@click.command()
@click.option("--course-dir", required=True, type=click.Path(file_okay=False),
              help="this worker's checkout of the kit (nbgrader_config.py, source/)")
@click.option("--threads", default=1, show_default=True, type=int,
              help="threads of each sandboxed process (torch's, numba's)")
async def dask_setup(worker, course_dir, threads):
    """The preload: install this worker's :class:`CourseOnWorker`."""
    await worker.plugin_add(CourseOnWorker(Path(course_dir), threads), name=CLUSTER_WORKER_PLUGIN)
