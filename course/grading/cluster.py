"""The grading command's side of a cluster run (``python -m course.grade superres --cluster tls://HOST:8786``):
each submission sent to a Dask worker (:mod:`.cluster_worker`), which grades it the way a one-machine run does and
writes the grades into the shared PostgreSQL gradebook; what it sends back -- the graded notebooks, verdicts and
log -- lands in this course folder, where feedback, ``grades.csv``, the breakdown and the summary are made as usual.

Why Dask (docs/grading.md): a pip-installable scheduler and worker, nothing else to run (Celery needs a broker,
Ray its own cluster runtime); a task whose worker dies is given to another worker by the scheduler (at most
``distributed.scheduler.allowed-failures`` times); ``dask-jobqueue`` starts the same workers through Slurm, PBS or
SGE. Every connection is TLS with the course's own certificate (:func:`make_credentials`): a Dask worker runs the
Python it is sent, so only holders of the course's key may talk to the scheduler or the workers.
"""
from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path

from course.gradebook_url import gradebook_url, is_sqlite, shown_url
from course.grading.cluster_worker import (gradebook_identity, grade_submission, kit_fingerprint, pack_tree,
                                           unpack_tree, worker_status)
from course.grading.contract import CLUSTER_CA, CLUSTER_DIR, CLUSTER_KEY, GRADEBOOK_URL_ENV, SUBMITTED_DIR
from course.grading.errors import GradingError
from course.sandbox import Limits

WORKERS_TIMEOUT = 60.0  # seconds to wait for a first worker


def make_credentials(folder: Path, days: int = 365) -> Path:
    """A self-signed certificate (its own CA) and its key in ``folder`` (0700, files 0600): what the scheduler, the
    workers and the grading command present to each other. Copy the folder to every worker machine, privately."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sr-kit-grading")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("sr-kit-grading")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    for filename, data in ((CLUSTER_KEY, key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption())),
                           (CLUSTER_CA, cert.public_bytes(serialization.Encoding.PEM))):
        tmp = folder / f".{filename}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / filename)
    return folder


def credentials_dir(course_root: Path, credentials: Path | None = None) -> Path:
    """The folder of the cluster's TLS files: ``credentials`` or the course's :data:`.contract.CLUSTER_DIR`,
    refused with what to do where they are missing or readable by others."""
    folder = Path(credentials) if credentials else Path(course_root) / CLUSTER_DIR
    for name in (CLUSTER_CA, CLUSTER_KEY):
        if not (folder / name).is_file():
            raise GradingError(f"{folder / name} is missing: make the cluster's TLS files with `python -m "
                               f"course.cluster credentials --dir {folder}` and copy the folder to every worker "
                               "machine")
    if (folder / CLUSTER_KEY).stat().st_mode & 0o077:
        raise GradingError(f"{folder / CLUSTER_KEY} is readable by other accounts: chmod 600 it (whoever holds "
                           "it can run code on the workers)")
    return folder


def security(folder: Path):
    """Dask's TLS settings with the files of ``folder`` (every role presents the same certificate)."""
    from distributed.security import Security

    ca, key = str(Path(folder) / CLUSTER_CA), str(Path(folder) / CLUSTER_KEY)
    return Security(require_encryption=True, tls_ca_file=ca, tls_client_cert=ca, tls_client_key=key,
                    tls_scheduler_cert=ca, tls_scheduler_key=key, tls_worker_cert=ca, tls_worker_key=key)


def run_options(course_root: Path, assignment: str, unsafe: bool, limits: Limits, cell_timeout: int,
                submission_timeout: float, no_cgroup: bool) -> dict:
    """What every worker grades with: this run's sandbox, limits and timeouts (each worker keeps its own
    ``threads``), and the fingerprint of the kit and source its course must have."""
    return {"fingerprint": kit_fingerprint(course_root, assignment), "unsafe": unsafe, "no_cgroup": no_cgroup,
            "cell_timeout": cell_timeout, "submission_timeout": submission_timeout,
            "limits": {k: v for k, v in vars(limits).items() if k != "threads"}}


def check_workers(client, course_root: Path, assignment: str, options: dict, log=print) -> list[dict]:
    """Every worker's course, kit and gradebook, checked before anything is sent: a :class:`GradingError` names
    each worker that cannot grade this run and why."""
    url = gradebook_url(course_root)
    if is_sqlite(url):
        raise GradingError(f"--cluster needs a gradebook every worker writes to: set ${GRADEBOOK_URL_ENV} to the "
                           "class's PostgreSQL gradebook (python -m course.gradebook_server start; docs/grading.md)")
    ours = gradebook_identity(url)
    statuses = list(client.run(worker_status, assignment).values())
    problems = []
    for s in statuses:
        if s.get("problem"):
            problems.append(f"{s['worker']}: {s['problem']}")
        elif s["fingerprint"] != options["fingerprint"]:
            problems.append(f"{s['worker']}: its kit or {assignment} source (in {s['course']}) differs from this "
                            "course's: bring its checkout to the same commit")
        elif s["gradebook"] != ours:
            problems.append(f"{s['worker']}: its gradebook is {s['gradebook']}, this course's is {ours} "
                            f"({shown_url(url)}): give it the same ${GRADEBOOK_URL_ENV}")
    if problems:
        raise GradingError("workers that cannot grade this run:\n  " + "\n  ".join(problems))
    for s in statuses:
        log(f"  worker {s['worker']}: course {s['course']}")
    return statuses


def grade_on_cluster(address: str, students: list[str], assignment: str, course_root: Path, options: dict,
                     credentials: Path | None = None, progress: bool = True, graded=None, log=print) -> list[dict]:
    """Grade ``students`` on the Dask cluster at ``address``: one task per submission, any worker; returns the
    results as :func:`.run_loop.autograde_all` does (plus ``worker``), each one's files already in ``course_root``.
    ``graded(result)`` is called as each submission is done."""
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    course_root = Path(course_root)
    sec = security(credentials_dir(course_root, credentials))
    try:
        client = Client(address, security=sec, timeout=30, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise GradingError(f"no Dask scheduler answers at {address} ({type(e).__name__}: {e}): start one with "
                           "`python -m course.cluster scheduler`") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except TimeoutError:
            raise GradingError(f"no worker joined the cluster at {address} within {WORKERS_TIMEOUT:.0f} s: start "
                               f"one with `python -m course.cluster worker {address} --course-dir DIR`") from None
        check_workers(client, course_root, assignment, options, log)
        run = uuid.uuid4().hex[:8]
        futures = {}
        for student in students:
            hand_in = pack_tree(course_root / SUBMITTED_DIR / student / assignment)
            future = client.submit(grade_submission, student, assignment, hand_in, options, pure=False,
                                   key=f"grade-{assignment}-{student}-{run}")
            futures[future] = student
        results = []
        with tqdm(total=len(students), desc="autograde", unit="submission", disable=not progress) as bar:
            for future in as_completed(futures, loop=client.loop):
                student = futures[future]
                try:
                    result = future.result()
                except Exception as e:  # noqa: BLE001 (that submission is listed for attention, the class goes on)
                    result = {"student": student, "seconds": 0.0,
                              "status": f"not graded on the cluster: {type(e).__name__}: {str(e)[:400]}"}
                for where, data in result.pop("files", {}).items():
                    target = course_root / where
                    if where.endswith(".log"):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                    else:
                        unpack_tree(data, target)
                if graded is not None:
                    graded(result)
                results.append(result)
                bar.update()
        order = {s: i for i, s in enumerate(students)}
        return sorted(results, key=lambda r: order[r["student"]])
    finally:
        client.close()
