"""Both course modes: the students' Assignments panel and nbgrader's exchange.

(a) a student's own copy (local or LMS folders): the Assignments panel's server answers without an error.
(b) a shared machine, as two Unix users: the instructor (root) releases with ``nbgrader release_assignment``; a
throw-away student account sees superres and a tiny stand-in released in its Assignments panel (the panel's server
extension, and the panel itself in headless Chromium), fetches, solves and submits the stand-in with nbgrader; the
instructor collects and grades it with the kit's grading command (same configuration and commands as superres).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course.paths import BIN, tool, tool_env
from course_fixtures import find_chromium, free_port, headless_chromium, skip_or_fail, stop_process_group
from mos_fixtures import sample_ref  # noqa: F401 (fixture)
from unix_accounts import as_user as _as_user
from unix_accounts import run as _run
from unix_accounts import student_account  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def _course(base: Path) -> Path:
    """A course copy under ``base`` (readable by others) with superres and the tiny assignment generated."""
    import nbformat

    from course.demo import copy_course
    from course_fixtures import tiny_assignment_notebook

    root = copy_course(base / "course-root")
    (root / "source" / "tiny").mkdir(parents=True)
    nbformat.write(tiny_assignment_notebook(), root / "source" / "tiny" / "03_train.ipynb")
    for assignment in ("superres", "tiny"):
        _run([str(NBGRADER), "generate_assignment", assignment, "--force"], root)
    return root


def _env(**extra) -> dict:
    return tool_env(**extra)


class Lab:
    """JupyterLab with nbgrader's extensions (its Assignments panel and the server extension behind it)."""

    def __init__(self, cwd: Path, env: dict, user: str | None, log: Path):
        self.port, self.token = free_port(), os.urandom(8).hex()
        argv = [str(BIN / "jupyter"), "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={cwd}",
                "--LabApp.expose_app_in_browser=True"]
        if user:
            argv = _as_user(user, env, argv)
        elif os.geteuid() == 0:
            argv.append("--allow-root")
        self.log = log
        self.proc = subprocess.Popen(argv, cwd=cwd, env=None if user else env, stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def get(self, path: str):
        deadline = time.monotonic() + 120
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                             headers={"Authorization": f"token {self.token}"})
                with urllib.request.urlopen(req, timeout=60) as r:
                    return json.loads(r.read())
            except (ConnectionError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer: {self.log.read_text()[-3000:]}") from None
                time.sleep(0.5)

    def stop(self):
        """End the server's own process group (runuser, env and the server started by this object)."""
        stop_process_group(self.proc)


def test_mode_a_the_assignments_panel_answers_without_an_error(tmp_path):
    """A student's own copy, no exchange set up by anyone: the panel's server lists no course, and no error."""
    root = _course(tmp_path)
    work = root / "release" / "tiny"
    lab = Lab(work, _env(JUPYTER_CONFIG_PATH=str(root / "course" / "jupyter"), HOME=str(tmp_path)), None,
              tmp_path / "lab.log")
    try:
        courses = lab.get("/courses")
        assert courses == {"success": True, "value": []}, courses
        listed = lab.get("/assignments?course_id=sr-course-kit")
        assert listed == {"success": True, "value": []}, listed
    finally:
        lab.stop()
    assert (root / "course" / "exchange").is_dir()


def test_mode_b_release_fetch_submit_collect_grade_as_two_users(student_account):
    from class_batch import require_bwrap

    from nbgrader.api import Gradebook

    require_bwrap()
    name, home, base = student_account
    root = _course(base)
    exchange = root / "course" / "exchange"
    for assignment in ("superres", "tiny"):
        _run([str(NBGRADER), "release_assignment", assignment, "--force"], root)
    assert (exchange / "sr-course-kit" / "outbound" / "tiny" / "03_train.ipynb").is_file()
    assert (exchange / "sr-course-kit" / "outbound" / "superres" / "01_models.ipynb").is_file()
    student_env = {"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin",
                   "JUPYTER_CONFIG_PATH": str(root / "course" / "jupyter")}
    # the Assignments panel of the student's JupyterLab lists both as released
    lab = Lab(home, student_env, name, base / "lab.log")
    try:
        assert lab.get("/courses") == {"success": True, "value": ["sr-course-kit"]}
        listed = lab.get("/assignments?course_id=sr-course-kit")
        assert listed["success"] and sorted((a["assignment_id"], a["status"]) for a in listed["value"]) == \
            [("superres", "released"), ("tiny", "released")], listed
        _panel_in_chromium(lab)
    finally:
        lab.stop()
    # the student fetches, solves and submits with nbgrader, as their own user
    _run([str(NBGRADER), "fetch_assignment", "tiny"], home, name, student_env)
    fetched = home / "tiny" / "03_train.ipynb"
    assert fetched.stat().st_uid == pwd_uid(name)
    solve = ("import json, sys; p = sys.argv[1]; nb = json.load(open(p)); "
             "nb['cells'][1]['source'] = 'y = x + 1'; json.dump(nb, open(p, 'w'))")
    _run([sys.executable, "-c", solve, str(fetched)], home, name, student_env)
    _run([str(NBGRADER), "submit", "tiny"], home, name, student_env)
    # a student cannot list the inbound folder (the others' submissions)
    peek = subprocess.run(_as_user(name, student_env, ["ls", exchange / "sr-course-kit" / "inbound"]),
                          capture_output=True, text=True)
    assert peek.returncode != 0 and "Permission denied" in peek.stderr
    # the instructor collects and grades with the kit's grading command
    _run([str(NBGRADER), "collect", "tiny"], root)
    assert (root / "course" / "submitted" / name / "tiny" / "03_train.ipynb").is_file()
    _run([sys.executable, "-m", "course.grade", "tiny", "--course-dir", str(root), "--workers", "1"], REPO)
    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db")) as gb:
        nb = gb.find_submission_notebook("03_train", "tiny", name)
        scores = {g.name: (g.score, g.needs_manual_grade) for g in nb.grades}
        assert scores == {"test_y": (1.0, False), "report": (0.0, False)}, scores  # (an unchanged answer scores 0)


def test_mode_b_a_whole_hand_in_travels_and_is_rated(student_account, sample_ref):
    """A student's superres folder as left after a real run -- notebooks, report.md, results/test_table.csv,
    submission/<set>/*.png, the curves, a 300 MB checkpoint, data/ -- goes through nbgrader submit and collect
    (course/jupyter/handin.py): the hand-in arrives in course/submitted/<student>/superres/, checkpoints and data
    do not, and the human evaluation's collection and the class results find that student's pictures and table."""
    import csv

    from course.grading.collection import intake_submitted
    from course.mos.collect import collect
    from course.class_results import class_table
    from mos_fixtures import save, student_image

    name, home, base = student_account
    root = _course(base)
    _run([str(NBGRADER), "release_assignment", "superres", "--force"], root)
    student_env = {"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin",
                   "JUPYTER_CONFIG_PATH": str(root / "course" / "jupyter")}
    _run([str(NBGRADER), "fetch_assignment", "superres"], home, name, student_env)
    work = home / "superres"
    assert sorted(p.name for p in work.glob("*.ipynb")) == sorted(p.name for p in (root / "release" /
                                                                                   "superres").glob("*.ipynb"))
    # what the student's run left (written here, then handed to the student's account)
    split = json.loads(Path(sample_ref.list_file).read_text())["split"]
    (work / "report.md").write_text("# Report\n\nSRGAN: 26.0 dB on the samples.\n")
    (work / "results").mkdir()
    with open(work / "results" / "test_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["set", "method", "psnr", "ssim"])
        w.writeheader()
        w.writerow({"set": split, "method": "SRGAN", "psnr": 26.0, "ssim": 0.7})
    for n in sample_ref.names:
        save(student_image(sample_ref, n, 6), work / "submission" / sample_ref.folder / f"{n}.png")
    save(student_image(sample_ref, sample_ref.names[0], 1), work / "checkpoints" / "srgan" / "curves.png")
    with open(work / "checkpoints" / "srgan" / "best.pth", "wb") as f:
        f.truncate(300 << 20)  # (sparse: what a real checkpoint folder weighs, without the disk)
    (work / "data" / "DIV2K").mkdir(parents=True)
    (work / "data" / "DIV2K" / "0001.png").write_bytes(b"\x89PNG not handed in")
    (work / "models.py").write_text("# generated\n")
    subprocess.run(["chown", "-R", f"{name}:{name}", str(work)], check=True)
    said = _run([str(NBGRADER), "submit", "superres"], home, name, student_env)
    assert "left out" in said and "checkpoints/" in said and "data/" in said, said[-2000:]
    _run([str(NBGRADER), "collect", "superres"], root)
    got = root / "course" / "submitted" / name / "superres"
    arrived = sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file())
    want = sorted([*(p.name for p in work.glob("*.ipynb")), "report.md", "results/test_table.csv",
                   "checkpoints/srgan/curves.png", "timestamp.txt", "submission_secret.txt",
                   *(f"submission/{sample_ref.folder}/{n}.png" for n in sample_ref.names)])
    assert arrived == want, arrived
    assert (got / "report.md").read_bytes() == (work / "report.md").read_bytes()
    inbound = list((root / "course" / "exchange" / "sr-course-kit" / "inbound").glob(f"{name}+superres+*"))
    assert inbound and not any((i / "checkpoints" / "srgan" / "best.pth").exists() for i in inbound)
    # grading takes it (nothing refused at intake), the human evaluation and the class results find it
    assert intake_submitted(root / "course" / "submitted", "superres") == ([name], {})
    rated = collect(root / "course" / "submitted", sample_ref, log=lambda *_: None)
    assert list(rated.accepted) == [name] and not rated.rejected, rated.rejected
    assert sorted(rated.accepted[name]) == sorted(sample_ref.names)
    rows = {r["student"]: r for r in class_table(root / "course" / "submitted", sample_ref)}
    assert rows[name]["reported_psnr"] == 26.0 and rows[name]["psnr"] != "" and not rows[name]["note"], rows[name]


def pwd_uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _panel_in_chromium(lab: Lab) -> None:
    """The student's Assignments panel in headless Chromium lists superres under "Released assignments"."""
    from selenium.webdriver.common.by import By
    from test_course_browser import _lab_command, _shot, _wait

    b = headless_chromium(*find_chromium(), browser_log=True)
    try:
        b.get(lab.url("lab"))
        _wait(b, lambda d: d.execute_script("return !!window.jupyterapp"), 120, "JupyterLab")
        _wait(b, lambda d: d.execute_script(
            "return window.jupyterapp.commands.hasCommand('nbgrader:open-assignment-list')"), 60, "the panel")
        assert _lab_command(b, "nbgrader:open-assignment-list") == "ok"
        _wait(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#released_assignments_list .item_name, "
                                                              "#released_assignments_list .list_item"), 60,
              "the released assignments in the panel")
        released = b.find_element(By.ID, "released_assignments_list").text
        _shot(b, "student-exchange-assignments-panel")
        assert "superres" in released and "tiny" in released, released
        assert "Error fetching courses" not in b.find_element(By.TAG_NAME, "body").text
    finally:
        b.quit()


