"""The trusted side's end of the hidden-check protocol: start the student-side process, send requests, read
answers safely, run the checks and keep the verdicts.

Nothing here imports or executes student code. The student-side process (:mod:`.student_side`) is started through
``launch`` (the grader wraps it in a bubblewrap sandbox; :mod:`.run_check` runs it as a plain separate process) and
gets only its own sources on stdin (``student_wire.STUDENT_SIDE_MODULES``). Answers are length-checked frames loaded
with ``torch.load(weights_only=True)``; a check ends when a request takes longer than the check's time, the process
dies, or an answer is malformed: every one of these is a failure with a message written here. Student-controlled text in a message (an exception's name
and message) goes through :func:`student_text`: one line, control characters escaped, at most 200 characters.

Every message is a :class:`Message`: an English template of the course's catalogue (``course/locales``) and its
fields, put into the words of the notebook's language only when it is shown (:func:`run_checks` takes the language;
the check server gets it with each request). So a check is written once, in English, and decides the same verdict
in every language. This module is also where the grader's other modules (its nbgrader preprocessors,
``feedback_kit``, ``submitted_outputs``, ``report_cell``) find :func:`grader_tr`: it is the one light module they can
all import.
The catalogue is ``course.locales``, of the installed ``course`` package.
"""
from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from .contract import BOOT, FRAME_LENGTH, MAX_ANSWER, STUDENT_SIDE_MODULES
from .student_wire import decode, encode, write_all

# (their sources are what the student side runs, sent in this order)
STUDENT_SIDE_SOURCES = tuple(Path(__file__).resolve().parent / f"{name}.py" for name in STUDENT_SIDE_MODULES)


# ---------------------------------------------------------------------------------------------------------
# What the grader says, in the student's language
# ---------------------------------------------------------------------------------------------------------
_CATALOGUE = []  # [the course's sr_utils.i18n.Catalogue, or None once a language of it cannot be loaded]


def _course_catalogue():
    """The catalogue of the grader's messages (``course.locales``). None after a language of it could not be loaded
    (said on stderr): the grader then speaks English, and grades are the same."""
    if not _CATALOGUE:
        from sr_utils.i18n import Catalogue

        _CATALOGUE.append(Catalogue("course"))
    return _CATALOGUE[0]


def grader_tr(message: str, /, *, language: str = "en", **params) -> str:
    """``message`` (an English ``str.format`` template of ``course/locales``) in ``language`` (``"en"``,
    ``"zh-CN"``; anything else is English), with ``params`` filled in; without params the template is the text.
    A translation that cannot be used (no catalogue, or a field it does not have) gives the English."""
    english = message.format(**params) if params else message
    if language == "en":
        return english
    catalogue = _course_catalogue()
    if catalogue is None:
        return english
    try:
        return catalogue.tr(message, language=language, **params)
    except ImportError as e:  # no catalogue for this language here
        _CATALOGUE[0] = None
        sys.stderr.write(f"grader messages in English: {e}\n")
    except (ValueError, KeyError, IndexError, AttributeError):  # (test_grading_i18n.py keeps the fields equal)
        pass
    return english


class Message:
    """What the grader says to a student: an English ``str.format`` template of the course's catalogue
    (``course/locales/zh_CN.py`` holds its translation) and its fields, put into words by :meth:`render` in a
    language of the kit; ``str()`` is the English. A field may be a Message itself (rendered in the same
    language); any other field is inserted as it is: student-controlled text goes through :func:`student_text`
    before it becomes a field. Without fields the template is the text (braces in it are not fields)."""

    __slots__ = ("template", "params")

    def __init__(self, template: str, /, **params):
        self.template, self.params = template, params

    def render(self, language: str = "en") -> str:
        fields = {k: v.render(language) if isinstance(v, Message) else v for k, v in self.params.items()}
        return grader_tr(self.template, language=language, **fields)

    def __str__(self) -> str:
        return self.render("en")

    def __repr__(self) -> str:
        return f"Message({self.template!r}, **{self.params!r})"


class CheckFailed(AssertionError):
    """A hidden check failed; the message (composed on the trusted side) is shown to the student.

    ``CheckFailed(template, **fields)`` or ``CheckFailed(Message(...))``: ``str(e)`` is the English,
    ``e.render(language)`` the student's language."""

    def __init__(self, message, /, **params):
        self.message = message if isinstance(message, Message) else Message(str(message), **params)
        super().__init__(self.message.render("en"))

    def render(self, language: str = "en") -> str:
        return self.message.render(language)


class StudentGone(CheckFailed):
    """The student-side process is unusable (timed out, died, or broke the protocol): start a fresh one."""


