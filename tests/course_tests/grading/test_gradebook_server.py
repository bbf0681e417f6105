"""The PostgreSQL gradebook (``course.gradebook_server``, ``$SR_KIT_GRADEBOOK_URL``): a real server started by the
kit's command in a temporary folder, used by nbgrader and the kit the way a class uses it.

1. Two TAs grading the same students' manual cells at once (two processes, one commit per grade as the formgrader
   makes them) while the MOS step writes the human-evaluation points: every write is there afterwards.
2. The grading command writes a sandboxed run's scores into that server, and no SQLite file appears.
3. The server listens on its folder's Unix socket only: no TCP port, the folder closed to other users, and the URL
   holds no password.
4. Grading on a Dask cluster (``course.cluster``, ``course.grade --cluster``) of two workers, each in its own course
   folder: one worker is killed while it grades a submission, which is then graded once more, by the other worker;
   every grade lands in this server, once, and nothing of the killed worker's run is left running.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from course.sandbox import unmount
from course_fixtures import poll_until, sample_data, skip_or_fail

REPO = Path(__file__).resolve().parents[3]
STUDENTS = [f"s{i:02d}" for i in range(12)]
CELLS = {"ta1": ["q1", "q2", "q3"], "ta2": ["q4", "q5", "q6"]}  # each TA grades their own questions
ROUNDS = 3  # each TA goes over every student this many times, the last round's score is the one kept


@pytest.fixture(scope="module")
def server():
    """The kit's command starts a server in a fresh folder; stopped and removed after the module."""
    from course.gradebook_server import GradebookServerError, start

    if importlib.util.find_spec("psycopg2") is None:
        skip_or_fail("psycopg2 is not installed (pip install -e '.[test]')")
    folder = Path(tempfile.mkdtemp(prefix="srk-pg-"))
    folder.chmod(0o755)  # (the server's user, postgres when the tests run as root, must enter it)
    try:
        url = start(folder / "pg", log=lambda *a: None)
    except BaseException as e:
        _stop_quietly(folder / "pg")  # (a server started before a later step failed)
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, GradebookServerError) and "not installed" in str(e):
            skip_or_fail(f"{e} (`make test` installs it with apt-get when run as root)")
        raise
    try:
        yield {"url": url, "folder": folder / "pg"}
    finally:
        _stop_quietly(folder / "pg")
        shutil.rmtree(folder, ignore_errors=True)


def _stop_quietly(folder: Path) -> None:
    from course.gradebook_server import GradebookServerError, stop

    try:
        stop(folder)
    except GradebookServerError:
        pass


def _gradebook(url: str, assignment: str) -> None:
    """An assignment whose students each have a submission with the TAs' manual cells and the MOS cell."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        for s in STUDENTS:
            gb.update_or_create_student(s)
        gb.add_assignment(assignment)
        gb.add_notebook("03_train", assignment)
        for cells in CELLS.values():
            for cell in cells:
                gb.add_task_cell(cell, "03_train", assignment, max_score=2, cell_type="markdown")
        gb.add_notebook("05_super_resolution", assignment)
        gb.add_task_cell("human_evaluation", "05_super_resolution", assignment, max_score=4, cell_type="markdown")
        for s in STUDENTS:
            gb.add_submission(assignment, s)


TA = textwrap.dedent("""
    import sys, time
    from nbgrader.api import Gradebook
    url, assignment, ta, cells, students, rounds = sys.argv[1:7]
    with Gradebook(url) as gb:
        gb.find_assignment(assignment)
        print("ready", flush=True)
        sys.stdin.readline()  # (the test says go once both TAs are connected)
        began = time.time()
        for r in range(int(rounds)):
            for s in students.split(","):
                for cell in cells.split(","):
                    # what the formgrader does for one score and one comment: find, set, commit
                    grade = gb.find_grade(cell, "03_train", assignment, s)
                    grade.manual_score = (r + int(s[1:]) + int(cell[1:])) % 3
                    gb.db.commit()
                    comment = gb.find_comment(cell, "03_train", assignment, s)
                    comment.manual_comment = f"{ta} round {r} on {s}/{cell}"
                    gb.db.commit()
    print("done", ta, began, time.time())
