"""What the hidden checks share: the registry (:func:`check`), failing with a reason (:func:`expect`), inputs drawn
at check time (:func:`fresh_generator`, :func:`uniform`), the student's modules known by a handle (:class:`Remote`)
and the last word of every model check (:func:`computes_reference`). Reasons are templates (see :mod:`.checks`).
"""
from __future__ import annotations

import os

import torch

from ..recompute import Recomputed, recompute
from ..student_client import RAISED, CheckFailed, Message, Student

# The oracles are small: one thread, so that the trusted side does not compete with the kernels and the student side
# for the cores.
torch.set_num_threads(1)

CHECKS = {}  #: name -> check(student, folder), filled by :func:`check`


def check(fn):
    """Register ``fn`` in :data:`CHECKS` under its name (the name a test cell's ``hidden_check`` gives)."""
    CHECKS[fn.__name__] = fn
    return fn


def expect(condition, message, /, **fields) -> None:
    """Fail the check with ``message`` (an English template, see the module doc) and its fields unless
    ``condition``."""
    if not condition:
        raise CheckFailed(message, **fields)


def fresh_seed() -> int:
    """A seed drawn at check time: the student side cannot know the inputs in advance."""
    return int.from_bytes(os.urandom(4), "little")


def fresh_generator() -> torch.Generator:
    """A CPU generator seeded at check time (:func:`fresh_seed`)."""
    return torch.Generator().manual_seed(fresh_seed())


def uniform(g, *shape) -> torch.Tensor:
    """A float32 tensor of ``shape``, values uniform in [0, 1), drawn from the generator ``g``."""
    return torch.rand(*shape, generator=g)


def tensor_answer(value, shape=None, what=None) -> torch.Tensor:
    """An answer that must be a finite float tensor (of ``shape``)."""
    what = Message("the output") if what is None else what
    expect(torch.is_tensor(value), "{what} is not a tensor", what=what)
    if shape is not None:
        expect(tuple(value.shape) == tuple(shape), "{what} has shape {got}, expected {want}", what=what,
               got=tuple(value.shape), want=tuple(shape))
    return value.detach().float()


def all_close(a, b, atol) -> bool:
    """Whether ``a`` and ``b`` are tensors of one shape, equal within ``atol`` (``torch.allclose``)."""
    return torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and bool(torch.allclose(a, b, atol=atol))


class Remote:
    """A module built by the student's code in the student-side process, known here by a handle."""

    def __init__(self, student: Student, handle: int, what: str):
        self.student, self.h, self.what = student, handle, what
        self._desc = None

    @classmethod
    def new(cls, student: Student, name: str, *args, what: str, **kwargs) -> "Remote":
        ok = student.request("new", what, cls=name, args=list(args), kwargs=kwargs, seed=fresh_seed())
        return cls(student, int(ok["h"]), name)

    def describe(self) -> dict:
        if self._desc is None:
            self._desc = self.student.request("describe", self.what, h=self.h)
        return self._desc

    def layers(self, kind: str) -> list[dict]:
        return [m for m in self.describe()["modules"] if m["kind"] == kind]

    def count(self, *kinds) -> int:
        return sum(m["kind"] in kinds for m in self.describe()["modules"])

    def n_params(self) -> int:
        return int(self.describe()["n_params"])

    def eval(self) -> "Remote":
        self.student.request("mode", self.what, h=self.h, train=False)
        return self

    def train(self) -> "Remote":
        self.student.request("mode", self.what, h=self.h, train=True)
        return self

    def forward_all(self, inputs, what=None, **options) -> dict:
        return self.student.request("forward", what or f"{self.what}.forward", h=self.h, inputs=list(inputs),
                                    **options)

    def __call__(self, x: torch.Tensor, shape=None) -> torch.Tensor:
        out = self.forward_all([x])["outs"][0]
        return tensor_answer(out, shape, Message("{name}.forward's output", name=self.what))

    def set(self, values: dict) -> None:
        self.student.request("set", Message("setting parameters of {name}", name=self.what), h=self.h, values=values)

    def state_dict(self) -> dict:
        return self.student.request("state_dict", f"{self.what}.state_dict()", h=self.h)["state"]

    def call(self, method: str, *args, what: str) -> None:
        self.student.request("call", what, h=self.h, method=method, args=list(args))

    def params_of(self, kind: str, which: str = "weight") -> list[str]:
        """Names of the ``which`` parameters of the layers of ``kind`` (e.g. every PReLU's weight)."""
        return [param_name(m, which) for m in self.layers(kind)]


def expect_value_error(student: Student, name: str, what, hint=None, *args, **kwargs) -> None:
    """Building ``name(*args, **kwargs)`` must raise ValueError (bad arguments are refused clearly); ``hint``, a
    Message, says which arguments are possible."""
    try:
        student.request("new", what, cls=name, args=list(args), kwargs=kwargs, seed=0)
    except CheckFailed as e:
        if e.message.template == RAISED:
            kind = e.message.params.get("kind")
            if kind == "ValueError":
                return
            raise CheckFailed("{what} should raise ValueError, raised {kind}", what=what, kind=kind) from None
        raise
    if hint is None:
        raise CheckFailed("{what} should raise ValueError", what=what)
    raise CheckFailed("{what} should raise ValueError ({hint})", what=what, hint=hint)


def layers_used_once(remote: Remote, x: torch.Tensor, what: str) -> None:
    """Every layer holding parameters must run exactly once per forward (catches layers built but skipped)."""
    calls = remote.forward_all([x], what=f"{what}.forward", count_calls=True)["calls"]
    kinds = {m["path"]: m["kind"] for m in remote.describe()["modules"]}
    holders = [m["path"] for m in remote.describe()["modules"] if m["own_params"]]
    for path in holders:
        n = calls.get(path, 0) if isinstance(calls, dict) else 0
        if n != 1:
            kind = kinds.get(path) or Message("custom")
            if n == 0:
                raise CheckFailed("{what}: a {kind} layer is built in __init__ but not used in forward", what=what,
                                  kind=kind)
            raise CheckFailed("{what}: a {kind} layer is built in __init__ but used {n} times in forward", what=what,
                              kind=kind, n=int(n))


def computes_reference(student: Student, cls: str, *args, what: str, inputs: list, **kwargs) -> Recomputed:
    """The last word of every model check: a fresh ``cls(*args, **kwargs)`` of the student's, given weights drawn
    here, must compute what the reference architecture holding the same weights computes here on ``inputs``
    (:func:`recompute.recompute`). Whatever its layers and answers look like, a network that does not compute the
    assignment's function fails."""
    remote = Remote.new(student, cls, *args, what=what, **kwargs)
    return recompute(remote, cls, inputs, args=args, kwargs=kwargs, generator=fresh_generator(), what=what)


def layer_attr(layer: dict, name: str, default=None):
    """Attribute ``name`` of a layer as the student side describes it (``describe``): a number, or a tuple of ints."""
    v = layer["attrs"].get(name, default)
    return tuple(int(x) for x in v) if isinstance(v, list) else v


def param_name(layer: dict, which: str) -> str:
    """The state_dict name of a described layer's parameter ``which`` (``"weight"``, ``"bias"``)."""
    return (layer["path"] + "." if layer["path"] else "") + which

