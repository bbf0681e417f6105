"""Run hidden checks on one submission folder: the trusted side of the check protocol, as a command.

    python -I -m course.grading.run_check CHECK [CHECK ...] --submission FOLDER     (a one-time token on stdin)

Called by ``sr_utils.notebook.hidden_check`` from the test cells under plain ``nbgrader autograde`` (it is the
command of ``$SR_KIT_CHECK_COMMAND``, which ``nbgrader_config.py`` sets: :func:`.contract.check_command`), and by
the tests. This process never imports or executes student code: it starts the student side (:mod:`.student_side`)
as a separate process (unsandboxed here; the sandboxed grader ``python -m course.grade`` runs the same protocol
with that process in bubblewrap) and decides each check from its answers. For each check it prints
``<token> PASS <check>`` or ``<token> FAIL <check> <reason>`` (:data:`.contract.CHECK_PASS`, ``CHECK_FAIL``); the
exit code is 0 only when every check passed. The reason is in the language of the kernel that called it
(``$SR_KIT_LANGUAGE``, which a notebook's first cell sets): the notebook's.
"""
import sys
from pathlib import Path


def main(token: str, argv=None) -> int:
    import argparse
    import warnings

    from sr_utils.i18n import current_language

    from . import checks
    from .contract import CHECK_FAIL, CHECK_PASS

    ap = argparse.ArgumentParser(prog="python -I -m course.grading.run_check", description=__doc__)
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
        sys.stdout.write(f"{token} {CHECK_PASS} {name}\n" if passed else f"{token} {CHECK_FAIL} {name} {reason}\n")
    sys.stdout.flush()
    return 0 if all(passed for passed, _ in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.stdin.readline().strip() or "-"))