""")


def _analysis() -> dict:
    """The MOS analysis (``course.mos.results.analyse``'s output) of a study of the class: controls and students."""
    rows = [{"version": f"control:{k}", "kind": "control", "name": k, "model_mos": m, "model_low": m - 0.3,
             "model_high": m + 0.3} for k, m in (("nn", 1.4), ("bicubic", 2.2), ("hr", 4.6))]
    rows += [{"version": f"student:{s}", "kind": "student", "name": s, "model_mos": 2.0 + i / 8,
              "model_low": 1.7 + i / 8, "model_high": 2.3 + i / 8} for i, s in enumerate(STUDENTS)]
    return {"split": "test", "rows": rows}


def test_two_tas_and_the_mos_step_write_at_once_and_nothing_is_lost(server, monkeypatch):
    from nbgrader.api import Gradebook

    from course.mos.gradebook import student_points, to_gradebook
    from course.paths import tool_env

    monkeypatch.setenv("PATH", tool_env()["PATH"])  # (nbgrader runs `alembic` by name when it makes the tables)
    url, assignment = server["url"], "together"
    _gradebook(url, assignment)
    tas = {ta: subprocess.Popen([sys.executable, "-c", TA, url, assignment, ta, ",".join(cells), ",".join(STUDENTS),
                                 str(ROUNDS)], env=tool_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
           for ta, cells in CELLS.items()}
    try:
        for ta, p in tas.items():
            assert p.stdout.readline().strip() == "ready", (ta, p.stderr.read()[-3000:] if p.poll() is not None
                                                            else "")
        for p in tas.values():
            p.stdin.write("go\n")
            p.stdin.flush()
        time.sleep(0.5)  # (the TAs are writing)
        a = _analysis()
        mos_began = time.time()
        written = to_gradebook(url, assignment, a, log=lambda *_: None)  # while the TAs write
        outs = {ta: (p.stdout.read(), p.stderr.read()) for ta, p in tas.items()}
        for p in tas.values():
            p.wait(timeout=300)
    finally:
        for p in tas.values():  # (none is left behind when the test fails half-way)
            if p.poll() is None:
                p.kill()
                p.wait()
    for ta, p in tas.items():
        assert p.returncode == 0 and f"done {ta}" in outs[ta][0], (ta, outs[ta][1][-3000:])
    windows = [tuple(map(float, outs[ta][0].split()[-2:])) for ta in CELLS]
    assert max(w[0] for w in windows) < mos_began < min(w[1] for w in windows), ("not at once", windows, mos_began)
    assert set(written["written"]) == set(STUDENTS), written
    expected = student_points(a, 4)
    with Gradebook(url) as gb:
        for ta, cells in CELLS.items():
            for s in STUDENTS:
                for cell in cells:
                    grade = gb.find_grade(cell, "03_train", assignment, s)
                    assert grade.manual_score == (ROUNDS - 1 + int(s[1:]) + int(cell[1:])) % 3, (ta, s, cell)
                    comment = gb.find_comment(cell, "03_train", assignment, s)
                    assert comment.manual_comment == f"{ta} round {ROUNDS - 1} on {s}/{cell}"
        for s in STUDENTS:
            grade = gb.find_grade("human_evaluation", "05_super_resolution", assignment, s)
            assert math.isclose(grade.manual_score, expected[s][1]) and not grade.needs_manual_grade, s
            assert "mean opinion score" in gb.find_comment("human_evaluation", "05_super_resolution", assignment,
                                                           s).manual_comment


@pytest.fixture(scope="module")
def one_notebook_class(server):
    """A folder with the sample data and what a course copy needs to grade ``01_models`` alone (the one notebook
    whose grading takes seconds): ``course(name)`` makes such a copy, ``hand_ins(names)`` the reference
    solution handed in by each student; the gradebook is the server's."""
    from course.demo import copy_course
    from course.grading.contract import GRADEBOOK_URL_ENV
    from course.paths import tool_env
    from class_batch import require_bwrap

    require_bwrap()
    work = Path(tempfile.mkdtemp(prefix="srk-"))  # (short: kernels' socket paths stay below 107 bytes)
    try:
        data = sample_data(work / "data")
        for p in [work, data, *data.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)

        def course(name: str) -> Path:
            folder = copy_course(work / name)
            for nb in (folder / "source" / "superres").glob("*.ipynb"):
                if nb.name != "01_models.ipynb":
                    nb.unlink()
            return folder

        def hand_ins(name: str, students: list[str]) -> Path:
            for s in students:
                (work / name / s).mkdir(parents=True)
                shutil.copy(REPO / "source" / "superres" / "01_models.ipynb", work / name / s / "01_models.ipynb")
                (work / name / s / "report.md").write_text("# Report\n")
            return work / name

        env = tool_env(**{GRADEBOOK_URL_ENV: server["url"], "SR_DATA_DIR": str(data)})
        yield {"work": work, "env": env, "course": course, "hand_ins": hand_ins}
    finally:
        # (a killed worker leaves its tmpfs folders mounted -- its next run unmounts them -- and this one has none)
        with open("/proc/mounts") as f:
            left = [line.split()[1] for line in f if line.split()[1].startswith(f"{work}/")]
        for mount in sorted(left, reverse=True):
            unmount(mount, wait=0)
        shutil.rmtree(work, ignore_errors=True)


def _full_marks(url: str, student: str) -> dict:
    """``student``'s code cells of 01_models in the gradebook at ``url``: {cell: (score, max_score)}, asserted
    full and not empty."""
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        sub = gb.find_submission_notebook("01_models", "superres", student)
        scores = {g.name: (g.score, g.max_score) for g in sub.grades if g.cell_type == "code"}
    assert scores and all(score == best > 0 for score, best in scores.values()), (student, scores)
    return scores


def test_the_grading_command_writes_a_sandboxed_runs_scores_into_the_server(server, one_notebook_class):
    from course.grading.contract import GRADEBOOK
    from course.paths import tool

    course, env = one_notebook_class["course"]("course"), one_notebook_class["env"]
    out = subprocess.run([str(tool("nbgrader")), "generate_assignment", "superres", "--force"], cwd=course,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    hand_ins = one_notebook_class["hand_ins"]("from", ["ada"])
    out = subprocess.run([sys.executable, "-m", "course.grade", "superres", "--course-dir", str(course), "--from",
                          str(hand_ins), "--workers", "1", "--no-feedback", "--cell-timeout", "120"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "needing manual attention" not in out.stdout.lower(), \
        out.stdout[-3000:] + out.stderr[-3000:]
    assert not (course / GRADEBOOK).exists(), "a SQLite gradebook was written beside the server's"
    _full_marks(server["url"], "ada")
    grades_csv = (course / "course" / "grades" / "grades.csv").read_text()
    assert "ada" in grades_csv, grades_csv


CLUSTER_STUDENTS = ["kim", "lee", "max"]


def test_a_cluster_worker_killed_mid_submission_loses_nothing(server, one_notebook_class):
    """``course.cluster`` starts a scheduler and two workers (each its own course folder, one submission at a
    time); ``course.grade --cluster`` sends them three submissions. The worker that starts the first one is killed
    (SIGKILL) once that submission's nbgrader process runs: the scheduler gives it to the other worker, which grades
    it once; every grade is in the server, once; the killed worker's nbgrader and sandboxes are gone."""
    import signal

    from nbgrader.api import Gradebook

    from course.cluster import LocalCluster
    from course.grading.contract import CLUSTER_WORKER_LOG, LOGS_DIR, STATE_DIR

    work, env, course = one_notebook_class["work"], one_notebook_class["env"], one_notebook_class["course"]
    coordinator, workers = course("coordinator"), {name: course(name) for name in ("w1", "w2")}
    hand_ins = one_notebook_class["hand_ins"]("cluster-hand-ins", CLUSTER_STUDENTS)
    tls = work / "tls"
    out = subprocess.run([sys.executable, "-m", "course.cluster", "credentials", "--dir", str(tls)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and oct((tls / "key.pem").stat().st_mode & 0o777) == "0o600", out.stderr
    grading = None
    with LocalCluster(tls, workers, env, work / "cluster-logs") as cluster:
        address = cluster.address
        assert address.startswith("tls://127.0.0.1:"), address
        try:
            grading = subprocess.Popen([sys.executable, "-m", "course.grade", "superres", "--course-dir",
                                        str(coordinator), "--from", str(hand_ins), "--cluster", address,
                                        "--cluster-credentials", str(tls), "--no-feedback", "--cell-timeout", "120"],
                                       cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

            def started():
                for name, folder in workers.items():
                    log = folder / STATE_DIR / CLUSTER_WORKER_LOG
                    lines = log.read_text().split() if log.exists() else []
                    if "start" in lines:
                        return name, lines[lines.index("start") + 1]
                return None

            killed, student = poll_until(started, 180, "a worker's first submission", work / "cluster-logs" / "w1.log")
            nbgrader_log = workers[killed] / STATE_DIR / LOGS_DIR / f"{student}.log"
            poll_until(lambda: nbgrader_log.exists() and "nbgrader" in nbgrader_log.read_text(errors="replace"), 120,
                      f"{student}'s nbgrader process", work / "cluster-logs" / f"{killed}.log")
            time.sleep(1.0)  # (its notebook is running)
            assert _processes_in(str(workers[killed])), "no process grades in the worker's course folder"
            cluster.workers[killed].send_signal(signal.SIGKILL)
            cluster.workers[killed].wait(timeout=30)
            # its nbgrader process (which would write the grade) and what it started end with it, not seconds later
            killed_root = str(workers[killed])
            gone = poll_until(lambda: not _processes_in(killed_root) or None, 5, "", work, fail=False)
            assert gone, f"still running in {killed_root} after its worker was killed: {_processes_in(killed_root)}"
            stdout, stderr = grading.communicate(timeout=600)
            assert grading.returncode == 0 and "needing manual attention" not in stdout.lower(), \
                stdout[-3000:] + stderr[-3000:]
            survivor = next(name for name in workers if name != killed)
            lines = {name: (folder / STATE_DIR / CLUSTER_WORKER_LOG).read_text() for name, folder in workers.items()}
            for s in CLUSTER_STUDENTS:
                starts = {name: text.count(f" start {s}\n") for name, text in lines.items()}
                dones = {name: text.count(f" done {s} 'ok'") for name, text in lines.items()}
                if s == student:  # killed on one worker, graded once more by the other, which finished it
                    assert starts == {killed: 1, survivor: 1} and dones == {killed: 0, survivor: 1}, (s, lines)
                else:  # graded once, by one worker
                    assert sum(starts.values()) == 1 and sum(dones.values()) == 1, (s, lines)
            for s in CLUSTER_STUDENTS:
                _full_marks(server["url"], s)
            with Gradebook(server["url"]) as gb:
                for s in CLUSTER_STUDENTS:
                    assert len(gb.find_student(s).submissions) == 1, s
            grades_csv = (coordinator / "course" / "grades" / "grades.csv").read_text()
            assert all(s in grades_csv for s in CLUSTER_STUDENTS), grades_csv
            for s in CLUSTER_STUDENTS:  # what the workers sent back, where the formgrader and feedback look
                assert (coordinator / "course" / "autograded" / s / "superres" / "01_models.ipynb").is_file(), s
            # the cluster talks TLS with the course's certificate only: neither plain TCP nor another certificate
            from distributed import Client
            from distributed.security import Security

            for how in ({"address": address.replace("tls://", "tcp://")},
                        {"address": address, "security": Security.temporary()}):
                with pytest.raises((OSError, TimeoutError)):
                    Client(**how, timeout=3, set_as_default=False).close()
        finally:
            if grading is not None and grading.poll() is None:
                grading.kill()
                grading.wait()


def _processes_in(folder: str) -> list[str]:
    """The processes whose working folder is ``folder`` or below it (their command lines)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if cwd == folder or cwd.startswith(folder + "/"):
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            pass
    return found


def test_the_server_listens_on_its_folders_socket_only(server):
    from course.gradebook_url import shown_url

    folder, url = server["folder"], server["url"]
    assert "@/" in url and ":" not in url.split("://", 1)[1].split("@")[0], "no password in the URL"
    assert shown_url("postgresql://ta:secret@db.example.org/gb") == "postgresql://ta:***@db.example.org/gb"
    socket_dir = folder / "socket"
    assert list(socket_dir.glob(".s.PGSQL.*")), "the server's socket is in its folder"
    assert oct(socket_dir.stat().st_mode & 0o777) == "0o770" and oct(folder.stat().st_mode & 0o7) == "0o0"
    # the folder is the gate: the socket itself lets in whoever enters it (the group's TAs and grader account too,
    # who are not in the server user's own group)
    assert oct((socket_dir / ".s.PGSQL.5432").stat().st_mode & 0o777) == "0o777"
    listening = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    sockets = {i[len("socket:["):-1] for i in inodes if i.startswith("socket:[")}
    tcp = [line for line in listening.splitlines()[1:] if line.split()[9] in sockets]
    assert not tcp, f"the server has TCP sockets: {tcp}"
