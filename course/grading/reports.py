"""What a grading run reports: ``grades.csv`` (nbgrader's export, plus each student's report), ``breakdown.csv``
(one row per student and graded cell, with the reason a cell lost its points), ``summary.txt`` (histogram,
most-failed cells and checks, submissions needing attention) in ``course/grades/``, and the feedback pages."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import select
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course import intake
from course.gradebook_url import gradebook_url
from course.grading.contract import (AUTOGRADED_DIR, FEEDBACK_DONE, FEEDBACK_SERVER_MODULE, GRADES_DIR, STATE_DIR,
                                    SUBMITTED_DIR, VERDICTS_DIR, python_module)
from course.grading.permissions import FEEDBACK_MODE
from course.grading.trusted_processes import trusted_env, with_trusted_rlimits

REPORT_FILES = intake.handin.REPORT_FILES
FEEDBACK_TIMEOUT = 600  # seconds: one student's feedback
FEEDBACK_PER_PROCESS = 50  # students whose feedback one feedback_server process makes


def _cell_reasons(notebook: Path) -> dict[str, str]:
    """grade_id -> why the cell lost its points (first error, or stderr output), from an autograded notebook."""
    reasons = {}
    if not notebook.is_file():
        return reasons
    for cell in json.loads(notebook.read_text()).get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                reasons[gid] = f"{out.get('ename')}: {out.get('evalue')}"[:300]
                break
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                reasons[gid] = "wrote to stderr (a test cell with stderr output scores 0)"
                break
    return reasons


def breakdown(course_root: Path, assignment: str, students: list[str]) -> list[dict]:
    """One row per student and graded cell, read from the gradebook (the scores) and the autograded notebooks
    and hidden-check verdicts (the reasons)."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(gradebook_url(course_root)) as gb:
        for student in students:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                rows.append({"student": student, "notebook": "", "cell": "", "score": 0, "max_score": 0,
                             "auto_graded": False, "needs_manual_grade": True, "reason": "no submission graded"})
                continue
            for nb in sorted(sub.notebooks, key=lambda n: n.name):
                reasons = _cell_reasons(course_root / AUTOGRADED_DIR / student / assignment /
                                        f"{nb.name}.ipynb")
                for g in sorted(nb.grades, key=lambda g: g.name):
                    rows.append({"student": student, "notebook": nb.name, "cell": g.name,
                                 "score": g.score, "max_score": g.max_score,
                                 "auto_graded": g.cell_type == "code" and g.auto_score is not None,
                                 "needs_manual_grade": g.needs_manual_grade,
                                 "reason": "" if g.score == g.max_score else reasons.get(g.name, "")})
    return rows


def _failed_checks(state: Path, students: list[str]) -> Counter:
    counts = Counter()
    for student in students:
        for f in sorted((state / VERDICTS_DIR / student).glob("*.json")):
            for name, v in json.loads(f.read_text()).items():
                counts[name] += not v["passed"]
    return counts


def summarise(rows: list[dict], results: list[dict], failed_checks: Counter, reports: dict | None = None) -> str:
    """Score histogram, most-failed cells and checks, submissions needing attention (``reports``: {student:
    :func:`report_of`}, a missing report is one reason), as text."""
    totals, maxima = Counter(), Counter()
    for r in rows:
        if r["auto_graded"]:
            totals[r["student"]] += r["score"] or 0
            maxima[r["student"]] += r["max_score"] or 0
    auto_max = max(maxima.values(), default=0)
    lines = [f"Autograded score (out of {auto_max:g}), {len(results)} submissions:"]
    bins = 10
    hist = Counter(min(bins - 1, int(bins * totals[r["student"]] / auto_max)) if auto_max else 0 for r in results)
    for b in range(bins):
        lo, hi = auto_max * b / bins, auto_max * (b + 1) / bins
        lines.append(f"  {lo:5.1f}-{hi:5.1f} | {'#' * hist[b]} {hist[b] or ''}")
    lost = Counter(f"{r['notebook']}/{r['cell']}" for r in rows if r["auto_graded"] and r["score"] < r["max_score"])
    lines.append("Test cells most often failed:" + ("" if lost else " none"))
    lines += [f"  {n:3d}  {cell}" for cell, n in lost.most_common(8)]
    lines.append("Hidden checks most often failed:" + ("" if any(failed_checks.values()) else " none"))
    lines += [f"  {n:3d}  {name}" for name, n in failed_checks.most_common(8) if n]
    reports = reports or {}
    if reports:
        handed = Counter(reports.values())
        lines.append(f"Written reports: {len(reports) - handed['']} of {len(reports)} handed in (report.md: "
                     f"{handed['report.md']}, report.pdf: {handed['report.pdf']})")
    attention = [(r["student"], r["status"]) for r in results if r["status"] != "ok"]
    attention += [(r["student"], r["attention"]) for r in results if r.get("attention")]
    attention += [(s, f"no report handed in ({' or '.join(REPORT_FILES)} next to the notebooks)")
                  for s, f in sorted(reports.items()) if not f]
    lines.append(f"Needing manual attention ({len(attention)}):" if attention else "No submission needs attention "
                 "beyond the manually graded answers.")
    lines += [f"  {student}: {why}" for student, why in attention]
    return "\n".join(lines)


