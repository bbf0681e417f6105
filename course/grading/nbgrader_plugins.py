"""nbgrader preprocessors of the course kit (named in nbgrader_config.py as ``course.grading.nbgrader_plugins.*``).

What they write into a notebook for the student to read (a failed hidden check's reason, a note that output was
cut or removed, the disk bound) is in the notebook's language (``metadata.sr_kit.language``, :func:`language`),
through the course's catalogue (``student_client.grader_tr``, ``course/locales``); the grader's log stays English.
"""
from nbgrader.preprocessors import NbGraderPreprocessor

from .student_client import grader_tr


def language(nb) -> str:
    """The language a notebook's student reads: ``sr_utils.i18n.notebook_language`` (``"en"`` by default)."""
    from sr_utils.i18n import notebook_language

    return notebook_language(nb)


class StripCellTags(NbGraderPreprocessor):
    """Remove every cell tag before autograding.

    A student who tags the test cells of an unsolved notebook ``skip-execution`` (or ``raises-exception``) would
    otherwise have them skipped (or their errors ignored) and get full marks (reproduced with nbgrader 0.9.6).
    """

    def preprocess_cell(self, cell, resources, index):
        if "tags" in cell.metadata:
            del cell.metadata["tags"]
        return cell, resources


# ---------------------------------------------------------------------------------------------------------
# Used by the sandboxed grading command (python -m course.grade), see nbgrader_config.py
# ---------------------------------------------------------------------------------------------------------
import atexit  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nbformat.v4 import new_output  # noqa: E402
from traitlets import Integer  # noqa: E402

from nbgrader.preprocessors import Execute  # noqa: E402

from .contract import (CELLS_DIR, CHECK_SERVER_ENV, CHECK_SERVER_MODULE, DECIDE, DISAGREE_FAILED,  # noqa: E402
                       EARLY, KERNEL_DISAGREES_RECORD, OVER_DISK_RECORD, SANDBOX_ENV, SHOWN_NUMBER_DISPLAYED,
                       SHOWN_NUMBER_PRINTED, SHOWN_RESULT, VERDICTS_ENV, python_module)

HIDDEN_CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']""")
KERNEL_REPLY = "sr_kit_kernel_reply"  # cell metadata: LimitedOutputExecute -> TrustedHiddenChecks (removed there)
TRUSTED = "sr_kit_trusted"  # resources: {grade_id: decision}, TrustedHiddenChecks -> TrustedScores


