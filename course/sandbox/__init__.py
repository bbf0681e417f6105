"""Sandboxes for untrusted student code, built on bubblewrap (``bwrap``, Debian/Ubuntu package ``bubblewrap``).

Two things run student code while grading, and both run here:

* the Jupyter kernel that executes a submitted notebook (``kernel`` entry point, the command of the
  ``sr-sandbox`` kernelspec that :func:`write_kernelspec` writes);
* the student side of the hidden checks (:func:`student_launcher`): a process that imports the student's modules
  and answers plain requests; the checks themselves and the reference solution stay in the trusted process.

What the sandbox sees: the system folders (``/usr``, ``/etc``, ...) and the Python installation read-only, the
kit's public code (``sr_utils``, ``data_tools``) and the data folder read-only, the submission's own grading
folder read-write, a private size-limited ``/tmp``. Nothing else of the machine's ``/home``, ``/root``, ``/tmp``,
``/work``...: no ``source/``, no ``course/grading/``, no gradebook, no other student. No network (new network
namespace: not even 127.0.0.1), own PID namespace (it cannot signal the grader; all its processes die with it),
``--die-with-parent``, ``--new-session``. Limits (``setrlimit``): CPU seconds, data memory, file size, processes.
No new namespace and no mount from inside (the seccomp filter, :func:`seccomp_program`), and no view of any cgroup
(an empty ``/sys/fs/cgroup``). As root, each grading worker's :class:`Cgroup` bounds memory and processes, and
gives it the same CPU weight as every other worker.

As root, the sandboxed process drops to a dedicated unprivileged uid (one per grading worker) after the mounts
are made, so that the process limit applies (Linux does not enforce ``RLIMIT_NPROC`` on root) and nothing it
does runs with root's rights. As an ordinary user, bwrap builds the sandbox in a user namespace.

The settings travel as JSON in ``$SR_KIT_SANDBOX`` from the grading command to nbgrader and its kernels
(:class:`SandboxSpec`; the variables and folders the grading processes share: :mod:`course.grading.contract`).

The parts: :mod:`.spec` (the settings), :mod:`.isolation` (the bwrap command, the uid pool, the probe),
:mod:`.seccomp` (the system-call filter), :mod:`.resources` (per-process limits, niceness, cgroups, tmpfs mounts),
:mod:`.grading_folder` (the one folder sandboxed code writes: its size limit, what is removed from it),
:mod:`.kernel` (what runs inside: the ``sr-sandbox`` kernel, the hidden checks' student side) and the submission's
zygote that forks both (:mod:`.submission_zygote`, :mod:`.kernel_zygote` with :mod:`.landlock`,
:mod:`.kernel_provisioner`). This package re-exports their public names; ``python -I -m course.sandbox kernel
CONNECTION_FILE`` is the kernelspec's command.
"""
from __future__ import annotations

from .grading_folder import (MAX_FOLDER_DEPTH, SizeLimitedFolder, chown_tree, enforce_folder_size_limit,
                             prune_deep_folders, remove_special_files)
from .isolation import (FIRST_SANDBOX_UID, SANDBOX_UIDS, UID_LOCKS, UidPool, base_env, bwrap_command, probe,
                        python_dirs, user_process_count)
from .kernel import (KERNEL_NAME, hand_to_sandbox_uid, kernel_main, prepare_numba_cache, student_launcher,
                     write_kernelspec)
from .resources import CHECKS_NICENESS, Cgroup, Limits, checks_niceness, in_cgroups, mount_tmpfs, set_priority, unmount
from .seccomp import seccomp_program
from .spec import SandboxSpec, SandboxUnavailable
from .submission_zygote import ZygoteProcess

__all__ = ["SandboxSpec", "SandboxUnavailable", "Limits", "FIRST_SANDBOX_UID", "SANDBOX_UIDS", "UID_LOCKS", "UidPool",
           "base_env", "bwrap_command", "probe", "python_dirs", "user_process_count", "seccomp_program",
           "CHECKS_NICENESS", "Cgroup", "checks_niceness", "in_cgroups", "mount_tmpfs", "set_priority", "unmount",
           "MAX_FOLDER_DEPTH", "SizeLimitedFolder", "chown_tree", "enforce_folder_size_limit", "prune_deep_folders",
           "remove_special_files", "KERNEL_NAME", "hand_to_sandbox_uid", "kernel_main", "prepare_numba_cache",
           "student_launcher", "write_kernelspec", "ZygoteProcess"]
