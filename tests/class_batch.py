"""The class batch: one sandboxed grading run of a whole class, shared by the tests of the grader and of the
assignment (the session fixture ``class_batch``, registered in ``tests/conftest.py``).

``python -m course.grade``'s :func:`course.grade.grade` grades, with 3 workers in a private course copy, a class
of both languages: the reference solution (``ref_a``) and its zh-CN translation (``ref_b``), a partly solved
submission, the untouched releases, the hostile submissions of ``course/grading/submissions/attacks.toml`` (each
built on the unsolved release, so that any point it gets is a point it stole), the mistakes of
``mistakes.toml``, and folders with links and FIFOs refused at intake. Then the partial submission is graded again
without the others around it. Grading a class is the expensive part of the suite: one run
feeds the assertions of ``test_grading_sandbox`` (isolation, secrets, intake, feedback) and of ``test_assignment``
(what nbgrader gives each kind of work).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest

from course.paths import tool, tool_env
from course_fixtures import cell_source, sample_data

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = Path(__file__).resolve().parent / "course_tests" / "grading" / "submissions"
NBGRADER = tool("nbgrader")

CORRECT = ["ref_a", "ref_b"]
ZH_STUDENT = "ref_b"  # took the zh-CN release (the reference, translated)
UNTOUCHED = ["untouched", "untouched-zh"]  # the English and the zh-CN release, handed in as released
# students whose folders hold links or FIFOs (``_src``: in the --from folder, else filled by hand in submitted/)
INTAKE_ATTACKS = {
    "linked": {"01_models.ipynb": "/etc/shadow", "02_solver.ipynb": "{course}/source/superres/02_solver.ipynb",
               "03_train.ipynb": "{course}/course/gradebook.db",
               "04_test.ipynb": "{course}/course/submitted/ref_a/superres/04_test.ipynb",
               "checks.py": "{course}/course/translations/zh-CN/superres/01_models.md"},
    "fifo": {"01_models.ipynb": "fifo"},
    "linked_src": {"01_models.ipynb": "/etc/shadow"},
}
HOST_TMP_MARK = Path("/tmp") / f"sr_kit_pwned_{os.getpid()}"
# the batch's bound on what a submission keeps in its folder (the reference keeps ~6 MB)
FOLDER_BYTES = 300 << 20
# seconds a submission may take, all in: the reference takes about 60 s with the other workers busy here; a submission
# that leaves nbgrader waiting on a kernel that no longer talks is killed at this bound
SUBMISSION_TIMEOUT = 240
# seconds a cell may take: the reference's longest cell (notebook 04's evaluation) takes a few seconds on a quiet
# machine, and more than 30 when the suite's other processes crowd the 2 cores; the endless cells of the attacks
# run until this bound
CELL_TIMEOUT = 60
WORKERS = 3


def require_bwrap() -> None:
    """Skip without bubblewrap -- except under CI, where `make test` installs it and its absence is a failure."""
    if shutil.which("bwrap"):
        return
    msg = "bubblewrap (bwrap) is not installed (`make test` installs it with apt-get when run as root)"
    if os.environ.get("CI"):
        pytest.fail("CI is set but " + msg)
    pytest.skip(msg)


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def write_submission(folder: Path, notebooks: dict[str, dict], files: dict[str, str] | None = None) -> None:
    """``notebooks``: file name -> notebook; ``files``: other files handed in beside them (name -> text)."""
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        (folder / name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")


class Server:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(addr)
            conn.close()


def attack_names() -> list[str]:
    """The hostile submissions of ``attacks.toml``, in its order (readable at collection time)."""
    with open(SUBMISSIONS / "attacks.toml", "rb") as f:
        return list(tomllib.load(f))


def load_attacks(course: Path, port: int) -> dict[str, dict]:
    """name -> where the attack's code goes (keys explained at the top of ``attacks.toml``), with its
    placeholders filled in for this course copy and this test server."""
    with open(SUBMISSIONS / "attacks.toml", "rb") as f:
        attacks = tomllib.load(f)
    fill = {"{course}": str(course), "{repo}": str(REPO), "{port}": str(port), "{host_tmp_mark}": str(HOST_TMP_MARK)}
    for attack in attacks.values():
        for key, value in attack.items():
            if isinstance(value, str):
                for placeholder, text in fill.items():
                    value = value.replace(placeholder, text)
                attack[key] = value
    return attacks


def load_mistakes() -> dict[str, dict]:
    """name -> how the submission is made from the reference or the release (keys at the top of
    ``mistakes.toml``)."""
    with open(SUBMISSIONS / "mistakes.toml", "rb") as f:
        return tomllib.load(f)


def _edit_test_cells(nbs: dict[str, dict], edit: str | None) -> None:
    for nb in nbs.values():
        kept = []
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            is_test = meta.get("grade") and not meta.get("solution")
            if is_test and edit == "delete":
                continue
            if is_test and edit == "edit":
                cell["source"] = "print('all tests passed')\n"
            if is_test and edit == "tags":
                cell["metadata"]["tags"] = ["skip-execution", "raises-exception"]
            kept.append(cell)
        nb["cells"] = kept


def build_hostile(release: dict[str, dict], attack: dict) -> dict[str, dict]:
    """The notebooks of one attack (``release``: file name -> notebook, the base it is built on)."""
    nbs = copy.deepcopy(release)
    models = nbs["01_models.ipynb"]
    if "module_end" in attack:
        last = [c for c in models["cells"] if cell_source(c).startswith("%%writefile -a models.py")][-1]
        last["source"] = cell_source(last) + attack["module_end"]
    if "markdown" in attack:
        for cell in nbs["03_train.ipynb"]["cells"]:
            if cell["cell_type"] == "markdown" and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                cell["source"] = attack["markdown"]
    if "cell" in attack:
        models["cells"].insert(1, code_cell(attack["cell"]))
    if "everywhere" in attack:  # every notebook's kernel
        for nb in nbs.values():
            nb["cells"].insert(1, code_cell(attack["everywhere"]))
    if "module" in attack:
        for cell in models["cells"]:
            if cell_source(cell).startswith("%%writefile models.py"):
                first, _, rest = cell_source(cell).partition("\n")
                cell["source"] = first + "\n" + attack["module"] + rest
                break
    if "solver" in attack:
        for cell in nbs["02_solver.ipynb"]["cells"]:
            if cell_source(cell).startswith("%%writefile solver.py"):
                cell["source"] = "%%writefile solver.py\n" + attack["solver"]
            elif cell_source(cell).startswith("%%writefile -a solver.py"):
                cell["source"] = "%%writefile -a solver.py\n# train_srgan_epoch is above\n"
    _edit_test_cells(nbs, attack.get("edit"))
    if "notebooks" in attack:
        nbs = {name: nb for name, nb in nbs.items() if Path(name).stem in attack["notebooks"]}
    return nbs


def build_mistake(reference: dict[str, dict], release: dict[str, dict], mistake: dict) -> tuple[dict, dict]:
    """The notebooks (file name -> notebook) and other files (name -> text) of one entry of ``mistakes.toml``."""
    nbs = copy.deepcopy(reference if mistake["base"] == "reference" else release)
    for change in mistake.get("replace", []):
        nb = nbs[change["notebook"] + ".ipynb"]
        hits = [c for c in nb["cells"] if change["old"] in cell_source(c)]
        assert len(hits) == 1, f"{change['old']!r} found in {len(hits)} cells of {change['notebook']}"
        hits[0]["source"] = cell_source(hits[0]).replace(change["old"], change["new"])
    for change in mistake.get("insert", []):
        nbs[change["notebook"] + ".ipynb"]["cells"].insert(change["index"], code_cell(change["source"]))
    _edit_test_cells(nbs, mistake.get("edit"))
    if "notebooks" in mistake:
        nbs = {name: nb for name, nb in nbs.items() if Path(name).stem in mistake["notebooks"]}
    files = {}
    if mistake.get("leave_reference_modules"):
        from sr_utils.notebook import writefile_sources

        files["models.py"] = writefile_sources(reference["01_models.ipynb"])["models.py"]
    return nbs, files


def snapshot(*folders: Path, skip: tuple = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folders`` (but those under ``skip``)."""
    digest = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            rel = str(p)
            if any(rel.startswith(str(s)) for s in skip) or "__pycache__" in rel:  # (gradebook.db-journal too)
                continue
            if p.is_file() and not p.is_symlink():
                digest[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                digest[rel] = "link" if p.is_symlink() else "dir"
    return digest


def scores(course: Path, student: str) -> dict[tuple, float]:
    """(notebook, grade id) -> score of ``student`` in the course copy's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        sub = gb.find_submission("superres", student)
        return {(nb.name, g.name): g.score for nb in sub.notebooks for g in nb.grades}


def processes_of(uids: set, started_before: float) -> list[str]:
    """"uid pid command line" of each process of ``uids`` that started before ``started_before`` (wall clock)."""
    ticks = os.sysconf("SC_CLK_TCK")
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    boot = time.time() - uptime  # (to 10 ms: /proc/stat's btime is in whole seconds)
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or proc.stat().st_uid not in uids:
                continue
            started = boot + int((proc / "stat").read_text().rpartition(")")[2].split()[19]) / ticks
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):  # (ended meanwhile)
            continue
        if started < started_before:
            found.append(f"{proc.stat().st_uid} {proc.name} {command[:300]}")
    return found


@pytest.fixture(scope="session")
def class_batch(tmp_path_factory):
    """Grade the whole class once; returns the facts the tests look at."""
    require_bwrap()
    from course.demo import copy_course
    from course.grade import grade
    from course.notebook_translation import catalogue_path, read_catalogue, translate_notebook
    from course.sandbox import Limits

    root = tmp_path_factory.mktemp("class")
    course = copy_course(root / "course_root")
    data = root / "data"
    sample_data(data)
    for p in [root, data, *data.rglob("*")]:  # pytest's folders are 0700: the sandbox user must read the data
        p.chmod(0o755 if p.is_dir() else 0o644)
    env = tool_env(SR_DATA_DIR=str(data))  # (nbgrader runs `alembic` by name: the venv's bin/ first on PATH)

    release = {p.name: read_notebook(p) for p in sorted((REPO / "release" / "superres").glob("*.ipynb"))}
    release_zh = {p.name: read_notebook(p) for p in sorted((REPO / "release" / "zh-CN" / "superres").glob("*.ipynb"))}
    reference = {p.name: read_notebook(p) for p in sorted((REPO / "source" / "superres").glob("*.ipynb"))}
    reference_zh = {name: translate_notebook(nb, read_catalogue(catalogue_path(REPO, "zh-CN", "superres",
                                                                               Path(name).stem)), "zh-CN")
                    for name, nb in reference.items()}
    subs = root / "submissions"
    for name in CORRECT:
        write_submission(subs / name, reference_zh if name == ZH_STUDENT else reference)
    write_submission(subs / "partial", {**release, "01_models.ipynb": reference["01_models.ipynb"]})
    write_submission(subs / "untouched", release)
    write_submission(subs / "untouched-zh", release_zh)
    server = Server()
    attacks = load_attacks(course, server.port)
    for name, attack in attacks.items():
        base = {**release, "01_models.ipynb": reference["01_models.ipynb"]} if attack.get("solved_models") else release
        write_submission(subs / name, build_hostile(base, attack))
    mistakes = load_mistakes()
    assert not set(mistakes) & set(attacks), "a mistake and an attack share a name: one folder each"
    for name, mistake in mistakes.items():
        write_submission(subs / name, *build_mistake(reference, release, mistake))

    # links and special files in hand-filled folders (course/submitted) and in --from folders: refused at intake
    hand = course / "course" / "submitted"
    for student, targets in INTAKE_ATTACKS.items():
        folder = (subs if student.endswith("_src") else hand) / student / ("" if student.endswith("_src") else
                                                                          "superres")
        folder.mkdir(parents=True)
        for name, target in targets.items():
            if target == "fifo":
                os.mkfifo(folder / name)
            else:
                os.symlink(target.replace("{course}", str(course)), folder / name)
        for name in set(release) - set(targets):
            (folder / name).write_text(json.dumps(release[name]))

    # nbgrader needs the assignment in the gradebook before the snapshot (generate_assignment writes release/)
    out = subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    protected = (course / "course" / "autograded", course / "course" / "feedback", course / "course" / "grades",
                 course / "course" / ".grading", course / "course" / "gradebook.db", course / "course" / "submitted")
    before = snapshot(course, data, REPO / "sr_utils", REPO / "course", REPO / "source", skip=protected)
    limits = Limits(cpu_seconds=120, memory_bytes=3 << 30, threads=1, folder_bytes=FOLDER_BYTES)
    saved = {k: os.environ.get(k) for k in ("SR_DATA_DIR", "PATH")}
    os.environ.update(SR_DATA_DIR=env["SR_DATA_DIR"], PATH=env["PATH"])  # read by the grader, inherited by nbgrader
    try:
        t0 = time.perf_counter()
        result = grade("superres", course, src=subs, workers=WORKERS, cell_timeout=CELL_TIMEOUT,
                       submission_timeout=SUBMISSION_TIMEOUT, limits=limits, progress=False, log=lambda *a: None)
        seconds = time.perf_counter() - t0
        after = snapshot(course, data, REPO / "sr_utils", REPO / "course", REPO / "source", skip=protected)
        graded = [*CORRECT, "partial", *UNTOUCHED, *mistakes]
        batch_scores = {s: scores(course, s) for s in graded}
        # (once the batch has ended, other grading runs of the suite, on other processes, may take its uids)
        leftover = processes_of({r.get("sandbox_uid") for r in result["results"]},
                                started_before=max(r.get("finished_at", 0) for r in result["results"]))
        shutil.copytree(course / "course" / "grades", root / "grades_of_the_batch")  # the regrades below rewrite it
        # the partial submission without the attackers around it (the correct ones must score every point in the
        # batch, which is all they could score alone: test_grading_sandbox; the partial one has points to lose or
        # gain from its neighbours)
        grade("superres", course, students=["partial"], workers=1, cell_timeout=CELL_TIMEOUT,
              submission_timeout=SUBMISSION_TIMEOUT, limits=limits, progress=False, log=lambda *a: None,
              feedback=False)
        alone = {"partial": scores(course, "partial")}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield {"course": course, "env": env, "data": data, "attacks": attacks, "mistakes": mistakes, "result": result,
           "before": before, "after": after, "server": server, "batch_scores": batch_scores, "alone": alone,
           "seconds": seconds, "leftover": leftover, "reference": reference, "release": release,
           "grades_of_the_batch": root / "grades_of_the_batch"}
    server.sock.close()
