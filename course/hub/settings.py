"""What the class server is made of, written once by ``python -m course.hub setup`` and read by the hub's
configuration and every command after it: a JSON file in the hub's state folder (named to the hub by
``$SR_KIT_HUB_SETTINGS``, :data:`course.grading.contract.HUB_SETTINGS_ENV`)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from course.paths import KIT_ROOT
from course.student_kit import KIT_NAME

#: The hub's state folder by default (git-ignored): settings, the hub's database and cookie secret, the
#: passwords of the demo accounts, the proxy, the instructors' course, the exchange and the student kit.
DEFAULT_STATE = KIT_ROOT / "course" / ".hub"
SETTINGS_FILE = "settings.json"


@dataclass
class HubSettings:
    """The class server's settings. Paths are absolute; sizes in bytes; ``cpu_cores`` a cap per student."""

    state: Path                      # the hub's state folder (0711: others may pass, not list)
    students: list[str]              # Unix accounts of the students (the roster's ids)
    instructors: list[str]           # Unix accounts of the instructors and TAs (the formgrader's group)
    homes: Path = Path("/home")      # where the students' and instructors' homes are made
    group: str = "sr-instructors"    # the instructors' Unix group (the course folder's, the formgrader's)
    grader: str = "grader-superres"  # the account the formgrader service runs as (it owns the course folder)
    host: str = "127.0.0.1"
    port: int = 8000
    language: str = "zh-CN"          # JupyterLab's language in the students' servers (en or zh-CN)
    memory_bytes: int = 4 << 30      # per student's server, all its kernels included (a cgroup)
    cpu_cores: float = 1.0
    processes: int = 512
    gradebook_url: str | None = None  # $SR_KIT_GRADEBOOK_URL of the formgrader (None: the course's SQLite file)
    proxy: Path = field(default_factory=lambda: DEFAULT_STATE / "proxy" / "node_modules" / ".bin" /
                        "configurable-http-proxy")

    @property
    def course(self) -> Path:
        """The instructors' course folder (a copy of the course, the grader account's, the group's to read)."""
        return self.state / "course"

    @property
    def exchange(self) -> Path:
        """nbgrader's exchange between the students and the formgrader (1777)."""
        return self.state / "exchange"

    @property
    def student_kit(self) -> Path:
        """The student kit the students' servers run from (``sr_utils``, ``data_tools``, their nbgrader and
        JupyterLab configuration), built from the checkout by ``setup``; readable by everyone."""
        return self.state / "student-kit" / KIT_NAME

    @property
    def server_config(self) -> Path:
        """The students' Jupyter server configuration (nbgrader's instructor extensions off), copied by ``setup``
        from ``course/hub/student_config/``; readable by everyone."""
        return self.state / "student-server"

    @property
    def service(self) -> str:
        """The formgrader's hub service (its URL: /services/<service>/)."""
        return f"formgrader-{self.grader.removeprefix('grader-')}"

    def save(self) -> Path:
        path = self.state / SETTINGS_FILE
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> "HubSettings":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run `python -m course.hub setup` first")
        data = json.loads(path.read_text())
        paths = {f.name for f in dataclasses.fields(cls) if f.type in ("Path", Path)}
        return cls(**{k: Path(v) if k in paths and v is not None else v for k, v in data.items()})