def report_of(submitted: Path, student: str, assignment: str) -> str:
    """The report file a student handed in (``report.md`` or ``report.pdf``), or ``""``."""
    return intake.handin.report_status(submitted / student / assignment)["file"]


NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_safe(value):
    """A CSV cell a spreadsheet will not run (OWASP CSV injection): text starting with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a leading ``'``; numbers are kept as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.match(value):
        return "'" + value
    return value


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    """``rows`` into the CSV file ``path`` (columns ``fields``, cells :func:`csv_safe`), replaced atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows({k: csv_safe(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)


def write_outputs(course_root: Path, assignment: str, students: list[str], results: list[dict]) -> dict:
    """Write ``course/grades/`` for ``students`` (``results``: one dict per submission of the run, ``student``,
    ``status``, ``seconds``). Returns the paths written (``breakdown``, ``grades``, ``summary``) and
    ``summary_text``."""
    out_dir = course_root / GRADES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = breakdown(course_root, assignment, students)
    write_csv(out_dir / "breakdown.csv", rows, list(rows[0]) if rows else ["student"])
    # nbgrader's own CSV export (what `nbgrader export` runs), here: it reads only the gradebook (no process start)
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    with Gradebook(gradebook_url(course_root)) as gb:
        CsvExportPlugin(to=str(out_dir / "grades.csv")).export(gb)
    with open(out_dir / "grades.csv", newline="") as f:  # nbgrader's export does not neutralise formulas
        exported = list(csv.DictReader(f))
    submitted = course_root / SUBMITTED_DIR
    reports = {s: report_of(submitted, s, assignment) for s in students}
    for row in exported:  # the report each student handed in, beside the scores
        if row.get("assignment") == assignment:
            row["report"] = reports.get(row.get("student_id"), "")
    fields = list(exported[0]) if exported else ["student_id"]
    write_csv(out_dir / "grades.csv", exported, fields + ["report"] * ("report" not in fields))
    summary = summarise(rows, results, _failed_checks(course_root / STATE_DIR, students), reports)
    summary += submitted_without_outputs(course_root / AUTOGRADED_DIR, assignment, students)
    (out_dir / "summary.txt").write_text(summary + "\n")
    return {"breakdown": out_dir / "breakdown.csv", "grades": out_dir / "grades.csv",
            "summary": out_dir / "summary.txt", "summary_text": summary}


def submitted_without_outputs(autograded: Path, assignment: str, students: list[str]) -> str:
    """Summary lines for notebooks submitted without the outputs the course asks for (the flag that
    :mod:`course.grading.submitted_outputs` leaves in each autograded notebook)."""
    from course.grading.submitted_outputs import missing_outputs

    lines = [f"  {student}: {nb.stem} submitted without outputs: {', '.join(missing)}"
             for student in students for nb in sorted((autograded / student / assignment).glob("*.ipynb"))
             if (missing := missing_outputs(json.loads(nb.read_text())))]
    return f"\nSubmitted without outputs ({len(lines)}):\n" + "\n".join(lines) if lines else ""


class FeedbackServer:
    """One ``feedback_server`` process (:mod:`.feedback_server`) of the course, under the trusted rlimits: it makes
    each student's feedback as ``nbgrader generate_feedback ASSIGNMENT --student ID`` would (feedback HTML in
    ``course/feedback/``, hidden tests cleared), nbgrader imported once. Forked from the run's fork server
    ``forks`` (:class:`.trusted_forkserver_client.TrustedForkServer`, which has nbgrader imported already) where
    there is one, else a new Python. A student whose feedback takes longer than :data:`FEEDBACK_TIMEOUT` seconds is
    skipped (said on stdout) and the process replaced; so is the process after :data:`FEEDBACK_PER_PROCESS`
    students (what a long run leaks stays bounded)."""

    def __init__(self, course_root: Path, assignment: str, forks=None):
        self.course_root, self.assignment, self.forks = Path(course_root), assignment, forks
        self.proc = None  # subprocess.Popen or a forked process (pid, poll, wait)
        self.stdin, self.stdout_fd = None, -1  # (a binary file; a descriptor)
        self.served, self._pending = 0, b""

    def _start(self) -> None:
        args = [self.assignment, "--force", f"--GenerateFeedback.permissions={FEEDBACK_MODE:o}"]
        self.served, self._pending = 0, b""
        if self.forks is not None:
            try:
                self._fork(args)
                return
            except OSError:  # (the fork server ended, or refused: a new Python, as without one)
                pass
        self.proc = subprocess.Popen(with_trusted_rlimits(python_module(FEEDBACK_SERVER_MODULE, *args)),
                                     cwd=self.course_root, env=trusted_env(self.course_root), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.stdin, self.stdout_fd = self.proc.stdin, self.proc.stdout.fileno()

    def _fork(self, args: list[str]) -> None:
        from course.grading.trusted_forkserver import FEEDBACK
        from course.grading.trusted_processes import TRUSTED_CPU_SECONDS, TRUSTED_MEMORY_BYTES

        ids_read, ids_write = os.pipe()
        done_read, done_write = os.pipe()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            self.proc = self.forks.spawn(FEEDBACK, args, trusted_env(self.course_root), self.course_root,
                                         (TRUSTED_MEMORY_BYTES, TRUSTED_CPU_SECONDS),
                                         {0: ids_read, 1: done_write, 2: null})
        except OSError:
            os.close(ids_write)
            os.close(done_read)
            raise
        finally:
            for fd in (ids_read, done_write, null):
                os.close(fd)
        self.stdin, self.stdout_fd = os.fdopen(ids_write, "wb"), done_read

    def feedback(self, student: str) -> bool:
        """Make ``student``'s feedback; False if it failed or took too long."""
        if self.proc is None or self.proc.poll() is not None or self.served >= FEEDBACK_PER_PROCESS:
            self.close()
            self._start()
        self.served += 1
        try:
            self.stdin.write(student.encode() + b"\n")
            self.stdin.flush()
        except OSError:
            self.close()
            return False
        deadline = time.monotonic() + FEEDBACK_TIMEOUT
        while True:
            if b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                words = line.decode(errors="replace").split()
                if words[:2] == [FEEDBACK_DONE, student]:
                    return words[2:] == ["0"]
                continue
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.stdout_fd], [], [], left)[0]:
                print(f"  feedback for {student} took longer than {FEEDBACK_TIMEOUT} s: skipped")
                self.close()
                return False
            chunk = os.read(self.stdout_fd, 4096)
            if not chunk:  # the process ended (a limit, a crash)
                self.close()
                return False
            self._pending += chunk

    def close(self) -> None:
        """Let the process end (stdin closed), killed if it does not within a few seconds."""
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if isinstance(self.proc, subprocess.Popen):
            self.proc.stdout.close()
        else:
            os.close(self.stdout_fd)
        self.proc, self.stdin, self.stdout_fd = None, None, -1


class FeedbackQueue:
    """Feedback made while the class is still being graded: :meth:`add` (called from the workers' threads as each
    submission is done) queues the submissions graded "ok", whose feedback one thread makes beside the workers, in
    one :class:`FeedbackServer` (forked from ``forks``, the run's fork server, where given); leaving the ``with``
    block waits until the queue is done. ``enabled=False``: no feedback."""

    def __init__(self, course_root: Path, assignment: str, enabled: bool = True, forks=None):
        self.course_root, self.assignment, self.enabled = course_root, assignment, enabled
        self._pool: ThreadPoolExecutor | None = None
        self._server = FeedbackServer(course_root, assignment, forks)
        self._queued = []

    def __enter__(self) -> "FeedbackQueue":
        if self.enabled:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback")
        return self

    def add(self, result: dict) -> None:
        if self._pool is not None and result["status"] == "ok":
            self._queued.append(self._pool.submit(self._server.feedback, result["student"]))

    def __exit__(self, kind, *_) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)  # (interrupted: no more feedback)
            self._server.close()
            if kind is None:
                for queued in self._queued:
                    queued.result()  # (raises what a feedback run raised)
