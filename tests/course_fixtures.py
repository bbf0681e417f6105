"""Helpers shared by the tests: tiny nbgrader assignments, Jupyter servers, the commands a Markdown file shows,
a student kit cloned and set up as a student sets it up, free ports, skip-or-fail, browser screenshots."""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


def nbgrader_cell(kind: str, source: str, **meta):
    """A code (``kind="code"``) or markdown cell with nbgrader metadata (schema 3): unlocked, not a solution, not
    graded, not a task, unless ``meta`` says otherwise (``grade_id`` is required by nbgrader)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    cell = (new_code_cell if kind == "code" else new_markdown_cell)(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False, "grade": False,
                                 "task": False, **meta}
    return cell


def stop_process_group(proc: subprocess.Popen) -> None:
    """End ``proc``'s process group (it was started with ``start_new_session=True``): TERM, then KILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def shell_lines(path: Path) -> list[str]:
    """Command lines of the ```bash blocks of a Markdown file (continuations joined, comments dropped)."""
    lines, block = [], None
    for raw in path.read_text().splitlines():
        if raw.startswith("```"):
            block = raw[3:].strip() if block is None else None
            continue
        if block in ("bash", "sh", "shell"):
            line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line
            elif line:
                lines.append(line)
    return lines


def shell_commands(line: str) -> list[list[str]]:
    """The kit's commands in one shell line (``a && b``, ``sh -c '...'``), as argv lists."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out, words = [], []
    for token in [*lexer, "&&"]:
        if token in ("&&", "||", ";", "|"):
            if len(words) >= 3 and words[0] == "sh" and words[1] == "-c":
                out += shell_commands(words[2])
            elif words:
                out.append(words)
            words = []
        else:
            words.append(token)
    return out


def set_up_student_kit(workdir: Path) -> tuple[Path, Path]:
    """Build the student kit (``course.student_kit``), clone its git repository into ``workdir/kit`` as a student
    would, and run the kit's own ``make setup`` there. Returns ``(clone, python of the kit's environment)``.

    A fresh environment would download and install PyTorch again (a CUDA build of several GB here): the kit's
    environment is created first with this one's packages visible through a ``.pth`` file, so ``make setup``
    installs the kit itself with pip and finds its dependencies already there. This environment's own editable
    install of the repository is not visible (its ``.pth`` hooks are not read): ``sr_utils`` comes from the clone."""
    from course.student_kit import build_student_kit

    built = build_student_kit(workdir / "built", log=lambda *a: None)
    clone = workdir / "kit"
    subprocess.run(["git", "clone", "-q", str(built["folder"]), str(clone)], check=True, capture_output=True)
    venv = workdir / "kit-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_course_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run(["make", "setup", f"VENV={venv}"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"the kit's `make setup` failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return clone, python


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_or_fail(msg: str) -> None:
    """Skip with ``msg`` where what a test needs is absent; fail instead under ``CI`` (nothing skips silently)."""
    if os.environ.get("CI"):
        pytest.fail("CI is set but " + msg)
    pytest.skip(msg)


def save_screenshot(browser, name: str, folder: Path) -> Path:
    """Save a screenshot of ``browser`` (Selenium) as ``folder/<name>.png`` (the test artifacts); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def wait_for(browser, condition, timeout: float, what: str, folder: Path):
    """Wait until ``condition(driver)`` is truthy and return it; on time-out, keep a screenshot in ``folder`` and
    fail naming ``what``."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.5).until(condition)
    except Exception:
        save_screenshot(browser, "failed-" + re.sub(r"\W+", "-", what)[:40], folder)
        raise AssertionError(f"timed out waiting for {what}") from None

