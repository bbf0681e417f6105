"""Helpers shared by the tests: tiny nbgrader assignments, notebook cells' text and the solution's lines, Jupyter
servers, the commands a Markdown file shows, a student kit cloned and set up as a student sets it up, the sample
data, free ports, skip-or-fail, headless Chromium and its screenshots."""
from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
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


def cell_source(cell: dict) -> str:
    """A notebook cell's text (nbformat stores it as one string or as a list of lines)."""
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def solution_lines(notebooks: list[Path]) -> set[str]:
    """Every line (12 characters or more, stripped) between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` in the
    source ``notebooks`` that their instructions (their markdown cells, read in the order given) do not already
    spell out, e.g. ``optimizer.zero_grad()`` is given: what no message to a student may quote."""
    cells = [cell for path in notebooks for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]]
    handout = "".join(cell_source(c) for c in cells if c["cell_type"] == "markdown")
    lines = set()
    for cell in cells:
        inside = False
        for line in cell_source(cell).splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) >= 12 and line.strip() not in handout:
                lines.add(line.strip())
    return lines


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
    environment is created first, without a pip of its own, with this one's packages visible through a ``.pth``
    file, so ``make setup`` installs the kit itself with this environment's pip and finds its dependencies already
    there. This environment's own editable install of the repository is not visible (its ``.pth`` hooks are not
    read): ``sr_utils`` comes from the clone."""
    from course.student_kit import build_student_kit

    built = build_student_kit(workdir / "built", log=lambda *a: None)
    clone = workdir / "kit"
    subprocess.run(["git", "clone", "-q", str(built["folder"]), str(clone)], check=True, capture_output=True)
    venv = workdir / "kit-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "_course_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run(["make", "setup", f"VENV={venv}"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"the kit's `make setup` failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return clone, python


@functools.cache
def _sample_data_template() -> Path:
    """The sample data built by :func:`data_tools.samples.ensure_sample_data` in a private folder of this test
    process (removed when it exits; not by a child forked from it)."""
    from data_tools.samples import ensure_sample_data

    folder, owner = Path(tempfile.mkdtemp(prefix="sr-kit-samples-")), os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    return ensure_sample_data(folder / "data", progress=False)


def sample_data(dest: Path) -> Path:
    """The bundled sample data, prepared, in ``dest`` (new or empty), as ``ensure_sample_data(dest)`` makes it:
    built once per test process and copied (its lists and caches hold relative paths), since building it costs
    ~2 s of CPU and a test folder of it is made ~15 times in a run of the suite. Returns ``dest``."""
    shutil.copytree(_sample_data_template(), dest, dirs_exist_ok=True)
    return Path(dest)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """A Jupyter server started by ``argv`` (a ``jupyter lab ...`` or ``make lab ...``) that is given the port and
    the token (``{port}``, ``{token}`` in ``argv``), in its own process group; ready once ``/api/status`` answers."""

    def __init__(self, argv: list[str], cwd: Path, env: dict, log: Path):
        self.port, self.token = free_port(), os.urandom(12).hex()
        self.argv = [a.format(port=self.port, token=self.token) for a in argv]
        self.log = log
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=10):
                    return
            except (ConnectionError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{' '.join(self.argv)} did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}{'&' if '?' in path else '?'}token={self.token}"

    def get(self, path: str):
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        stop_process_group(self.proc)


def jupyter_lab_argv(root_dir: Path) -> list[str]:
    """``jupyter lab`` as ``make lab`` starts it (``--allow-root`` only as root), serving ``root_dir`` on 127.0.0.1
    with a token and ``window.jupyterapp``: the ``argv`` of a :class:`JupyterServer`."""
    from course.paths import BIN

    root = str(root_dir).replace("{", "{{").replace("}", "}}")  # argv is formatted with the port and token
    return [str(BIN / "jupyter"), "lab", "--no-browser", "--port={port}", "--ip=127.0.0.1",
            "--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else [])


def poll_until(condition, seconds: float, what: str, log: Path | None = None, fail: bool = True,
               every: float = 0.2):
    """``condition()``'s first true value within ``seconds`` (a process, a server); else a failure naming ``what``
    and showing the end of ``log`` (or None, with ``fail`` False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    if not fail:
        return None
    shown = log.read_text(errors="replace")[-3000:] if log is not None and log.is_file() else "(no log)"
    pytest.fail(f"no {what} within {seconds:.0f} s; {log.name if log else ''}: {shown}")


def process_running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def skip_or_fail(msg: str) -> None:
    """Skip with ``msg`` where what a test needs is absent; fail instead under ``CI`` (nothing skips silently)."""
    if os.environ.get("CI"):
        pytest.fail("CI is set but " + msg)
    pytest.skip(msg)


def find_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) of the distribution; installed with apt-get when root. Skips with the reason when they
    cannot be had, or fails when ``CI`` is set (the browser tests must never silently skip there)."""
    def found():
        return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")

    browser, driver = found()
    why = ""
    if not (browser and driver) and os.geteuid() == 0 and shutil.which("apt-get"):
        try:
            subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], capture_output=True,
                           timeout=600, check=False)
        except subprocess.TimeoutExpired:
            why = " (apt-get install timed out)"
        browser, driver = found()
    if browser and driver:
        return browser, driver
    skip_or_fail("headless Chromium and chromedriver are not installed (Debian/Ubuntu: apt-get install chromium "
                 f"chromium-driver, or `make browser-tools` as root){why}")


def headless_chromium(binary: str, driver: str, *, languages: str | None = None, size: str = "1280,900",
                      offline: bool = True, browser_log: bool = False, page_load_timeout: float = 60):
    """Headless Chromium driven by Selenium (``binary``, ``driver``: :func:`find_chromium`'s), ``size`` pixels wide
    and high. ``languages``: its Accept-Language (e.g. ``"zh-CN,zh"``; its first is the interface's ``--lang``);
    ``offline``: every host but this machine is unreachable (a CDN fails as on an exam-room network);
    ``browser_log``: keep the page's console log (``get_log("browser")``). The caller quits it."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={size}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(arg)
    if languages:
        opts.add_argument(f"--lang={languages.split(',')[0]}")
        opts.add_experimental_option("prefs", {"intl.accept_languages": languages})
    if offline:
        opts.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    b.set_page_load_timeout(page_load_timeout)
    return b


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



def tiny_assignment_notebook():
    """A source notebook of the smallest nbgrader assignment the tests grade: a locked cell, a solution cell, one
    autograded test (1 point) and a written answer (2 points, graded by hand)."""
    from nbformat.v4 import new_notebook

    cell = nbgrader_cell
    nb = new_notebook(cells=[
        cell("code", "x = 2\nprint('re-run of the grader', x)", grade_id="plots", locked=True),
        cell("code", "### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION", grade_id="answer_code", solution=True),
        cell("code", "assert y == 3", grade_id="test_y", grade=True, points=1, locked=True),
        cell("markdown", "Discuss.\n\n### BEGIN SOLUTION\nreference answer\n### END SOLUTION", grade_id="report",
             grade=True, solution=True, points=2),
    ])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb
