"""Run hidden checks on one submission folder: the trusted side of the check protocol, as a command.

    python -I course/grading/run_check.py CHECK [CHECK ...] --submission FOLDER     (a one-time token on stdin)

Called by ``sr_utils.notebook.hidden_check`` from the test cells under plain ``nbgrader autograde``, and by the
tests. This process never imports or executes student code: it starts ``student_side.py`` as a separate process
(unsandboxed here; the sandboxed grader ``python -m course.grade`` runs the same protocol with that process in
bubblewrap) and decides each check from its answers. For each check it prints ``<token> PASS <check>`` or
``<token> FAIL <check> <reason>``; the exit code is 0 only when every check passed. The reason is in the language
of the kernel that called it (``$SR_KIT_LANGUAGE``, which a notebook's first cell sets): the notebook's.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # this folder (checks) and the kit (sr_utils, course)


def main(token: str, argv=None) -> int:
    import argparse
    import warnings

    import checks
    from sr_utils.i18n import current_language

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("check", nargs="+", choices=sorted(checks.CHECKS))
    ap.add_argument("--submission", type=Path, required=True, help="folder holding the submitted notebooks")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per check")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sys.stdout.reconfigure(errors="backslashreplace")  # (a reason in Chinese on a stdout that cannot encode it)
    verdicts = checks.run_checks(checks.CHECKS, args.check, args.submission.resolve(), timeout=args.timeout,
                                 language=current_language())
    for name in args.check:
        passed, reason = verdicts[name]
        sys.stdout.write(f"{token} PASS {name}\n" if passed else f"{token} FAIL {name} {reason}\n")
    sys.stdout.flush()
    return 0 if all(passed for passed, _ in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.stdin.readline().strip() or "-"))
