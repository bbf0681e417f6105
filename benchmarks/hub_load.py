"""Load and faults on the class server: N simulated students log in, start their servers, fetch, validate one
notebook and submit, all at once, while two TAs work in the formgrader (collecting, listing the submissions) and
write manual grades into the PostgreSQL gradebook; meanwhile the hub is restarted, the proxy killed (the hub starts
a new one) and PostgreSQL restarted. Every student retries what failed, with the message it got, like a student
pressing the button again. Loopback only; everything is made in a temporary folder (accounts, group, hub,
database) and removed at the end; the whole run stops by itself after ``--timeout`` seconds.

    .venv/bin/python benchmarks/hub_load.py [--students 40] [--timeout 900]

Prints the time until every student had submitted, each step's median and slowest time, the retries and the
messages students saw, the faults and how long each lasted, and checks: every student's submission is in the
exchange and, once collected, in the course exactly once; every TA grade written is in the gradebook. Exit 1
when a check fails. Root only (it makes Unix accounts); needs PostgreSQL (``make gradebook-tools``), the hub's
proxy (``make hub-tools``) and the ``hub`` extra.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE_ID, ASSIGNMENT = "sr-course-kit", "superres"
TAG = f"{os.getpid() % 1000:03d}"


class Clock:
    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


class Student:
    """One simulated student: each step retried (at most ``tries`` failures, 2 s apart) until it succeeds; while the
    hub says the server is starting, the student waits (bounded by the run's deadline), as its page does."""

    def __init__(self, name: str, password: str, url: str, clock: Clock, deadline: float, tries: int = 60):
        import requests

        self.name, self.password, self.url, self.clock, self.deadline, self.tries = (name, password, url, clock,
                                                                                     deadline, tries)
        self.session = requests.Session()
        self.times: dict[str, float] = {}
        self.retries: dict[str, int] = {}
        self.messages: list[str] = []
        self.done_at: float | None = None
        self.headers = {}

    def step(self, what: str, attempt) -> None:
        import requests

        t0, failed = time.monotonic(), 0
        while failed < self.tries:
            if self.clock() > self.deadline:
                raise TimeoutError(f"{self.name}: {what} not done before the deadline")
            try:
                ok, message = attempt()
            except requests.RequestException as e:
                ok, message = False, f"{type(e).__name__}"
            if ok:
                self.times[what] = time.monotonic() - t0
                return
            if ok is False:  # (None: the hub's page says the server is starting; the student waits, as in a browser)
                failed += 1
                self.retries[what] = self.retries.get(what, 0) + 1
            if message:
                self.messages.append(f"{what}: {message}"[:200])
            time.sleep(2.0)
        raise RuntimeError(f"{self.name}: {what} failed {self.tries} times: {self.messages[-3:]}")

    def run(self) -> None:
        u, s = self.url, self.session

        def login():
            s.get(f"{u}/hub/login", timeout=30)
            r = s.post(f"{u}/hub/login", data={"username": self.name, "password": self.password,
                                               "_xsrf": s.cookies.get("_xsrf")}, timeout=120)
            return r.status_code == 200 and "/hub/login" not in r.url, f"{r.status_code} {r.url[len(u):][:80]}"

        def shown(r) -> str:
            """What the student saw: the status and the page, or the JSON message."""
            try:
                said = str(r.json().get("message") or r.json().get("value") or "")[:80]
            except ValueError:
                said = ""
            return f"{r.status_code} {r.url[len(u):].split('?')[0][:60]} {said}".strip()

        def revive(r) -> None:
            """What a student does when the hub says the server is not running: press its *Start* button."""
            if r.status_code in (404, 424, 500, 503) or "/hub/spawn/" in r.url or "/hub/home" in r.url:
                s.get(f"{u}/hub/spawn/{self.name}", timeout=120)

        def server():
            r = s.get(f"{u}/user/{self.name}/lab", timeout=120)
            ok = r.status_code == 200 and r.url.startswith(f"{u}/user/{self.name}/lab")
            if ok:
                self.headers = {"X-XSRFToken": s.cookies.get("_xsrf", path=f"/user/{self.name}/")}
                return True, None
            if "spawn-pending" in r.url and r.status_code == 200:
                return None, None
            revive(r)
            return False, shown(r)

        def action(name, data):
            def attempt():
                r = s.post(f"{u}/user/{self.name}/assignments/{name}", data=data, headers=self.headers, timeout=600)
                ok = r.status_code == 200 and r.json().get("success") is True
                if not ok:
                    revive(r)
                return ok, None if ok else shown(r)
            return attempt

        self.step("login", login)
        self.step("server", server)
        self.step("fetch", action("fetch", {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}))

        def validate():
            r = s.post(f"{u}/user/{self.name}/assignments/validate", data={"path": f"{ASSIGNMENT}/01_models.ipynb"},
                       headers=self.headers, timeout=600)
            ok = r.status_code == 200 and r.json().get("success") is True
            if not ok:
                revive(r)
            return ok, shown(r)

        self.step("validate", validate)
        self.step("submit", action("submit", {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}))
        self.done_at = self.clock()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("error: run as root (the class server makes Unix accounts)", file=sys.stderr)
        return 2
    from course.gradebook_server import start as start_pg, stop as stop_pg
    from course.grading.contract import GRADEBOOK_URL_ENV
    from nbgrader.api import Gradebook

    from course.hub import accounts
    from course.hub.mounts import with_readable_python
    from course.hub.settings import HubSettings
    from course.paths import tool_env

    students = [f"ld{TAG}s{i:02d}" for i in range(args.students)]
    tas = [f"ld{TAG}ta{i}" for i in (1, 2)]
    grader, group = f"ld{TAG}g", f"ld{TAG}grp"
    base = Path(tempfile.mkdtemp(prefix="srk-load-"))
    base.chmod(0o755)
    state, clock, problems = base / "state", Clock(), []
    hub_log = open(base / "hub.log", "wb")
    procs = {}
    stop_all = threading.Event()
    try:
        accounts.ensure_group(group)  # (the gradebook's socket folder is the instructors' group's: TAs, grader)
        url_pg = start_pg(base / "pg", group=group, log=lambda *a: None)
        os.environ.update(tool_env(**{GRADEBOOK_URL_ENV: url_pg}))
        roster = base / "roster.csv"
        roster.write_text("id,first_name,last_name,email\n" + "".join(f"{s},{s},Load,\n" for s in students))
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "course.hub", "setup", "--roster", str(roster),
                              *[a for ta in tas for a in ("--instructor", ta)], "--state", str(state), "--homes",
                              str(base / "homes"), "--port", "0", "--group", group, "--grader", grader],
                             cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:])
            return 1
        print(f"setup: {len(students)} students, {len(tas)} TAs in {time.monotonic() - t0:.0f} s", flush=True)
        settings = HubSettings.load(state / "settings.json")
        passwords = dict(line.split(",", 1) for line in (state / "passwords.csv").read_text().splitlines())
        url = f"http://127.0.0.1:{settings.port}"

        def start_hub():
            procs["hub"] = subprocess.Popen([sys.executable, "-m", "course.hub", "start", "--state", str(state)],
                                            cwd=REPO, stdout=hub_log, stderr=subprocess.STDOUT)
            wait_up(f"{url}/hub/api/", 120)

        def wait_up(address, seconds):
            import requests

            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    if requests.get(address, timeout=5).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            raise TimeoutError(f"{address} not up within {seconds} s")

        start_hub()
        clock = Clock()
        deadline = args.timeout
        faults = []

        def inject():
            """The faults, one after the other, while the students work."""
            def outage(name, down, up_check):
                t = clock()
                down()
                up_check()
                faults.append((name, t, clock() - t))

            time.sleep(20)
            outage("hub restarted", lambda: (subprocess.run([sys.executable, "-m", "course.hub", "stop", "--state",
                                                             str(state), "--hub-only"], cwd=REPO,
                                                            capture_output=True), procs["hub"].wait(60)),
                   start_hub)
            time.sleep(15)

            def kill_proxy():
                os.kill(int((state / "proxy.pid").read_text()), signal.SIGKILL)

            outage("proxy killed", kill_proxy, lambda: (time.sleep(1), wait_up(f"{url}/hub/api/", 120)))
            time.sleep(15)
            pg_ctl = next(Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))
            pg_user = (base / "pg" / "data").owner()
            # (the new server logs where course.gradebook_server's did, never into a pipe of this script's: a
            # server holding the pipe open would keep the restart command waiting for it)
            outage("PostgreSQL restarted", lambda: subprocess.run(
                ["runuser", "-u", pg_user, "--", str(pg_ctl), "-D", str(base / "pg" / "data"), "-l",
                 str(base / "pg" / "server.log"), "-m", "fast", "-w", "-t", "110", "restart"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=True), lambda: None)

        ta_errors, rounds_done = [], {ta: 0 for ta in tas}
        earlier, cells = "earlier", {ta: [f"q{i}-{ta}" for i in (1, 2)] for ta in tas}
        with Gradebook(url_pg) as gb:  # an earlier assignment whose written answers the TAs grade meanwhile
            gb.add_assignment(earlier)
            gb.add_notebook("answers", earlier)
            for ta_cells in cells.values():
                for cell in ta_cells:
                    gb.add_task_cell(cell, "answers", earlier, max_score=3, cell_type="markdown")
            for st in students:
                gb.update_or_create_student(st)
                gb.add_submission(earlier, st)

        def ta_work(ta):
            """A TA in the formgrader (collecting, listing the submissions) and grading the earlier assignment's
            written answers, one commit per score as the formgrader makes them; a write that fails (PostgreSQL
            restarting) is made again, like a TA saving again."""
            import requests

            s = requests.Session()
            s.get(f"{url}/hub/login", timeout=30)
            s.post(f"{url}/hub/login", data={"username": ta, "password": passwords[ta],
                                             "_xsrf": s.cookies.get("_xsrf")}, timeout=120)
            service = f"{url}/services/{settings.service}/formgrader"
            r = 0
            while not stop_all.is_set():
                try:
                    page = s.get(service, timeout=60)
                    headers = {"X-XSRFToken": s.cookies.get("_xsrf", path=f"/services/{settings.service}/")}
                    if page.status_code == 200:
                        s.post(f"{service}/api/assignment/{ASSIGNMENT}/collect", headers=headers, timeout=300)
                        s.get(f"{service}/api/submissions/{ASSIGNMENT}", headers=headers, timeout=60)
                except requests.RequestException as e:
                    ta_errors.append(f"{ta} formgrader: {type(e).__name__}")
                for st in students:
                    for cell in cells[ta]:
                        while True:
                            try:
                                with Gradebook(url_pg) as gb:
                                    grade = gb.find_grade(cell, "answers", earlier, st)
                                    grade.manual_score = (r + len(st) + len(cell)) % 4
                                    gb.db.commit()
                                break
                            except Exception as e:  # noqa: BLE001 (saved again, as a TA would)
                                ta_errors.append(f"{ta} gradebook: {type(e).__name__}: {str(e)[:100]}")
                                time.sleep(1)
                rounds_done[ta] = r = r + 1

        def inject_and_say():
            try:
                inject()
            except Exception as e:  # noqa: BLE001 (said in the report)
                problems.append(f"a fault could not be made: {type(e).__name__}: {e}")

        fault_thread = threading.Thread(target=inject_and_say, daemon=True)
        ta_threads = [threading.Thread(target=ta_work, args=(ta,), daemon=True) for ta in tas]
        fault_thread.start()
        for t in ta_threads:
            t.start()
        sims = [Student(name, passwords[name], url, clock, deadline) for name in students]
        with ThreadPoolExecutor(max_workers=len(sims)) as pool:
            futures = [pool.submit(sim.run) for sim in sims]
            for f in futures:
                try:
                    f.result()
                except Exception as e:  # noqa: BLE001 (reported, the run goes on)
                    problems.append(str(e)[:300])
        fault_thread.join(timeout=300)
        stop_all.set()
        for t in ta_threads:
            t.join(timeout=120)
        done = [sim.done_at for sim in sims if sim.done_at is not None]
        print(f"\n{len(done)}/{len(sims)} students submitted; the last at {max(done) if done else 0:.0f} s")
        for what in ("login", "server", "fetch", "validate", "submit"):
            times = [sim.times[what] for sim in sims if what in sim.times]
            if times:
                print(f"  {what:9s} median {statistics.median(times):6.1f} s, slowest {max(times):6.1f} s, "
                      f"retries {sum(sim.retries.get(what, 0) for sim in sims)}")
        for name, at, lasted in faults:
            print(f"  fault: {name} at {at:.0f} s, service back after {lasted:.1f} s")
        seen = sorted({m.split(': ', 1)[1][:100] for sim in sims for m in sim.messages})
        print(f"  messages students saw (distinct): {len(seen)}")
        for m in seen[:20]:
            print(f"    {m}")
        print(f"  TA errors (retried): {len(ta_errors)}; e.g. {ta_errors[:2]}")
        with Gradebook(url_pg) as gb:  # every TA's last round is there
            for ta in tas:
                last = rounds_done[ta] - 1
                for st in students:
                    for cell in cells[ta]:
                        if last >= 0 and gb.find_grade(cell, "answers", earlier, st).manual_score != \
                                (last + len(st) + len(cell)) % 4:
                            problems.append(f"{ta}'s score of {st}/{cell} (round {last}) is not in the gradebook")
        print(f"  TA rounds over the class: {rounds_done}")
        inbound = settings.exchange / COURSE_ID / "inbound"
        for name in students:
            n = len([p for p in inbound.iterdir() if p.name.startswith(f"{name}+{ASSIGNMENT}+")])
            if n != 1:
                problems.append(f"{name}: {n} submissions in the exchange (1 expected)")
        collect = subprocess.run(with_readable_python(
            ["runuser", "-u", grader, "--", "env", "-C", str(settings.course), f"HOME={accounts.home_of(grader)}",
             f"PATH={Path(sys.executable).parent}:/usr/bin:/bin", f"SR_KIT_EXCHANGE={settings.exchange}",
             f"{GRADEBOOK_URL_ENV}={url_pg}", str(Path(sys.executable).parent / "nbgrader"), "collect", ASSIGNMENT]),
            capture_output=True, text=True)
        submitted = settings.course / "course" / "submitted"
        collected = sorted(p.name for p in submitted.iterdir()) if submitted.is_dir() else []
        if collected != sorted(students):
            problems.append(f"collected {len(collected)} students' submissions, not the {len(students)} of the class "
                            f"({collect.stderr[-300:]})")
        print(f"checks: {'all hold' if not problems else f'{len(problems)} failed'}")
        for p in problems[:20]:
            print(f"  {p}")
        return 0 if not problems else 1
    finally:
        stop_all.set()
        subprocess.run([sys.executable, "-m", "course.hub", "stop", "--state", str(state)], cwd=REPO,
                       capture_output=True)
        hub_log.close()
        for name in [*students, *tas, grader]:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        time.sleep(1)
        for name in [*students, *tas, grader]:
            accounts.remove_account(name)
        subprocess.run(["groupdel", group], capture_output=True)
        stop_pg(base / "pg")
        shutil.copyfile(base / "hub.log", Path(tempfile.gettempdir()) / "srk-load-hub.log")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
