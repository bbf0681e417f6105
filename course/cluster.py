"""A Dask cluster that grades: its TLS files, its scheduler and its workers, with the course's settings.

    python -m course.cluster credentials [--dir DIR]                  # once: DIR (default course/.cluster/)
    python -m course.cluster scheduler [--host HOST] [--port 8786]    # on one machine
    python -m course.cluster worker tls://HOST:8786 --course-dir DIR  # on each grading machine
    python -m course.grade superres --cluster tls://HOST:8786         # then, where the class was collected

``scheduler`` and ``worker`` run Dask's own ``dask scheduler`` and ``dask worker`` (options after ``--`` are
theirs), always over TLS with the course's certificate: whoever can reach a Dask worker can run code on it, so
only holders of the key may connect (keep the folder 0700; copy it to each worker machine privately). A worker
grades in its own checkout of the kit (``--course-dir``; one worker process per folder), ``--submissions``
submissions at a time, and needs ``$SR_KIT_GRADEBOOK_URL`` set to the class's PostgreSQL gradebook. The recipe for
several machines is in docs/grading.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from course.grading.contract import CLUSTER_CA, CLUSTER_DIR, CLUSTER_KEY, CLUSTER_WORKER_MODULE
from course.grading.errors import GradingError
from course.paths import KIT_ROOT, tool

DEFAULT_PORT = 8786  # Dask's


def tls_args(folder: Path) -> list[str]:
    """``dask scheduler`` / ``dask worker`` options for the course's TLS files in ``folder``."""
    ca, key = str(folder / CLUSTER_CA), str(folder / CLUSTER_KEY)
    return ["--tls-ca-file", ca, "--tls-cert", ca, "--tls-key", key]


def scheduler_command(folder: Path, host: str, port: int, extra: list[str]) -> list[str]:
    return [str(tool("dask")), "scheduler", "--protocol", "tls", "--host", host, "--port", str(port),
            "--no-dashboard", *tls_args(folder), *extra]


def worker_command(address: str, folder: Path, course_dir: Path, submissions: int, sandbox_threads: int,
                   extra: list[str]) -> list[str]:
    return [str(tool("dask")), "worker", address, "--nworkers", "1", "--nthreads", str(submissions),
            "--no-dashboard", *tls_args(folder), *extra, "--preload", CLUSTER_WORKER_MODULE,
            "--course-dir", str(Path(course_dir).resolve()), "--threads", str(sandbox_threads)]


class LocalCluster:
    """A scheduler and one worker process per course folder on this machine, on loopback, started with this
    module's own commands (as an instructor starts them): ``address``; ``workers``: {name: process}; ``stop()``
    ends the workers, then the scheduler. For one machine's tests and benchmarks; each worker grades one
    submission at a time (``submissions``) and is no nanny's (a killed worker stays dead)."""

    def __init__(self, credentials: Path, course_dirs: dict[str, Path], env: dict, logs: Path, submissions: int = 1,
                 timeout: float = 60.0):
        import json
        import subprocess
        import time

        self.scheduler, self.workers, self._logs = None, {}, []
        logs.mkdir(parents=True, exist_ok=True)
        scheduler_file = logs / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        module = [sys.executable, "-m", "course.cluster"]
        try:
            log = self._log(logs / "scheduler.log")
            self.scheduler = subprocess.Popen([*module, "scheduler", "--dir", str(credentials), "--port", "0", "--",
                                               "--scheduler-file", str(scheduler_file)], env=env, stdout=log,
                                              stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while not scheduler_file.exists():
                if self.scheduler.poll() is not None or time.monotonic() > deadline:
                    raise GradingError(f"the scheduler did not start: {logs / 'scheduler.log'}")
                time.sleep(0.1)
            time.sleep(0.1)  # (its file written whole)
            self.address = json.loads(scheduler_file.read_text())["address"]
            for name, folder in course_dirs.items():
                log = self._log(logs / f"{name}.log")
                self.workers[name] = subprocess.Popen(
                    [*module, "worker", self.address, "--dir", str(credentials), "--course-dir", str(folder),
                     "--submissions", str(submissions), "--", "--no-nanny", "--name", name],
                    env=env, stdout=log, stderr=subprocess.STDOUT)
        except BaseException:
            self.stop()
            raise

    def _log(self, path: Path):
        f = open(path, "wb")
        self._logs.append(f)
        return f

    def stop(self) -> None:
        import subprocess

        for proc in [*self.workers.values(), self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for f in self._logs:
            f.close()

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    from course.grading.cluster import credentials_dir, make_credentials

    ap = argparse.ArgumentParser(prog="python -m course.cluster", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("credentials", help="make the cluster's certificate and key")
    s = sub.add_parser("scheduler", help="run the Dask scheduler (TLS)")
    w = sub.add_parser("worker", help="run a Dask worker that grades in --course-dir (TLS)")
    for p in (c, s, w):
        p.add_argument("--dir", type=Path, default=KIT_ROOT / CLUSTER_DIR, help="the TLS files' folder")
    c.add_argument("--force", action="store_true", help="replace existing files (every machine needs the new ones)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (the workers' network; default: "
                   "this machine only)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT)
    w.add_argument("address", help="the scheduler, tls://HOST:PORT")
    w.add_argument("--course-dir", type=Path, required=True, help="this worker's checkout of the kit")
    w.add_argument("--submissions", type=int, default=max(1, os.cpu_count() or 1),
                   help="submissions graded at once (default: cores)")
    w.add_argument("--sandbox-threads", type=int, default=1, help="threads of each sandboxed process")
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        if args.command == "credentials":
            if (args.dir / CLUSTER_KEY).exists() and not args.force:
                print(f"{args.dir / CLUSTER_KEY} exists already (--force replaces it)")
                return 0
            folder = make_credentials(args.dir)
            print(f"wrote {folder / CLUSTER_CA} and {folder / CLUSTER_KEY} (0600): copy {folder} to every worker "
                  "machine, privately")
            return 0
        folder = credentials_dir(KIT_ROOT, args.dir)
        if not tool("dask").exists():
            raise GradingError(f"Dask is not installed next to {sys.executable}: pip install -e '.[instructor]'")
        if args.command == "scheduler":
            command = scheduler_command(folder, args.host, args.port, extra)
        else:
            if not (args.course_dir / "nbgrader_config.py").is_file():
                raise GradingError(f"{args.course_dir} has no nbgrader_config.py (--course-dir: this worker's "
                                   "checkout of the kit)")
            command = worker_command(args.address, folder, args.course_dir, args.submissions, args.sandbox_threads,
                                     extra)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
