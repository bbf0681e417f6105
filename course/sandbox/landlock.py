"""Landlock (Linux >= 5.13): a process narrows what it, and everything it starts, may write, beneath the folders it
names; reading is left as it was. The submission's zygote (:mod:`.kernel_zygote`) narrows each child it forks with
it. Standard library only: the zygote runs inside the sandbox, where ``course`` cannot be imported, and gets this
file's source as the module :data:`MODULE` (:func:`.submission_zygote.zygote_source`)."""
import ctypes
import functools
import os
import struct

MODULE = "sr_kit_landlock"  # the name the zygote imports this file's source by
# linux/landlock.h: landlock_create_ruleset, landlock_add_rule, landlock_restrict_self (the same numbers on x86_64
# and aarch64), and the rights that write, by the ABI version that has them (REFER: 2, TRUNCATE: 3)
LANDLOCK_CALLS = (444, 445, 446)
WRITE_RIGHTS = {1: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)), 2: 1 << 13, 3: 1 << 14}
SANDBOX_WRITABLE = ("/tmp", "/dev")  # what every sandboxed process may write: its own tmpfs /tmp, /dev, /dev/shm


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version of this kernel (0: none, or disabled)."""
    try:
        return max(0, _libc().syscall(ctypes.c_long(LANDLOCK_CALLS[0]), None, ctypes.c_size_t(0),
                                      ctypes.c_uint32(1)))
    except (OSError, AttributeError):
        return 0


def restrict_writes(writable) -> None:
    """Let this process, and what it starts, write (make, remove, rename, truncate) beneath the ``writable`` folders
    only; reading is left as the sandbox has it. :class:`OSError` if Landlock cannot do it."""
    libc = _libc()

    def call(nr, *args):
        if libc.syscall(ctypes.c_long(nr), *args) < 0:
            raise OSError(ctypes.get_errno(), f"Landlock system call {nr}")

    rights = sum(bits for abi, bits in WRITE_RIGHTS.items() if abi <= landlock_abi())
    if not rights:
        raise OSError("Landlock is not available")
    attr = ctypes.create_string_buffer(struct.pack("=Q", rights))
    ruleset = libc.syscall(ctypes.c_long(LANDLOCK_CALLS[0]), attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in writable:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:  # (struct landlock_path_beneath_attr, packed: the rights, then the folder's descriptor)
                call(LANDLOCK_CALLS[1], ctypes.c_int(ruleset), ctypes.c_int(1),
                     ctypes.create_string_buffer(struct.pack("=Qi", rights, fd)), ctypes.c_uint32(0))
            finally:
                os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (bwrap has set it already)
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        call(LANDLOCK_CALLS[2], ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
