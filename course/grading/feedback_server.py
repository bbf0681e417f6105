"""The feedback of a grading run, made in one trusted process: nbgrader is imported once, not once per student.

    python -I -m course.grading.feedback_server ASSIGNMENT [NBGRADER OPTION ...]    (in the course root)

It reads student ids on stdin, one per line; for each it runs ``nbgrader generate_feedback ASSIGNMENT --student ID
OPTION...`` in this process (nbgrader's own command line, its application made afresh for each student, the
course's ``nbgrader_config.py`` read as the command reads it) and then writes ``FEEDBACK_DONE ID EXIT_CODE`` on
stdout (:data:`.contract.FEEDBACK_DONE`). nbgrader's own output goes to stderr. It ends when stdin ends.

Started by :class:`.reports.FeedbackQueue` under the trusted rlimits; like ``nbgrader generate_feedback``, it reads
the graded notebooks (student work, as data) and never executes student code. Each student's feedback in a
process of its own would import nbgrader and nbconvert again (~3 s of CPU each: a class of 300 spends a quarter of
an hour of CPU on imports).
"""
from __future__ import annotations

import os
import sys

from .contract import FEEDBACK_DONE


def generate_one(assignment: str, student: str, options: list[str]) -> int:
    """``nbgrader generate_feedback ASSIGNMENT --student STUDENT OPTIONS`` in this process; its exit code."""
    from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp
    from nbgrader.apps.nbgraderapp import NbGraderApp

    for app in (NbGraderApp, GenerateFeedbackApp):  # fresh applications, as in a process of their own
        app.clear_instance()
    sys.argv = ["nbgrader", "generate_feedback", assignment, "--student", student, *options]
    try:
        NbGraderApp.launch_instance()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python -I -m course.grading.feedback_server ASSIGNMENT [NBGRADER OPTION ...]\n")
        return 2
    assignment, options = argv[0], argv[1:]
    import nbgrader.converters  # noqa: F401  (what generate_feedback imports: once, before the first student)

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nbgrader's own output to stderr: stdout carries only FEEDBACK_DONE lines
    for line in sys.stdin:
        student = line.strip()
        if student:
            code = generate_one(assignment, student, options)
            out.write(f"{FEEDBACK_DONE} {student} {code}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
