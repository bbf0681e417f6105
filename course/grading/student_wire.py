"""The frames between the hidden checks' trusted side and their student side, and how the student side boots.

A frame is an 8-byte big-endian length (:data:`FRAME_LENGTH`), then ``torch.save`` of plain containers, numbers,
strings and tensors, read back with ``torch.load(weights_only=True)`` (no pickle of arbitrary objects) after checking
the length against a bound (:data:`MAX_REQUEST`, :data:`MAX_ANSWER`).

The student side runs as ``python -I -c BOOT FOLDER`` in a sandbox that sees ``sr_utils`` but not ``course/``: the
sources of its modules (:data:`STUDENT_SIDE_MODULES`: this one, :mod:`.training_fixtures`, :mod:`.student_side`)
arrive on stdin, one frame of UTF-8 each, and :data:`BOOT` makes them the modules of a package of their own, so that
they import one another as they do here. This file is kit code without secrets, like the other two: it imports
nothing of ``course`` and nothing but the standard library at import time.
"""
from __future__ import annotations

import io
import os
import struct

FRAME_LENGTH = ">Q"      # struct format of a frame's byte count (8 bytes, big-endian), before the frame's bytes
MAX_REQUEST = 64 << 20   # bytes: a request frame (tensors sent to the student side)
MAX_ANSWER = 64 << 20    # bytes: an answer frame (checked by the trusted side before reading it)


def encode(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return struct.pack(FRAME_LENGTH, buf.tell()) + buf.getvalue()


def decode(data: bytes):
    """Plain containers, numbers, strings and tensors only (``weights_only``: no arbitrary unpickling)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


#: The student side's modules, in the order they are sent and run (each imports only those before it, the standard
#: library, torch and sr_utils); their sources are this package's files of these names.
STUDENT_SIDE_MODULES = ("student_wire", "training_fixtures", "student_side")
#: ``python -I -c BOOT FOLDER``: reads the sources of :data:`STUDENT_SIDE_MODULES` (each a frame of UTF-8) from stdin,
#: runs each as a module of the package ``sr_student_side``, then serves (``student_side.serve``). (The sandbox cannot
#: see course/; the sources are no secret.)
BOOT = ("import os, struct, sys, types\n"
        "def _read(n):\n    b = b''\n    while len(b) < n:\n        c = os.read(0, n - len(b))\n"
        "        if not c:\n            sys.exit(3)\n        b += c\n    return b\n"
        "p = types.ModuleType('sr_student_side')\np.__path__ = []\nsys.modules[p.__name__] = p\n"
        f"for name in {STUDENT_SIDE_MODULES!r}:\n"
        f"    src = _read(struct.unpack({FRAME_LENGTH!r}, _read({struct.calcsize(FRAME_LENGTH)}))[0]).decode()\n"
        "    m = types.ModuleType('sr_student_side.' + name)\n    m.__package__ = p.__name__\n"
        "    sys.modules[m.__name__] = m\n"
        "    exec(compile(src, '<student side: ' + name + '>', 'exec'), m.__dict__)\n"
        "sys.modules['sr_student_side.student_side'].serve(sys.argv[1])\n")