class LimitedOutputExecute(Execute):
    """nbgrader's Execute with a budget on everything the kernel sends back.

    Every iopub message that can add to the notebook (stream, display data, execute results, errors, display
    *updates*, comm/widget messages), counted with its data, metadata and transient parts, uses the budget of
    its cell (``max_output_bytes``) and of the notebook (``max_notebook_output_bytes``). Past either, messages
    are dropped and the cell gets one note. Widget state is not stored. A submission printing gigabytes (or
    updating one display forever) cannot grow the grader's memory, the autograded notebook or the feedback."""

    max_output_bytes = Integer(1 << 20, help="output kept per cell, in bytes (all kinds)").tag(config=True)
    max_notebook_output_bytes = Integer(8 << 20, help="output kept per notebook, in bytes").tag(config=True)
    store_widget_state = False
    _language = "en"

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb``; the notes this adds (output cut, a cell that timed out) in the notebook's language."""
        self._language = language(nb)
        if not hasattr(self, "_timeout_error"):
            self._timeout_error = dict(self.error_on_timeout or {})
        if self._timeout_error.get("ename") == "CellTimeoutError":  # nbgrader's, in the student's words
            said = grader_tr("No reply from kernel before timeout", language=self._language)
            self.error_on_timeout = {**self._timeout_error,
                                     "traceback": [f"\x1b[0;31mCellTimeoutError\x1b[0m: {said}"]}
        return super().preprocess(nb, resources, km)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        """(sandboxed grader) What the kernel replied for this cell, for :class:`TrustedHiddenChecks` (which takes
        it out of the cell's metadata): it is one of the things a cell's kernel run is judged on, never a pass."""
        if os.environ.get(SANDBOX_ENV) and cell.get("cell_type") == "code":
            content = (exec_reply or {}).get("content") or {}
            cell.metadata[KERNEL_REPLY] = {"status": str(content.get("status", "none"))[:20],
                                           "ename": str(content.get("ename", ""))[:100],
                                           "evalue": str(content.get("evalue", ""))[:300]}
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def process_message(self, msg, cell, cell_index):
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        if kind in ("status", "execute_input", "execute_reply"):
            return super().process_message(msg, cell, cell_index)
        try:
            size = len(json.dumps(msg.get("content", {}), default=str))
        except (TypeError, ValueError):
            size = self.max_notebook_output_bytes + 1
        used = self._budget = getattr(self, "_budget", {})
        cell_before, total_before = used.get(cell_index, 0), used.get("total", 0)
        used[cell_index], used["total"] = cell_before + size, total_before + size
        if cell_before + size <= self.max_output_bytes and total_before + size <= self.max_notebook_output_bytes:
            return super().process_message(msg, cell, cell_index)
        content = msg.get("content", {})
        grading = kind == "error" or kind == "execute_result" or (kind == "stream" and content.get("name") == "stderr")
        if grading and used.get(("kept", cell_index), 0) < 3:
            # what decides a cell's score (an error, stderr, a result) is never dropped: kept, shortened
            used[("kept", cell_index)] = used.get(("kept", cell_index), 0) + 1
            short = {"error": {"ename": str(content.get("ename", ""))[:100], "evalue": str(content.get("evalue", ""))
                               [:1000], "traceback": []},
                     "stream": {"name": "stderr", "text": str(content.get("text", ""))[:1000]},
                     "execute_result": {"execution_count": content.get("execution_count"), "metadata": {},
                                        "data": {"text/plain": str(content.get("data", {}).get("text/plain", ""))
                                                 [:1000]}}}[kind]
            return super().process_message({**msg, "content": short}, cell, cell_index)
        if not used.get(("noted", cell_index)):
            used[("noted", cell_index)] = True
            note = grader_tr("[output truncated by the grader: at most {cell} bytes per cell and {notebook} per "
                             "notebook]", language=self._language, cell=self.max_output_bytes,
                             notebook=self.max_notebook_output_bytes)
            cell.outputs.append(new_output("stream", name="stdout", text=f"\n{note}\n"))
        return None


