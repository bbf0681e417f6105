"""Private mount namespaces in which other accounts' processes see the machine the way the class server means
them to: the kit's Python reachable, the kit's checkout gone.

Each covers one folder with a tmpfs (mode 0755) in which only chosen entries are bound back from the real folder;
nothing else of the covered folder is visible inside, and nothing changes outside the namespace. Root only (it
mounts); the command runs after the mounts, in the namespace, and every process it starts stays there.

- :func:`with_readable_python`: a shared machine installs Python where every account can run it (``/usr``,
  ``/opt``). Where the kit's Python sits below a folder closed to others (pyenv under ``/root``, as on the kit's
  own build machine), a command that must run as another account -- the hub and the servers it starts, a test's
  throw-away account -- runs where that folder holds the Python install alone.
- :func:`cover_script`: a student's server runs where the kit's checkout (its solutions in ``source/`` and
  ``.git``, the reference solution, the hidden checks) holds only the Python environment and the folders the
  server needs; the students' packages come from a student kit instead (``course.hub.spawner``).
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def closed_python_folder(executable: str | None = None) -> tuple[Path, str] | None:
    """(the outermost folder above this Python's real executable that other accounts cannot enter, the name of
    its entry that holds the install), or None when others can reach the executable."""
    real = Path(os.path.realpath(executable or sys.executable))
    closed = next((d for d in reversed(real.parents) if not os.stat(d).st_mode & 0o001), None)
    if closed is None:
        return None
    return closed, real.relative_to(closed).parts[0]


def cover_script(folder: Path, keep: list[Path]) -> str:
    """Shell commands (``sh``, as root, in a private mount namespace) that cover ``folder`` with a tmpfs holding
    only ``keep`` (folders or files below ``folder``), each bound from the real one: the tmpfs is made and filled
    in a staging folder of ``/tmp``, then moved onto ``folder`` in one step."""
    q = shlex.quote
    steps = ['stage=$(mktemp -d /tmp/.sr-kit-cover-XXXXXX)', 'mount -t tmpfs -o mode=0755 none "$stage"']
    for path in keep:
        rel = q(str(Path(path).relative_to(folder)))
        make = f'mkdir -p "$stage"/{rel}' if Path(path).is_dir() else \
            f'mkdir -p "$(dirname "$stage"/{rel})" && touch "$stage"/{rel}'
        steps.append(f'{make} && mount --bind {q(str(path))} "$stage"/{rel}')
    steps += [f'mount --move "$stage" {q(str(folder))}', 'rmdir "$stage"']
    return " && ".join(steps)


def with_readable_python(argv: list[str], executable: str | None = None) -> list[str]:
    """``argv`` run where other accounts can run this Python (see the module's docstring); ``argv`` unchanged
    when nothing is closed."""
    closed = closed_python_folder(executable)
    if closed is None:
        return list(map(str, argv))
    folder, keep = closed
    script = cover_script(folder, [folder / keep]) + ' && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *map(str, argv)]