def student_text(text, limit: int = 200) -> str:
    """Student-controlled text fit for a message: one line, no control characters (escaped as ``\\xNN``),
    at most ``limit`` characters."""
    text = " ".join(str(text).split())
    text = "".join(c if c.isprintable() else f"\\x{ord(c) & 0xff:02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def exception_name(name):
    """A student exception's class name: an identifier (at most 60 characters), else a neutral word."""
    name = str(name)
    ok = name.isidentifier() and name.isascii() and len(name) <= 60
    return name if ok else Message("an exception")


class Student:
    """One student-side process serving every check of a submission folder (torch imported once)."""

    def __init__(self, folder: Path, launch=None, start_timeout: float = 120.0, wait: bool = True, zygote=None):
        """Start the process (forked from ``zygote``, a ``course.sandbox.ZygoteProcess``, where it can be, else
        through ``launch``); unless ``wait`` is False, wait for it to be ready (:meth:`wait_ready`)."""
        cwd = folder if Path(folder).is_dir() else Path(folder).parent  # (the grader may start it before nbgrader
        # makes the folder: the student side enters it at its first request)
        self.proc = None
        if zygote is not None:
            try:
                self.proc = zygote.spawn_student(BOOT, [str(folder)], str(cwd))
            except OSError:  # (said in the log) a student side of its own
                self.proc = None
        if self.proc is None:
            argv = [sys.executable, "-I", "-c", BOOT, str(folder)]
            self.proc = subprocess.Popen(launch(argv) if launch is not None else argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(cwd),
                                         start_new_session=True)
        self.fd_in, self.fd_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.n = 0
        self.ready = False
        self.start_timeout = start_timeout
        sources = [path.read_bytes() for path in STUDENT_SIDE_SOURCES]
        try:
            write_all(self.fd_in, b"".join(struct.pack(FRAME_LENGTH, len(source)) + source for source in sources))
        except OSError:
            pass
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Read the process's first frame (it has imported torch): ``{"ready": True}``, within the start timeout."""
        self.deadline = time.monotonic() + self.start_timeout
        self.timeout = self.start_timeout
        if self._read_frame() != {"ready": True}:
            self.close()
            raise StudentGone("your code could not be started for the hidden checks")
        self.ready = True

    # -- frames -------------------------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_out], [], [], left)[0]:
                self.close()
                raise StudentGone("took longer than {timeout:.0f} s (an endless loop?)", timeout=self.timeout)
            chunk = os.read(self.fd_out, min(n - got, 1 << 20))
            if not chunk:
                self.close()
                raise StudentGone("your code ended the checking process (exit code {code})",
                                  code=self.proc.returncode)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_frame(self):
        (size,) = struct.unpack(FRAME_LENGTH, self._read(struct.calcsize(FRAME_LENGTH)))
        if size > MAX_ANSWER:
            self.close()
            raise StudentGone("the checking process sent an answer larger than allowed")
        data = self._read(size)
        try:
            return decode(data)
        except Exception:
            self.close()
            raise StudentGone("the checking process sent an answer that is not plain data") from None

    def request(self, op: str, what: str, **fields):
        """Send one request; return its ``ok`` part, or raise :class:`CheckFailed` saying what went wrong."""
        self.n += 1
        try:
            write_all(self.fd_in, encode({"op": op, "n": self.n, **fields}))
        except OSError:
            self.close()
            raise StudentGone("your code ended the checking process (exit code {code})",
                              code=self.proc.poll()) from None
        answer = self._read_frame()
        if not isinstance(answer, dict) or answer.get("n") != self.n:
            self.close()
            raise StudentGone("the checking process answered out of turn (did your code write to its output?)")
        if "ok" in answer and isinstance(answer["ok"], dict):
            return answer["ok"]
        raise CheckFailed(describe_error(answer.get("error"), what))

    def close(self) -> None:
        if hasattr(self.proc, "kill_session"):  # forked by the zygote: its pid is the sandbox's
            self.proc.kill_session()
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and not self.proc.stdout.closed


RAISED = "{what} raised {kind}: {message}"  # student code raised an exception (``describe_error``)


def describe_error(error, what) -> Message:
    """The message for an error answer (``what``: a Message or code, e.g. ``"SRResNet()"``): composed here,
    student text truncated and escaped. A student exception gives ``RAISED`` with the fields ``what``, ``kind``
    (its class name) and ``message``."""
    if not isinstance(error, dict):
        return Message("{what}: no usable answer", what=what)
    refused = error.get("refused")
    if isinstance(refused, dict):
        kind = refused.get("kind")
        if kind == "no_notebook":
            return Message("{path} not found: it writes the module(s) this notebook imports; keep the "
                           "assignment's notebooks together in one folder",
                           path=student_text(refused.get("notebook"), 40))
        if kind == "no_writefile":
            return Message("{notebook} has no `%%writefile {module}` cell: put the `%%writefile` lines back at the "
                           "top of the cells that write it", notebook=student_text(refused.get("notebook"), 40),
                           module=student_text(refused.get("module"), 40))
        if kind == "no_class":
            return Message("models.py has no class {cls}: is the `%%writefile -a models.py` line of its cell still "
                           "there, and was the cell run?", cls=student_text(refused.get("cls"), 40))
        if kind == "no_function":
            return Message("solver.py has no function {name}", name=student_text(refused.get("name"), 40))
        if kind == "not_module":
            return Message("{what} did not build a torch.nn.Module", what=what)
        return Message("{what} could not be done", what=what)
    return Message(RAISED, what=what, kind=exception_name(error.get("raised")),
                   message=student_text(error.get("message", "")))



class Session:
    """The student-side process of one submission, kept for every check of all its notebooks (torch is imported
    once per submission, not once per notebook): started at first use, replaced after a timeout, a death or a
    protocol breach, emptied of the previous notebook's objects before the next one, closed by :meth:`close`.

    It runs the student's own code only, in the sandbox of that submission (forked from its zygote where it can be,
    ``zygote``: in its kernels' sandbox, else in one of its own; same uid and cgroup as its kernels, its folder
    read-only); it never serves another submission."""

    def __init__(self, folder: Path, launch=None, zygote=None):
        self.folder, self.launch, self.zygote = Path(folder), launch, zygote
        self.student: Student | None = None
        self.used = False

    def start(self, timeout: float) -> None:
        """Start the process without waiting for it (it imports torch while the notebook runs); forked from the
        zygote, it starts when first used instead (the zygote imports while the notebook starts)."""
        if (self.student is None or not self.student.alive) and (self.zygote is None or not self.zygote.alive()):
            self.student = Student(self.folder, self.launch, start_timeout=timeout, wait=False)
            self.used = False

    def get(self, timeout: float) -> Student:
        if self.student is None or not self.student.alive:
            self.student = Student(self.folder, self.launch, start_timeout=timeout, zygote=self.zygote)
            self.used = False
        elif not self.student.ready:
            self.student.wait_ready()
        return self.student

    def fresh_objects(self, timeout: float) -> None:
        """Drop what earlier checks built (a full-size Discriminator is ~100 MB); a process that cannot is replaced."""
        if self.student is None or not self.student.alive or not self.used or not self.student.ready:
            return
        self.student.deadline, self.student.timeout = time.monotonic() + timeout, timeout
        try:
            self.student.request("reset", Message("starting the next checks"))
        except CheckFailed:
            self.close()

    def close(self) -> None:
        if self.student is not None:
            self.student.close()
            self.student = None


def run_checks(checks: dict, names: list[str], folder: Path, launch=None, timeout: float = 180.0,
               session: Session | None = None, language: str | None = None) -> dict[str, tuple[bool, str]]:
    """Run the hidden ``names`` (from the ``checks`` registry) on ``folder``; ``{name: (passed, reason)}``, the
    reasons in ``language`` (default: this process's, ``$SR_KIT_LANGUAGE``). See :func:`decide_checks`."""
    if language is None:
        from sr_utils.i18n import current_language

        language = current_language()
    return {name: (passed, "" if passed else why.render(language))
            for name, (passed, why) in decide_checks(checks, names, folder, launch, timeout, session).items()}


def decide_checks(checks: dict, names: list[str], folder: Path, launch=None, timeout: float = 180.0,
                  session: Session | None = None) -> dict[str, tuple[bool, Message | None]]:
    """Run the hidden ``names`` (from the ``checks`` registry) on ``folder``; ``{name: (passed, reason)}``, the
    reason a :class:`Message` (None for a pass), to be put into the student's language when shown.

    One student-side process serves the checks in turn (``session``'s, kept open for the submission's next
    notebook; without one, a process for this call alone); after a timeout, a death or a protocol breach the next
    check gets a fresh one. Any other exception while checking (an answer of the wrong shape or type) fails the
    check with a neutral message."""
    verdicts: dict[str, tuple[bool, Message | None]] = {}
    own = session is None
    session = Session(folder, launch) if own else session
    try:
        session.fresh_objects(timeout)
        for name in names:
            if name not in checks:
                verdicts[name] = (False, Message("unknown hidden check {name}", name=student_text(name, 60)))
                continue
            try:
                student = session.get(timeout)
                student.deadline, student.timeout = time.monotonic() + timeout, timeout
                session.used = True
                checks[name](student, folder)
                verdicts[name] = (True, None)
            except CheckFailed as e:
                verdicts[name] = (False, e.message)
            except Exception as e:  # a malformed answer the check could not use
                verdicts[name] = (False, Message("the answers of your code could not be checked ({kind})",
                                                 kind=type(e).__name__))
    finally:
        if own:
            session.close()
    return verdicts