class CheckServer:
    """This nbgrader process's end of :mod:`.check_server`: the trusted process deciding the hidden checks of one
    submission (it never imports student code either; its student side is sandboxed). The grading command starts
    it before nbgrader, so that it imports torch while nbgrader starts, and hands over its pipes
    (``$SR_KIT_CHECK_SERVER``); otherwise, or after a failure, it is started here. Requests are answered in
    order, as JSON lines; a server that dies, breaks the protocol or takes longer than its time is dropped, and
    its checks get no verdict (they fail)."""

    def __init__(self, fd_requests: int, fd_answers: int, check_timeout: float, proc=None):
        self.fd_requests, self.fd_answers, self.check_timeout, self.proc = fd_requests, fd_answers, check_timeout, proc
        self.buffer = b""
        self.pending = 0  # checks asked for and not answered yet (they bound the time to wait)
        self.unanswered = 0
        self.closed = False

    @classmethod
    def for_folder(cls, folder: Path, check_timeout: float) -> "CheckServer":
        """The server the grading command started for ``folder`` (once), else a new one."""
        handed = json.loads(os.environ.get(CHECK_SERVER_ENV) or "{}")
        if handed.get("folder") == str(folder):
            del os.environ[CHECK_SERVER_ENV]
            return cls(*handed["fds"], check_timeout)
        import subprocess

        # stderr: the grader's log of this submission; same process group: killed with this process
        proc = subprocess.Popen(python_module(CHECK_SERVER_MODULE, str(folder)), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        return cls(proc.stdin.fileno(), proc.stdout.fileno(), check_timeout, proc)

    @property
    def alive(self) -> bool:
        return not self.closed and (self.proc is None or self.proc.poll() is None)

    def send(self, op: str, names: list[str], language: str = "en") -> None:
        """Ask for ``names`` (``op``: ``EARLY`` or ``DECIDE``); the answer's reasons in ``language``."""
        data = (json.dumps({"op": op, "names": names, "timeout": self.check_timeout, "language": language})
                + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd_requests, data):]
        except OSError:
            self.close()
            return
        self.unanswered += 1
        self.pending += len(names)

    def _line(self, deadline: float) -> bytes | None:
        import select

        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_answers], [], [], left)[0]:
                return None
            chunk = os.read(self.fd_answers, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def answer(self) -> dict:
        """Read the answers to every request sent; the last one's verdicts ({} if the server failed)."""
        deadline = time.monotonic() + 120 + self.check_timeout * self.pending
        last = {}
        while self.unanswered and not self.closed:
            line = self._line(deadline)
            try:
                last.update(json.loads(line)["verdicts"])  # (the early answers' too: checks of cells that errored)
            except (TypeError, ValueError, KeyError, AttributeError):
                self.close()
                return {}
            self.unanswered -= 1
        self.pending = 0
        try:
            return {str(n): (bool(v[0]), str(v[1])) for n, v in last.items()}
        except (TypeError, IndexError, KeyError):
            return {}

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc.wait()
        else:  # the grading command's: it ends when its requests end (and is killed if it does not)
            for fd in (self.fd_requests, self.fd_answers):
                try:
                    os.close(fd)
                except OSError:
                    pass


_SERVERS = {}  # submission folder -> its check server, kept for the submission's next notebooks


def _server(folder: Path, check_timeout: float) -> CheckServer:
    """The check server of ``folder`` (nbgrader makes a new preprocessor for each notebook, so it is kept here);
    another submission's is closed first, and all are closed when this nbgrader process ends."""
    if folder in _SERVERS and not _SERVERS[folder].alive:
        _SERVERS.pop(folder).close()
    if folder not in _SERVERS:
        _close_servers()
        _SERVERS[folder] = CheckServer.for_folder(folder, check_timeout)
    return _SERVERS[folder]


def _graded_checks(nb) -> dict[int, list[str]]:
    """{cell index: hidden checks its source calls} for the autograded test cells."""
    found = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            names = HIDDEN_CHECK_CALL.findall(cell.source)
            if names:
                found[i] = names
    return found


class PrewarmHiddenChecks(NbGraderPreprocessor):
    """Before a notebook with hidden checks runs, ask the submission's check server (``CheckServer``) for what it
    can do already: decide the checks that read only the notebooks' sources (nbgrader has written this notebook
    into the grading folder) and prepare the others from what earlier notebooks left, while the kernel runs. The
    verdicts are collected, and the cells marked, by :class:`TrustedHiddenChecks` after the notebook ran."""

    def preprocess(self, nb, resources):
        if not os.environ.get(SANDBOX_ENV):
            return nb, resources
        names = sorted({n for ns in _graded_checks(nb).values() for n in ns})
        if names:
            folder = Path(resources["metadata"]["path"]).resolve()
            _server(folder, TrustedHiddenChecks(config=self.config).check_timeout).send(EARLY, names,
                                                                                        language(nb))
        return nb, resources


@atexit.register
def _close_servers() -> None:
    while _SERVERS:
        _SERVERS.popitem()[1].close()


class TrustedHiddenChecks(NbGraderPreprocessor):
    """After the notebook ran, get the verdicts of its test cells' hidden checks, decide every graded test cell and
    mark it: the points come from this trusted process only.

    The test cells call ``hidden_check("name")``; under the grading sandbox that call only prints, and the
    submission's check server (:mod:`.check_server`, a trusted process like this one) decides the named checks
    (:mod:`.checks`) against a student-side process sandboxed on the submission folder (read-only; one process
    serves every notebook of the submission, see ``student_client.Session``). Neither trusted process imports
    student code.

    A graded test cell passes only if its kernel run shows no failure (no error output, nothing on stderr, an
    ``ok`` reply: the kernel can hide a failure there, not make a pass) *and* every hidden check it
    calls passed here. Its outputs are then rewritten (:func:`settle_outputs`) so that nbgrader's
    ``determine_grade`` sees exactly one decisive thing: a failed cell starts with one error output (the kernel's
    own error, or ``HiddenCheckFailed`` with the reason); no cell keeps an ``execute_result`` (shown as a plain
    display instead), so nothing the kernel printed, displayed or sent can be read as a score.
    :class:`TrustedScores` applies the same decisions again right before ``SaveAutoGrades``.

    Cells whose kernel run failed are not checked again (their early verdicts, the checks of 01/02 decided while
    the kernel ran, are recorded when there are any); the kernel's error is their reason. The verdicts are written to
    ``course/.grading/verdicts/<student>/<notebook>.json``, each cell's decision to ``cells/<notebook>.json`` there,
    and a submission whose kernel disagrees with the decisions (a cell its kernel ran without failure that the
    trusted side failed; a result or a bare number shown by a graded cell) gets ``kernel-disagrees.txt``: the grader
    lists it for attention. What the cell says is in the notebook's language, and so are the reasons in the verdicts
    file (the server puts them into words for the language it is asked for)."""

    check_timeout = Integer(180, help="seconds per hidden check").tag(config=True)

    def preprocess(self, nb, resources):
        from course.sandbox import SandboxSpec, enforce_folder_bound, prune_deep_folders, remove_special_files

        spec = SandboxSpec.from_env()
        lang = language(nb)
        folder = Path(resources["metadata"]["path"]).resolve()
        record = Path(os.environ[VERDICTS_ENV]) / resources["nbgrader"]["student"]
        notebook = resources["nbgrader"]["notebook"]
        graded = _graded_test_cells(nb)
        replies = {i: c.metadata.pop(KERNEL_REPLY, None) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
        ran = any(r is not None for r in replies.values())  # (LimitedOutputExecute recorded the replies)
        kernel = {i: kernel_failure(nb.cells[i], replies.get(i), ran) for i in graded}
        decided = resources.setdefault(TRUSTED, {})
        removed = remove_special_files(folder)  # before nbgrader writes anything there again
        if removed:
            self.log.warning("removed links/special files left by the submission: %s", ", ".join(removed))
        pruned = prune_deep_folders(folder)  # nbgrader walks the folder with recursion at the end
        if pruned:
            self.log.warning("removed folders nested too deep by the submission: %s", ", ".join(pruned)[:500])
        over = enforce_folder_bound(folder, spec.limits.folder_bytes) if spec is not None else None
        if over:  # the disk bound of a submission: this notebook scores 0, the grader lists it for attention
            record.mkdir(parents=True, exist_ok=True)
            (record / OVER_DISK_RECORD).write_text(f"{notebook}: {over}")
            said = disk_bound_text(over, lang)
            for i in graded:
                decided[_grade_id(nb.cells[i])] = {"passed": False, "ename": "DiskBoundExceeded", "evalue": said}
                settle_outputs(nb.cells[i], decided[_grade_id(nb.cells[i])])
            return nb, resources
        wanted = {i: names for i, names in graded.items() if names and kernel[i] is None}
        names = sorted({n for ns in wanted.values() for n in ns})
        verdicts = {}
        if names:
            t0 = time.perf_counter()
            server = _server(folder, self.check_timeout)
            server.send(DECIDE, names, lang)
            verdicts = server.answer()
            self.log.info("hidden checks %s: waited %.1f s", ", ".join(names), time.perf_counter() - t0)
        elif folder in _SERVERS and _SERVERS[folder].unanswered:  # only the early answer (every cell errored)
            verdicts = _SERVERS[folder].answer()
        cells, disagree = {}, []
        for i, ns in graded.items():
            cell, gid = nb.cells[i], _grade_id(nb.cells[i])
            failed = [(n, verdicts.get(n, (False, ""))[1]) for n in ns
                      if (n in verdicts or i in wanted) and not verdicts.get(n, (False, ""))[0]]
            checked = [grader_tr("hidden check {name!r} failed: {reason}", language=lang, name=n,
                                 reason=why or grader_tr("no verdict", language=lang)) for n, why in failed]
            if kernel[i] is not None:
                decision = {"passed": False, "ename": kernel[i][0], "evalue": kernel[i][1]}
            elif checked:
                decision = {"passed": False, "ename": "HiddenCheckFailed", "evalue": checked[0]}
            else:
                decision = {"passed": True}
            shown = result_shown(cell)
            flags = [DISAGREE_FAILED] * (kernel[i] is None and not decision["passed"]) + [shown] * bool(shown)
            disagree += [f"{notebook}/{gid} {flag}" for flag in flags]
            if flags:
                self.log.warning("the kernel's outputs of %s/%s disagree with the trusted side: %s", notebook, gid,
                                 ", ".join(flags))
            decided[gid] = decision
            settle_outputs(cell, decision)
            cells[gid] = {**decision, "kernel": "ok" if kernel[i] is None else f"{kernel[i][0]}: {kernel[i][1]}",
                          "checks": {n: {"passed": verdicts[n][0], "reason": verdicts[n][1]} for n in ns
                                     if n in verdicts}}
        record.mkdir(parents=True, exist_ok=True)
        (record / f"{notebook}.json").write_text(json.dumps(
            {n: {"passed": ok, "reason": why} for n, (ok, why) in verdicts.items()}, indent=1))
        (record / CELLS_DIR).mkdir(exist_ok=True)
        (record / CELLS_DIR / f"{notebook}.json").write_text(json.dumps(cells, indent=1, ensure_ascii=False))
        if disagree:
            with open(record / KERNEL_DISAGREES_RECORD, "a") as f:
                f.write("".join(line[:300] + "\n" for line in disagree))
        return nb, resources


class TrustedScores(NbGraderPreprocessor):
    """Right before ``SaveAutoGrades``: apply the decisions of :class:`TrustedHiddenChecks` again
    (:func:`settle_outputs`), whatever the preprocessors between them did to the outputs; a graded test cell with no
    decision fails (``NoTrustedVerdict``). Sandboxed grader only."""

    def preprocess(self, nb, resources):
        decided = resources.get(TRUSTED) or {}
        for i in _graded_test_cells(nb):
            cell = nb.cells[i]
            settle_outputs(cell, decided.get(_grade_id(cell)) or {"passed": False, "ename": "NoTrustedVerdict",
                                                                   "evalue": ""})
        return nb, resources


def _grade_id(cell) -> str:
    return str(cell.metadata.get("nbgrader", {}).get("grade_id", ""))


def _graded_test_cells(nb) -> dict[int, list[str]]:
    """{cell index: hidden checks its source calls (maybe none)} for every autograded test cell (a graded code cell
    that is not a solution: nbgrader scores it from its outputs)."""
    found = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            found[i] = HIDDEN_CHECK_CALL.findall(cell.source)
    return found


def _one_line(text, n: int = 300) -> str:
    text = "".join(text) if isinstance(text, list) else str(text)
    return text.strip().replace("\r", " ").replace("\n", " ")[:n]


def kernel_failure(cell, reply: dict | None, recorded: bool) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the first failure the kernel's run of ``cell`` shows (an error output, stderr, a reply
    that is not ``ok``; with ``recorded``, a cell with no reply did not run), or None. The kernel can hide a failure
    from this, never invent a pass: the trusted checks decide the rest."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return _one_line(out.get("ename", ""), 100) or "Error", _one_line(out.get("evalue", ""))
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return "stderr", _one_line(out.get("text", ""))
    if reply is not None and reply.get("status") != "ok":
        return reply.get("ename") or "KernelError", reply.get("evalue") or reply.get("status", "")
    if reply is None and recorded:
        return "CellNotRun", ""
    return None


NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _is_number(text) -> bool:
    text = "".join(text) if isinstance(text, list) else str(text)
    return bool(NUMBER.match(text.strip().strip("'\"").strip()))


def result_shown(cell) -> str:
    """What, among the kernel's outputs of a graded test cell, could read as a score: an ``execute_result``, a
    bare number displayed or printed on a line of its own (a code of ``KERNEL_DISAGREES_RECORD``; ``""`` if none)."""
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "execute_result":
            return SHOWN_RESULT
        if kind == "display_data" and _is_number(out.get("data", {}).get("text/plain", "")):
            return SHOWN_NUMBER_DISPLAYED
        if kind == "stream" and any(_is_number(line) for line in
                                    ("".join(out.get("text", "")) if isinstance(out.get("text"), list)
                                     else str(out.get("text", ""))).splitlines() if line.strip()):
            return SHOWN_NUMBER_PRINTED
    return ""


def settle_outputs(cell, decision: dict) -> None:
    """Rewrite a graded test cell's outputs so that nbgrader's ``determine_grade`` can only give ``decision``:
    ``execute_result`` outputs become plain displays (their text kept for the student, no partial-credit number);
    a failed cell starts with an error output (the kernel's own, moved, when it is the reason; else a new one); a
    passed cell keeps no error or stderr output as such (shown as text). Idempotent."""
    outs = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            out = new_output("display_data", data=dict(out.get("data", {})), metadata=dict(out.get("metadata", {})))
        elif decision.get("passed") and (out.get("output_type") == "error" or
                                         (out.get("output_type") == "stream" and out.get("name") == "stderr")):
            text = (f"{out.get('ename', '')}: {out.get('evalue', '')}\n" if out.get("output_type") == "error"
                    else out.get("text", ""))
            out = new_output("stream", name="stdout", text=text)
        outs.append(out)
    if not decision.get("passed"):  # its reason first: the kernel's own error output if it is the reason, else new
        ename, evalue = str(decision.get("ename") or "Failed"), str(decision.get("evalue") or "")
        at = next((k for k, o in enumerate(outs) if o.get("output_type") == "error"
                   and _one_line(o.get("ename", ""), 100) == _one_line(ename, 100)
                   and _one_line(o.get("evalue", "")) == _one_line(evalue)), None)
        first = outs.pop(at) if at is not None else new_output("error", ename=ename, evalue=evalue,
                                                                  traceback=[f"{ename}: {evalue}"])
        outs.insert(0, first)
    cell.outputs = outs


# what course.sandbox.enforce_folder_bound says (English, for the grader's log and summary), read back for the cell
DISK_BOUND = re.compile(r"^wrote (?P<total>\d+) MB into its grading folder \(at most (?P<limit>\d+) MB\)")


def disk_bound_text(over: str, lang: str) -> str:
    """What a test cell says when its notebook wrote past the disk bound, in ``lang`` (``over`` as it is if it
    does not read as ``enforce_folder_bound``'s words)."""
    m = DISK_BOUND.match(over)
    if m is None:
        return over
    return grader_tr("wrote {total} MB into its grading folder (at most {limit} MB): its files were removed and the "
                     "notebook scores 0", language=lang, total=int(m["total"]), limit=int(m["limit"]))


# ---------------------------------------------------------------------------------------------------------
# Nothing a student wrote runs in a browser (formgrader, feedback)
# ---------------------------------------------------------------------------------------------------------
SAFE_MIME = {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/gif"}
# MathJax commands that make links, classes, styles or load code: shown as text instead
MATHJAX_ACTIVE = re.compile(r"\\(href|url|class|cssId|style|unicode|require|data|html)\b")


def clean_html(text: str) -> str:
    """An allow-list HTML sanitiser (nh3/ammonia): no script, style, event handler, ``javascript:`` URL, SVG or
    form survives; MathJax's active commands are neutralised."""
    import nh3

    return MATHJAX_ACTIVE.sub(r"\\text{\1}", nh3.clean(text, link_rel="noopener noreferrer nofollow"))


def clean_markdown(text: str) -> str:
    """A markdown answer as nbconvert would render it, then sanitised, kept as one line of HTML (so that rendering
    it again as markdown cannot make new links from the escaped text)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    html = clean_html(markdown2html_mistune(text))
    return '<div class="sanitised-answer">' + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


class SanitizeNotebook(NbGraderPreprocessor):
    """Make a submitted notebook safe to render: markdown sources and HTML/markdown outputs are sanitised (an
    allow-list, ``nh3``), any other output kind than text, PNG/JPEG/GIF images (no JavaScript, SVG, LaTeX, widget
    views...) is dropped, output and cell metadata other than nbgrader's and non-image attachments are removed.
    Runs after execution in autograde (so the stored notebook the formgrader renders carries no live script) and
    again before feedback. Then the notebook is bounded (``max_notebook_bytes``): the largest outputs are
    replaced by a note until it fits."""

    max_notebook_bytes = Integer(20 << 20, help="largest autograded notebook, in bytes").tag(config=True)
    _language = "en"  # of the notebook being sanitised: the notes left in place of removed outputs

    def preprocess(self, nb, resources):
        self._language = language(nb)
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:
            cell.metadata = type(cell.metadata)({k: v for k, v in cell.metadata.items() if k == "nbgrader"})
            if "attachments" in cell:
                cell.attachments = type(cell.attachments)({
                    name: {m: v for m, v in bundle.items() if m in ("image/png", "image/jpeg", "image/gif")}
                    for name, bundle in cell.attachments.items() if isinstance(bundle, dict)})
            if cell.cell_type == "markdown":
                cell.source = clean_markdown(cell.source)
            elif cell.cell_type == "raw":
                cell.source = clean_html(cell.source)
                cell.metadata.pop("format", None)
            for out in cell.get("outputs", []):
                self._clean_output(out)
        self._bound(nb)
        return nb, resources

    def _clean_output(self, out) -> None:
        if "metadata" in out:
            out.metadata = type(out.metadata)()
        data = out.get("data")
        if data is None:
            return
        for mime in list(data):
            value = data[mime]
            value = "".join(value) if isinstance(value, list) else value
            if mime not in SAFE_MIME or not isinstance(value, str):
                del data[mime]
            elif mime == "text/html":
                data[mime] = clean_html(value)
            elif mime == "text/markdown":
                data[mime] = clean_markdown(value)
        if not data:
            data["text/plain"] = grader_tr("[output removed by the grader: only text and images are kept]",
                                           language=self._language)

    def _bound(self, nb) -> None:
        def size(obj):
            return len(json.dumps(obj, default=str))

        total = size(nb)
        if total <= self.max_notebook_bytes:
            return
        outputs = sorted(((size(o), c, i) for c in nb.cells for i, o in enumerate(c.get("outputs", []))),
                         key=lambda t: -t[0])
        for n, cell, i in outputs:
            if total <= self.max_notebook_bytes:
                break
            out = cell.outputs[i]
            if out.get("output_type") == "error" or out.get("name") == "stderr":
                continue  # the reason a test cell lost its points stays
            note = grader_tr("[output removed by the grader: the notebook was too large]", language=self._language)
            cell.outputs[i] = new_output("stream", name="stdout", text=note + "\n")
            total -= n