def _make_lab_starts(user: str | None, env: dict, log: Path) -> None:
    """Run ``make lab`` (its recipe; the install stamp is taken as up to date) until its server answers (as root
    Jupyter exits at once unless given --allow-root)."""
    port, token = free_port(), os.urandom(8).hex()
    argv = ["make", "-o", ".venv/.installed-instructor", "lab",
            f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"]
    argv = _as_user(user, env, argv) if user else argv
    proc = subprocess.Popen(argv, cwd=REPO, env=None if user else env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=10) as r:
                    assert r.status == 200
                    break
            except (ConnectionError, urllib.error.URLError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"make lab did not start ({'as ' + user if user else 'as root'}):\n"
                                         + log.read_text()[-3000:]) from None
                time.sleep(0.5)
    finally:
        stop_process_group(proc)


def test_make_lab_starts_as_root_and_as_a_user(student_account):
    """The students' command: as root it adds --allow-root (Jupyter refuses root without it), as a user it does not."""
    if not (REPO / ".venv" / "bin" / "jupyter").exists() or BIN != REPO / ".venv" / "bin":
        skip_or_fail("make lab runs the repository's .venv, which is not the one running these tests")
    name, home, base = student_account
    _make_lab_starts(None, _env(HOME=str(base)), base / "lab-root.log")
    _make_lab_starts(name, {"HOME": str(home), "PATH": "/usr/bin:/bin"}, base / "lab-user.log")
    # without the Makefile's --allow-root, root is refused: the check above can fail
    refused = subprocess.run([str(BIN / "jupyter"), "lab", "--no-browser", "--port=1"], cwd=base,
                             env=_env(HOME=str(base)), capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "--allow-root" in refused.stdout + refused.stderr
