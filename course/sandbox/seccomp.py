"""The seccomp filter of every sandbox: system calls sandboxed code may not make (the keyrings, memfd_create
without a cgroup, every mount and new namespace), as classic BPF that ``bwrap --seccomp FD`` loads."""
from __future__ import annotations

from .spec import SandboxUnavailable

# seccomp: system calls denied to sandboxed code (errno EPERM), by machine. The kernel keyrings outlive a process
# and are shared by everything running as one uid (a key added by one student would be seen by the next): denied,
# as in Docker's default profile. memfd_create is denied too where no cgroup bounds memory (--no-cgroup).
KEYRING_SYSCALLS = {"x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
                    "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219}}
MEMFD_SYSCALL = {"x86_64": 319, "aarch64": 279}
# No namespace and no mount from inside: a user namespace would give sandboxed code the capabilities of its own
# (a tmpfs of any size, mounts over the sandbox's view, an attack surface of the kernel's that is not otherwise
# reachable). Denied: every call that mounts, unmounts, moves a root or enters a namespace (the old and the new
# mount API), unshare and clone when asked for a new namespace (CLONE_NEW* in their flags), and clone3 (its flags
# are in memory a filter cannot read: ENOSYS, so that the C library falls back to clone, as under Docker)
MOUNT_SYSCALLS = {"x86_64": {"mount": 165, "umount2": 166, "pivot_root": 155, "setns": 308, "open_tree": 428,
                             "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                             "mount_setattr": 442, "open_tree_attr": 467},
                  "aarch64": {"mount": 40, "umount2": 39, "pivot_root": 41, "setns": 268, "open_tree": 428,
                              "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                              "mount_setattr": 442, "open_tree_attr": 467}}
NAMESPACE_SYSCALLS = {"x86_64": {"clone": 56, "unshare": 272, "clone3": 435},
                      "aarch64": {"clone": 220, "unshare": 97, "clone3": 435}}
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET; CLONE_NEWTIME (0x80) for unshare only (in
# clone's flags 0x80 is part of the exit signal)
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
CLONE_NEWTIME = 0x80
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def seccomp_program(deny_memfd: bool = False) -> bytes:
    """A classic-BPF seccomp filter (what ``bwrap --seccomp FD`` loads). Fail with EPERM: the keyring calls (and
    memfd_create if asked), every call that mounts or enters a namespace (:data:`MOUNT_SYSCALLS`), ``unshare`` and
    ``clone`` asking for a new namespace, and every call of a foreign architecture (x32, i386 compat); ``clone3``
    fails with ENOSYS (the C library then uses ``clone``). The rest is allowed."""
    import platform
    import struct

    machine = platform.machine()
    if machine not in KEYRING_SYSCALLS:
        raise SandboxUnavailable(f"no seccomp filter for this machine ({machine}): x86_64 and aarch64 only")
    denied = sorted([*KEYRING_SYSCALLS[machine].values(), *MOUNT_SYSCALLS[machine].values()]
                    + ([MEMFD_SYSCALL[machine]] if deny_memfd else []))
    ns = NAMESPACE_SYSCALLS[machine]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    # (op, k, true label, false label) with labels resolved to relative jumps below; None: next instruction
    prog = [(ld, 4, None, None), (jeq, AUDIT_ARCH[machine], None, "eperm"), (ld, 0, None, None)]
    if machine == "x86_64":
        prog.append((jge, 0x40000000, "eperm", None))  # x32 system calls
    prog += [(jeq, nr, "eperm", None) for nr in denied]
    prog += [(jeq, ns["clone3"], "enosys", None), (jeq, ns["clone"], "clone", None),
             (jeq, ns["unshare"], "unshare", None), (ret, allow, None, None)]
    labels = {}
    # the flags are the first argument (seccomp_data.args[0], offset 16; its low 32 bits on these little-endian
    # machines hold every CLONE_NEW* flag)
    labels["clone"] = len(prog)
    prog += [(ld, 16, None, None), (jset, CLONE_NEW_FLAGS, "eperm", None), (ret, allow, None, None)]
    labels["unshare"] = len(prog)
    prog += [(ld, 16, None, None), (jset, CLONE_NEW_FLAGS | CLONE_NEWTIME, "eperm", None), (ret, allow, None, None)]
    labels["eperm"] = len(prog)
    prog.append((ret, eperm, None, None))
    labels["enosys"] = len(prog)
    prog.append((ret, enosys, None, None))
    out = []
    for i, (op, k, jt, jf) in enumerate(prog):
        rel = [0 if t is None else labels[t] - i - 1 for t in (jt, jf)]
        assert all(0 <= r < 256 for r in rel), "seccomp jump out of range"
        out.append(struct.pack("=HBBI", op, rel[0], rel[1], k))
    return b"".join(out)


SECCOMP_FD_MARK = "@SECCOMP_FD@"
# Runs outside the sandbox, right before bwrap: the filter goes into a memfd that bwrap reads (--seccomp FD).
_WITH_SECCOMP = ("import os, sys\nfd = os.memfd_create('sr-kit-seccomp', 0)\nos.write(fd, bytes.fromhex(sys.argv[1]))\n"
                 "os.lseek(fd, 0, 0)\nos.set_inheritable(fd, True)\n"
                 f"argv = [str(fd) if a == {SECCOMP_FD_MARK!r} else a for a in sys.argv[2:]]\n"
                 "os.execvp(argv[0], argv)\n")
