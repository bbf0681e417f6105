"""What a sandbox is given: :class:`SandboxSpec`, serialisable to JSON (``$SR_KIT_SANDBOX``) from the grading
command to nbgrader, its kernels' launcher and the check servers; and :class:`SandboxUnavailable`, raised where no
sandbox can be built."""
from __future__ import annotations

import dataclasses
import json
import os

from course.grading.contract import SANDBOX_ENV

from .resources import Limits


@dataclasses.dataclass
class SandboxSpec:
    """Everything a sandbox needs, serialisable to JSON (``$SR_KIT_SANDBOX``)."""

    enabled: bool = True             # False: --unsafe (no sandbox; refused unless asked for)
    data_dir: str = ""               # read-only data folder (SR_DATA_DIR inside)
    code_dirs: list = dataclasses.field(default_factory=list)  # read-only public packages (sr_utils, data_tools)
    course_root: str = ""            # kernels may only run in <course_root>/course/autograded/...
    uid: int | None = None           # as root: the unprivileged uid student code runs as
    cgroup_procs: list = dataclasses.field(default_factory=list)  # as root: the worker's Cgroup.procs
    base_processes: int = 0          # as a user: its processes now (kernels < 5.14 count them in RLIMIT_NPROC)
    deny_memfd: bool = False         # --no-cgroup: memfd memory escapes RLIMIT_DATA, so memfd_create is denied
    numba_cache: str = ""            # read-only compiled imresize kernels (prepare_numba_cache), copied into /tmp
    niceness: int = 0                # scheduling niceness (checks_niceness(): the student side of the checks)
    limits: Limits = dataclasses.field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "SandboxSpec":
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        return cls(**d)

    @classmethod
    def from_env(cls) -> "SandboxSpec | None":
        text = os.environ.get(SANDBOX_ENV)
        return cls.from_json(text) if text else None


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""
