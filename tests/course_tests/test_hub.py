"""The class server (``python -m course.hub``): the real JupyterHub and its proxy on 127.0.0.1, with throw-away
Unix accounts made from a roster by the kit's own ``setup``, driven over HTTP the way a browser drives it (login
form, cookies, XSRF tokens, the Assignments panel's and the formgrader's requests).

A student logs in, gets a server running as that student's account in a cgroup of the class's limits, from the
student kit and without the kit's checkout (its solutions) in sight, with JupyterLab's Chinese language pack,
sees the released assignment, fetches and submits it; the student cannot
reach the formgrader service, its own server has no formgrader, another student's server and home and the
instructors' course folder are refused. An instructor reaches the formgrader service, collects the submission,
and the formgrader's autograde button runs nothing (student code is graded only in the grading command's
sandboxes). In Chromium, the whole round: a student fetches, validates and submits in the Assignments panel, an
instructor collects in the formgrader, the course is graded on the server as docs/hub.md says, the instructor
scores a written answer and releases the feedback, and the student fetches and reads it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from course_fixtures import find_chromium, headless_chromium, poll_until, skip_or_fail, wait_for

REPO = Path(__file__).resolve().parents[2]
TAG = f"{os.getpid() % 10000:04d}"
STUDENTS = [f"srh{TAG}a", f"srh{TAG}b", f"srh{TAG}c"]  # (the third goes round in Chromium)
INSTRUCTOR, GRADER, GROUP = f"srh{TAG}t", f"srh{TAG}g", f"srh{TAG}grp"
COURSE_ID = "sr-course-kit"


@pytest.fixture(scope="module")
def hub():
    """A hub set up and started by the kit's commands in a temporary folder; stopped, its accounts, group and
    cgroups removed after the module."""
    from course.hub import accounts
    from course.hub.settings import HubSettings

    if os.geteuid() != 0:
        skip_or_fail("the class server makes Unix accounts and starts servers as them: it needs root")
    for tool in ("useradd", "runuser", "unshare", "chpasswd", "setpriv", "nsenter"):
        if not shutil.which(tool):
            skip_or_fail(f"{tool} is not available to make the class server's accounts")
    proxy = HubSettings(state=Path("/nonexistent"), students=[], instructors=[]).proxy
    if not proxy.is_file():
        skip_or_fail(f"the hub's proxy {proxy} is missing: `make hub-tools` installs it (npm)")
    pytest.importorskip("jupyterhub", reason="JupyterHub is not installed (pip install -e '.[test]')")
    base = Path(tempfile.mkdtemp(prefix="srk-hub-"))
    base.chmod(0o755)
    roster = base / "roster.csv"
    roster.write_text("id,first_name,last_name,email\n" + "".join(f"{s},{s},Test,\n" for s in STUDENTS))
    state, hub_proc = base / "state", None
    log = open(base / "hub.log", "wb")
    try:
        out = subprocess.run([sys.executable, "-m", "course.hub", "setup", "--roster", str(roster), "--instructor",
                              INSTRUCTOR, "--state", str(state), "--homes", str(base / "homes"), "--port", "0",
                              "--group", GROUP, "--grader", GRADER], cwd=REPO, capture_output=True,
                             text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        url = f"http://127.0.0.1:{HubSettings.load(state / 'settings.json').port}"

        def start():
            proc = subprocess.Popen([sys.executable, "-m", "course.hub", "start", "--state", str(state)], cwd=REPO,
                                    stdout=log, stderr=subprocess.STDOUT)
            poll_until(lambda: _get_status(f"{url}/hub/api/") == 200 and _get_status(f"{url}/hub/login") == 200, 120,
                  "the hub", base / "hub.log")
            return proc

        def restart(frozen: bool = False):
            """The hub alone stopped and started again (its proxy and the users' servers go on). ``frozen``: the
            hub is stopped (SIGSTOP) first, so that it ends nothing itself and `stop` kills it after 3 s."""
            nonlocal hub_proc
            if frozen:
                os.kill(hub_proc.pid, signal.SIGSTOP)
            out = subprocess.run([sys.executable, "-m", "course.hub", "stop", "--state", str(state), "--hub-only",
                                  *(["--timeout", "3"] if frozen else [])], cwd=REPO, capture_output=True, text=True)
            assert out.returncode == 0 and "stopped" in out.stdout, out.stdout + out.stderr
            hub_proc.wait(timeout=60)
            hub_proc = start()

        hub_proc = start()
        passwords = dict(line.split(",", 1) for line in (state / "passwords.csv").read_text().splitlines())
        yield {"url": url, "state": state, "base": base, "passwords": passwords, "restart": restart,
               "settings": HubSettings.load(state / "settings.json"), "log": base / "hub.log"}
    finally:
        subprocess.run([sys.executable, "-m", "course.hub", "stop", "--state", str(state)], cwd=REPO,
                       capture_output=True)
        if hub_proc is not None:
            try:
                hub_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hub_proc.kill()
                hub_proc.wait()
        log.close()
        for name in [*STUDENTS, INSTRUCTOR, GRADER]:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        time.sleep(0.5)
        left = [name for name in [*STUDENTS, INSTRUCTOR] if os.path.isdir(f"/sys/fs/cgroup/memory/sr-hub-{name}")
                or os.path.isdir(f"/sys/fs/cgroup/sr-hub-{name}")]
        if left:  # (said below, once everything else is cleaned up)
            from course.hub.__main__ import remove_cgroups

            remove_cgroups(HubSettings(state=state, students=STUDENTS, instructors=[INSTRUCTOR]))
        for name in [*STUDENTS, INSTRUCTOR, GRADER]:
            accounts.remove_account(name)
        subprocess.run(["groupdel", GROUP], capture_output=True)
        if (base / "hub.log").exists():  # (what the hub said, for a failure's report: the folder goes)
            shutil.copyfile(base / "hub.log", Path(tempfile.gettempdir()) / "srk-hub-last.log")
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"`python -m course.hub stop` left the cgroups of {left}"


def _get_status(url: str) -> int | None:
    import requests

    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def _login(hub, user: str):
    """A browser's session of ``user``, logged in through the hub's login form."""
    import requests

    s = requests.Session()
    s.get(f"{hub['url']}/hub/login", timeout=30)
    r = s.post(f"{hub['url']}/hub/login", data={"username": user, "password": hub["passwords"][user],
                                                "_xsrf": s.cookies.get("_xsrf")}, timeout=120)
    assert r.status_code == 200 and "/hub/login" not in r.url, (user, r.status_code, r.url)
    return s


def _open(hub, s, path: str) -> dict:
    """Open ``path`` (a page, through the hub's OAuth) and return the headers its API requests carry."""
    def opened():  # (not the hub's page that says the server is starting)
        r = s.get(f"{hub['url']}{path}", timeout=60)
        return r.status_code == 200 and r.url.startswith(f"{hub['url']}{path}")

    poll_until(opened, 180, path, hub["log"])
    prefix = "/" + "/".join(path.strip("/").split("/")[:2]) + "/"
    return {"X-XSRFToken": s.cookies.get("_xsrf", path=prefix)}


def _processes_of(user: str) -> list[tuple[int, str]]:
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append((int(pid), Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            pass
    return found


def _in_server_of(user: str, pid: int, argv: list[str]) -> subprocess.CompletedProcess:
    """``argv`` run as ``user`` where the server ``pid`` runs (its mount namespace; its PATH and PYTHONPATH), as a
    kernel or a terminal of that server would run it."""
    import pwd

    environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    env = [f"{k}={environ[k]}" for k in ("PATH", "PYTHONPATH", "HOME") if k in environ]
    u = pwd.getpwnam(user)
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "--", "setpriv", f"--reuid={u.pw_uid}",
                           f"--regid={u.pw_gid}", "--init-groups", "--", "env", "-i", "-C", environ["HOME"], *env,
                           *argv], capture_output=True, text=True, timeout=60)


def test_a_student_works_in_a_server_of_their_own_and_reaches_nothing_else(hub):
    student, other = STUDENTS[:2]
    url, s, settings = hub["url"], _login(hub, student), hub["settings"]
    headers = _open(hub, s, f"/user/{student}/lab")
    # the server runs as the student's account, in the class's cgroup (memory, CPU)
    servers = [(pid, cmd) for pid, cmd in _processes_of(student) if "jupyterhub-singleuser" in cmd]
    assert servers, _processes_of(student)
    pid = servers[0][0]
    cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"sr-hub-{student}" in cgroups, cgroups
    memory = Path(f"/sys/fs/cgroup/memory/sr-hub-{student}/memory.limit_in_bytes")
    if memory.exists():  # (cgroup v1 here; v2 has memory.max)
        assert int(memory.read_text()) == settings.memory_bytes
    else:
        assert int(Path(f"/sys/fs/cgroup/sr-hub-{student}/memory.max").read_text()) == settings.memory_bytes
    # the server (and all it starts) does not see the kit's checkout: the students' packages are the student kit's
    checkout = _in_server_of(student, pid, ["ls", "-A", str(REPO)])
    assert checkout.returncode == 0 and set(checkout.stdout.split()) <= {".venv"}, checkout.stdout + checkout.stderr
    assert (REPO / "source" / "superres" / "01_models.ipynb").is_file()
    out = _in_server_of(student, pid, ["cat", str(REPO / "source" / "superres" / "01_models.ipynb")])
    assert out.returncode != 0 and "No such file" in out.stderr, out.stdout[:300] + out.stderr
    out = _in_server_of(student, pid, ["python", "-c", "import sr_utils; print(sr_utils.__file__)"])
    kit_module = Path(out.stdout.strip())
    assert out.returncode == 0 and kit_module.is_relative_to(settings.student_kit), out.stdout + out.stderr
    out = _in_server_of(student, pid, ["python", "-c", "import course.reference"])
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, out.stdout + out.stderr
    # JupyterLab in Chinese is there to choose
    r = s.get(f"{url}/user/{student}/lab/api/translations/", headers=headers, timeout=60)
    assert r.status_code == 200 and "zh_CN" in r.json()["data"], r.text[:300]
    # the Assignments panel: the released assignment, fetched into the student's home, submitted
    r = s.get(f"{url}/user/{student}/assignments", params={"course_id": COURSE_ID}, headers=headers, timeout=60)
    assert r.status_code == 200 and [a["assignment_id"] for a in r.json()["value"]] == ["superres"], r.text[:500]
    for action in ("fetch", "submit"):
        r = s.post(f"{url}/user/{student}/assignments/{action}", headers=headers, timeout=300,
                   data={"course_id": COURSE_ID, "assignment_id": "superres"})
        assert r.status_code == 200 and r.json()["success"], (action, r.text[:1000])
    home = settings.homes / student
    assert (home / "superres" / "01_models.ipynb").is_file()
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    inbound = settings.exchange / COURSE_ID / "inbound"
    assert any(p.name.startswith(f"{student}+superres+") for p in inbound.iterdir())
    # refused: the formgrader service, a formgrader in its own server, another student's server
    r = s.get(f"{url}/services/{settings.service}/formgrader", timeout=60)
    assert r.status_code == 403, (r.status_code, r.url)
    assert s.get(f"{url}/user/{student}/formgrader", timeout=60).status_code == 404
    r = s.get(f"{url}/user/{other}/lab", timeout=60)
    assert r.status_code in (403, 404) and f"/user/{other}/lab" not in r.url.split("/hub/")[0], (r.status_code,
                                                                                                  r.url)
    # and, as the student's account, another student's home and the instructors' course
    from unix_accounts import as_user

    for target in (settings.homes / other, settings.course / "source", settings.course / "nbgrader_config.py"):
        out = subprocess.run(as_user(student, {"HOME": str(home), "PATH": "/usr/bin:/bin"}, ["ls", str(target)]),
                             capture_output=True, text=True)
        assert out.returncode != 0 and "Permission denied" in out.stderr, (target, out.stdout, out.stderr)


def test_an_instructor_reaches_the_formgrader_which_collects_and_runs_no_student_code(hub):
    student = STUDENTS[1]
    url, settings = hub["url"], hub["settings"]
    s = _login(hub, student)  # (a submission to collect)
    headers = _open(hub, s, f"/user/{student}/lab")
    for action in ("fetch", "submit"):
        r = s.post(f"{url}/user/{student}/assignments/{action}", headers=headers, timeout=300,
                   data={"course_id": COURSE_ID, "assignment_id": "superres"})
        assert r.status_code == 200 and r.json()["success"], (action, r.text[:1000])
    t = _login(hub, INSTRUCTOR)
    service = f"/services/{settings.service}/formgrader"
    headers = _open(hub, t, f"/services/{settings.service}/formgrader")
    assert "nbgrader formgrade" in t.get(f"{url}{service}", timeout=60).text
    r = t.post(f"{url}{service}/api/assignment/superres/collect", headers=headers, timeout=300)
    assert r.status_code == 200 and r.json()["success"], r.text[:1000]
    assert (settings.course / "course" / "submitted" / student / "superres" / "01_models.ipynb").is_file()
    grader = [cmd for _, cmd in _processes_of(settings.grader)]
    r = t.post(f"{url}{service}/api/submission/superres/{student}/autograde", headers=headers, timeout=300)
    assert r.status_code == 200 and not r.json()["success"], r.text[:1000]
    assert "python -m course.grade" in r.json()["error"] + r.json().get("log", ""), r.text[:1000]
    kernels = [cmd for _, cmd in _processes_of(settings.grader) if "ipykernel" in cmd and cmd not in grader]
    assert not kernels, f"the formgrader started kernels: {kernels}"


def test_a_restarted_hub_takes_over_the_running_servers(hub):
    """The hub restarted in the middle of a class: each student's server goes on (same process, same kernel
    state), the student's session still works, and a submission after the restart lands."""
    student = STUDENTS[0]
    url = hub["url"]
    s = _login(hub, student)
    headers = _open(hub, s, f"/user/{student}/lab")
    before = sorted(pid for pid, cmd in _processes_of(student) if "jupyterhub-singleuser" in cmd)
    assert before
    hub["restart"]()
    after = sorted(pid for pid, cmd in _processes_of(student) if "jupyterhub-singleuser" in cmd)
    assert after == before, "the student's server was restarted with the hub"
    r = s.get(f"{url}/user/{student}/api/status", headers=headers, timeout=60)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    if not (hub["settings"].homes / student / "superres").is_dir():  # (the module's first test fetched it, when run)
        r = s.post(f"{url}/user/{student}/assignments/fetch", headers=headers, timeout=300,
                   data={"course_id": COURSE_ID, "assignment_id": "superres"})
        assert r.status_code == 200 and r.json()["success"], r.text[:1000]
    inbound = hub["settings"].exchange / COURSE_ID / "inbound"
    count = len([p for p in inbound.iterdir() if p.name.startswith(f"{student}+superres+")])
    time.sleep(1.1)  # (nbgrader names a submission by its second)
    r = s.post(f"{url}/user/{student}/assignments/submit", headers=headers, timeout=300,
               data={"course_id": COURSE_ID, "assignment_id": "superres"})
    assert r.status_code == 200 and r.json()["success"], r.text[:1000]
    assert len([p for p in inbound.iterdir() if p.name.startswith(f"{student}+superres+")]) == count + 1


def test_a_hub_killed_before_it_ended_its_formgrader_leaves_none_behind(hub):
    """A hub that does not end its formgrader (the managed service every hub starts anew) before `stop` kills it:
    `stop` ends that formgrader too, or it would keep the service's port with the OAuth secret of a hub that is
    gone, the next hub's formgrader could not start, and instructors would get errors. The students' servers go
    on; the next hub's formgrader answers the instructor."""
    settings = hub["settings"]
    old = {pid for pid, cmd in _processes_of(settings.grader) if "jupyterhub-singleuser" in cmd}
    assert old, "no formgrader is running"
    students = {pid for student in STUDENTS for pid, cmd in _processes_of(student) if "jupyterhub-singleuser" in cmd}
    hub["restart"](frozen=True)
    assert not {pid for pid, _ in _processes_of(settings.grader)} & old, "the killed hub's formgrader still runs"
    assert students <= {pid for student in STUDENTS for pid, _ in _processes_of(student)}, "a student's server ended"
    t = _login(hub, INSTRUCTOR)
    _open(hub, t, f"/services/{settings.service}/formgrader")  # (through the new hub's OAuth: its secret)
    assert "nbgrader formgrade" in t.get(f"{hub['url']}/services/{settings.service}/formgrader", timeout=60).text


ARTIFACTS = REPO / "tests" / "artifacts" / "hub-browser"


def _browser_login(b, hub, user: str) -> None:
    """Log ``user`` in through the hub's login form, as a person does."""
    from selenium.webdriver.common.by import By

    b.get(f"{hub['url']}/hub/login")
    wait_for(b, lambda d: d.find_elements(By.ID, "username_input"), 60, "the login form", ARTIFACTS)
    b.find_element(By.ID, "username_input").send_keys(user)
    b.find_element(By.ID, "password_input").send_keys(hub["passwords"][user])
    b.find_element(By.ID, "login_submit").click()
    wait_for(b, lambda d: "/hub/login" not in d.current_url, 120, f"{user} logged in", ARTIFACTS)


def _panel(b, hub, student: str) -> None:
    """The student's JupyterLab with nbgrader's Assignments panel open (Nbgrader -> Assignment List)."""
    from selenium.webdriver.common.by import By

    def menu_item(label: str, selector: str):
        found = [e for e in b.find_elements(By.CSS_SELECTOR, selector) if e.text.strip() == label]
        return found[0] if found else None

    b.get(f"{hub['url']}/user/{student}/lab")
    wait_for(b, lambda d: menu_item("Nbgrader", ".lm-MenuBar-item"), 240, "the student's JupyterLab", ARTIFACTS)
    menu_item("Nbgrader", ".lm-MenuBar-item").click()
    wait_for(b, lambda d: menu_item("Assignment List", ".lm-Menu-item"), 30, "the Nbgrader menu", ARTIFACTS).click()
    wait_for(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#released_assignments_list"), 60, "the panel", ARTIFACTS)


def _press(b, listing: str, button: str, what: str) -> None:
    """Press ``button`` on the superres line of the panel's list ``listing`` (released, fetched, submitted)."""
    wait_for(b, lambda d: d.execute_script(
        "const item = [...document.querySelectorAll('#' + arguments[0] + '_assignments_list .list_item')]"
        "  .find(i => i.textContent.includes('superres'));"
        "const button = item && [...item.querySelectorAll('button')].find(x => x.innerText.trim() === arguments[1]);"
        "if (button && !button.disabled) { button.click(); return true; } return false;", listing, button),
        120, what, ARTIFACTS)


def _listed(b, listing: str, text: str, what: str, seconds: float = 300) -> str:
    return wait_for(b, lambda d: d.execute_script(
        "const l = document.querySelector('#' + arguments[0] + '_assignments_list');"
        "return l && l.innerText.includes(arguments[1]) ? l.innerText : false;", listing, text),
        seconds, what, ARTIFACTS)


def _formgrader_action(b, base: str, action: str, said: str) -> None:
    """Press ``action`` (collect, generate-feedback, release-feedback) on superres's line of Manage Assignments;
    wait for the dialog that says ``said`` (the next page's load closes it)."""
    b.get(f"{base}/formgrader/manage_assignments")
    wait_for(b, lambda d: d.execute_script(
        "const row = [...document.querySelectorAll('tr')].find(r => r.querySelector('.name')"
        "  && r.querySelector('.name').textContent.trim() === 'superres');"
        "const a = row && row.querySelector('.' + arguments[0] + ' a');"
        "if (a) { a.click(); return true; } return false;", action), 120, f"the formgrader's {action}", ARTIFACTS)
    text = wait_for(b, lambda d: d.execute_script(
        "const m = document.querySelector('.modal.in .modal-body, .modal.show .modal-body');"
        "return m && m.innerText.trim() ? m.innerText : false;"), 600, f"the {action} dialog", ARTIFACTS)
    assert said in text, text


def test_a_class_round_trip_in_chromium(hub):
    """A student fetches, validates and submits in the Assignments panel; an instructor collects in the formgrader;
    the course is graded on the server with the grading command, as root, and handed back to the grader account
    (docs/hub.md); the instructor scores a written answer in the formgrader and generates and releases the
    feedback; the student fetches it in the panel and reads it."""
    from nbgrader.api import Gradebook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    student, settings, url = STUDENTS[2], hub["settings"], hub["url"]
    chromium = find_chromium()
    s = headless_chromium(*chromium)
    t = headless_chromium(*chromium)
    try:
        _browser_login(s, hub, student)
        _panel(s, hub, student)
        _press(s, "released", "Fetch", "the Fetch button of superres")
        _listed(s, "fetched", "superres", "superres among the fetched assignments")
        # Validate in the notebook's toolbar (the released notebook, not solved: its tests fail)
        s.get(f"{url}/user/{student}/lab/tree/superres/01_models.ipynb")
        wait_for(s, lambda d: d.find_elements(By.CSS_SELECTOR, ".validate-button"), 240, "the Validate button",
                 ARTIFACTS)[0].click()
        dialog = wait_for(s, lambda d: d.find_elements(By.CSS_SELECTOR, ".validation-success, .validation-failed"),
                          300, "the validation's answer", ARTIFACTS)[0]
        assert "validation-failed" in dialog.get_attribute("class") and dialog.text.strip(), dialog.text[:1000]
        # no instructor's panel in a student's JupyterLab
        assert "Create Assignment" not in s.find_element(By.TAG_NAME, "body").text
        _panel(s, hub, student)
        _press(s, "fetched", "Submit", "the Submit button of superres")
        _listed(s, "submitted", "superres", "superres among the submitted assignments")
        # the instructor collects in the formgrader
        service = f"{url}/services/{settings.service}"
        _browser_login(t, hub, INSTRUCTOR)
        _formgrader_action(t, service, "collect", "Successfully collected")
        assert (settings.course / "course" / "submitted" / student / "superres" / "01_models.ipynb").is_file()
        # graded on the server, as root, with the grading command; then the course is the grader account's again
        out = subprocess.run([sys.executable, "-m", "course.grade", "superres", "--course-dir", str(settings.course),
                              "--student", student, "--no-feedback", "--cell-timeout", "120"],
                             cwd=REPO, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        out = subprocess.run(["chown", "-R", f"{GRADER}:{GROUP}", str(settings.course)], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        # a written answer scored by hand in the formgrader
        gradebook = f"sqlite:///{settings.course / 'course' / 'gradebook.db'}"
        with Gradebook(gradebook) as gb:
            manual = [(nb.id, g.name, nb.name) for nb in gb.find_submission("superres", student).notebooks
                      for g in nb.grades if g.cell.cell_type == "markdown" and g.max_score >= 1]
        assert manual, "no written answer to score in superres"
        notebook_id, cell, notebook = manual[0]
        t.get(f"{service}/formgrader/submissions/{notebook_id}/")
        wait_for(t, lambda d: d.find_elements(By.CSS_SELECTOR, f"input.score#{cell}"), 120,
                 "the written answer's score box", ARTIFACTS)

        def scored(_):
            with Gradebook(gradebook) as gb:
                return gb.find_grade(cell, notebook, "superres", student).manual_score == 1

        # leaving the box saves it; typed again while the page's script, still loading the grades on a busy
        # machine, was not yet listening (the box is there before it)
        for attempt in range(4):
            box = t.find_element(By.CSS_SELECTOR, f"input.score#{cell}")
            box.clear()
            box.send_keys("1", Keys.TAB)
            try:
                wait_for(t, scored, 20, "the hand-given score in the gradebook", ARTIFACTS)
                break
            except AssertionError:
                if attempt == 3:
                    raise
        _formgrader_action(t, service, "generate-feedback", "Successfully generated feedback")
        _formgrader_action(t, service, "release-feedback", "Successfully released feedback")
        # the student fetches the feedback and reads it
        _panel(s, hub, student)
        _listed(s, "submitted", "feedback available to fetch", "the feedback offered to the student")
        _press(s, "submitted", "Fetch Feedback", "the Fetch Feedback button")
        _listed(s, "submitted", "view feedback", "the feedback fetched")
        pages = sorted((settings.homes / student / "superres" / "feedback").glob(f"*/{notebook}.html"))
        assert pages, "no feedback page in the student's folder"
        relative = pages[-1].relative_to(settings.homes / student)
        s.get(f"{url}/user/{student}/files/{relative}")
        wait_for(s, lambda d: d.title == notebook, 60, "the feedback page", ARTIFACTS)
        text = s.find_element(By.TAG_NAME, "body").text
        assert "Written response (Score: 1.0 /" in text and "BEGIN HIDDEN" not in text, text[:2000]
    finally:
        s.quit()
        t.quit()
