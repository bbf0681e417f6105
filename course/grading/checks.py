"""Hidden checks of the ``superres`` assignment (instructor-only: never copied into the release).

Each check is decided here, in a trusted process that never imports or executes student code. It talks to the
student-side process (:mod:`.student_side`, sandboxed by the grader) through a :class:`~.student_client.Student`:
"build class X with these arguments", "run forward on these tensors", "describe your layers", "set these
parameters", "run one training epoch of your solver on these kit networks and batches, with recording optimizers
and scalers". Inputs, initial weights and batches are drawn here at check time; the answers (plain tensors and
numbers) are compared with what the assignment asks for and, for training, with oracles computed here on the same
kit networks. What the student side says about its structure only chooses a failing check's message: every model
check ends by recomputing the student's network here, with the reference architecture holding the same weights
(:func:`computes_reference`), and notebooks 04/05 are judged on the table and pictures recomputed here from the
student's checkpoints (:mod:`recompute`). A check raises :class:`CheckFailed` with one line that says what is wrong without giving the
solution; student-controlled text in it is truncated and escaped (``student_client.student_text``).

A reason is written as an English template with named fields, ``CheckFailed("... {got}, expected {want}",
got=..., want=...)`` or ``expect(condition, "...", **fields)``, never as an f-string: the template is what the
course's catalogue (``course/locales/zh_CN.py``) translates, and the reason is put into the student's language
only when shown (``student_client.Message``). An English phrase used inside a reason (a ``what`` of a request,
a hint) is a :class:`Message` too. ``tests/test_grading_i18n.py`` reads every reason of this file.
"""
from __future__ import annotations

import csv
import functools
import io
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sr_utils.lists import default_data_dir

from .recompute import Recomputed, agree, recompute
from .student_client import RAISED, CheckFailed, Message, Student
from .student_client import decide_checks, run_checks  # noqa: F401 (re-exported for run_check, check_server)
from .student_side import kit_discriminator, kit_upscaler, kit_vgg  # kit code, no student code

# The oracles are small: one thread, so that the trusted side does not compete with the kernels and the student side
# for the cores.
torch.set_num_threads(1)

CHECKS = {}
NON_TENSOR = Message("a non-tensor")  # what an answer that should be a tensor's shape is, when it is none
MAX_FILE = 256 << 20  # bytes: a student file (checkpoint, csv, png) read by the trusted side


# Checks that read nothing but the submitted notebooks' sources (the ``%%writefile`` cells that make models.py and
# solver.py), never what running a notebook produced: the grader may decide them while the notebook runs.
SOURCES_ONLY = frozenset({"conv_block", "subpixel_block", "residual_block", "srresnet", "generator",
                          "discriminator", "srresnet_epoch", "srgan_epoch"})


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


@functools.cache
def load_ahead() -> None:
    """Import now what later checks need (the grader's check server does this before its submission starts, so
    that it is not waited for after a notebook): the evaluation code, PIL and imresize's compiled kernels."""
    import PIL.Image  # noqa: F401
    import sr_utils.evaluation  # noqa: F401
    import sr_utils.trained  # noqa: F401
    from sr_utils.imresize import compile_kernels

    compile_kernels()


def expect(condition, message, /, **fields) -> None:
    """Fail the check with ``message`` (an English template, see the module doc) and its fields unless
    ``condition``."""
    if not condition:
        raise CheckFailed(message, **fields)


def _seed() -> int:
    """A seed drawn at check time: the student side cannot know the inputs in advance."""
    return int.from_bytes(os.urandom(4), "little")


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(_seed())


def _rand(g, *shape) -> torch.Tensor:
    return torch.rand(*shape, generator=g)


def _tensor(value, shape=None, what=None) -> torch.Tensor:
    """An answer that must be a finite float tensor (of ``shape``)."""
    what = Message("the output") if what is None else what
    expect(torch.is_tensor(value), "{what} is not a tensor", what=what)
    if shape is not None:
        expect(tuple(value.shape) == tuple(shape), "{what} has shape {got}, expected {want}", what=what,
               got=tuple(value.shape), want=tuple(shape))
    return value.detach().float()


def _close(a, b, atol) -> bool:
    return torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and bool(torch.allclose(a, b, atol=atol))


class Remote:
    """A module built by the student's code in the student-side process, known here by a handle."""

    def __init__(self, student: Student, handle: int, what: str):
        self.student, self.h, self.what = student, handle, what
        self._desc = None

    @classmethod
    def new(cls, student: Student, name: str, *args, what: str, **kwargs) -> "Remote":
        ok = student.request("new", what, cls=name, args=list(args), kwargs=kwargs, seed=_seed())
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
        return _tensor(out, shape, Message("{name}.forward's output", name=self.what))

    def set(self, values: dict) -> None:
        self.student.request("set", Message("setting parameters of {name}", name=self.what), h=self.h, values=values)

    def state_dict(self) -> dict:
        return self.student.request("state_dict", f"{self.what}.state_dict()", h=self.h)["state"]

    def call(self, method: str, *args, what: str) -> None:
        self.student.request("call", what, h=self.h, method=method, args=list(args))

    def params_of(self, kind: str, which: str = "weight") -> list[str]:
        """Names of the ``which`` parameters of the layers of ``kind`` (e.g. every PReLU's weight)."""
        return [_param(m, which) for m in self.layers(kind)]


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
    return recompute(remote, cls, inputs, args=args, kwargs=kwargs, generator=_gen(), what=what)


def _attr(layer: dict, name: str, default=None):
    v = layer["attrs"].get(name, default)
    return tuple(int(x) for x in v) if isinstance(v, list) else v


# ------------------------------------------------------------------------------------------------------------
# 01_models
# ------------------------------------------------------------------------------------------------------------
ACTIVATIONS = ("PReLU", "LeakyReLU", "Tanh", "ReLU", "Sigmoid")


@check
def conv_block(student: Student, folder: Path) -> None:
    name, g = "ConvolutionalBlock", _gen()
    x = _rand(g, 2, 3, 17, 16)
    for k in (3, 9):
        for stride in (1, 2):
            block = Remote.new(student, name, 3, 8, k, stride=stride, what=f"{name}(3, 8, {k}, stride={stride})")
            out = block.forward_all([x])["outs"][0]
            want = (2, 8, -(-17 // stride), -(-16 // stride))
            got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
            expect(got == want, "{name}(3, 8, kernel_size={k}, stride={stride}) maps (2, 3, 17, 16) to {got}, "
                                "expected {want}", name=name, k=k, stride=stride, got=got, want=want)
            convs = block.layers("Conv2d")
            expect(len(convs) == 1 and _attr(convs[0], "kernel_size") == (k, k)
                   and _attr(convs[0], "stride") == (stride, stride),
                   "{name} should hold one nn.Conv2d with kernel_size={k} and stride={stride}", name=name, k=k,
                   stride=stride)
    plain = Remote.new(student, name, 3, 8, 3, what=f"{name}(3, 8, 3)")
    expect(plain.count("BatchNorm2d") == 0, "batch_norm=False should add no batch-norm")
    expect(plain.count(*ACTIVATIONS) == 0, "activation=None should add no activation")
    outs = plain.forward_all([2 * x, torch.zeros_like(x), x])["outs"]
    y2, y0, y1 = (_tensor(o) for o in outs)
    expect(_close(y2 - y0, 2 * (y1 - y0), 1e-5),
           "with activation=None the block should be a plain (linear) convolution")
    bn = Remote.new(student, name, 3, 8, 3, batch_norm=True, what=f"{name}(3, 8, 3, batch_norm=True)").train()
    expect(bn.count("BatchNorm2d") == 1, "batch_norm=True should add exactly one nn.BatchNorm2d")
    out = bn(x)
    expect(out.mean(dim=(0, 2, 3)).abs().max() < 1e-4, "batch-norm should come right after the convolution")
    for act in ("prelu", "leakyrelu"):
        block = Remote.new(student, name, 3, 8, 3, batch_norm=True, activation=act,
                           what=f'{name}(3, 8, 3, batch_norm=True, activation="{act}")').train()
        layers_used_once(block, x, what=name)
        means = block(x).mean(dim=(0, 2, 3))
        expect(means.min() > 0.05, "the activation should come after the batch-norm (conv -> BN -> activation)")
    blocks = {}
    for act, kind in {"prelu": "PReLU", "leakyrelu": "LeakyReLU", "tanh": "Tanh"}.items():
        blocks[act] = Remote.new(student, name, 3, 8, 3, activation=act, what=f'{name}(3, 8, 3, activation="{act}")')
        expect(blocks[act].count(kind) == 1, 'activation="{act}" should add one {kind}', act=act, kind=kind)
    slope = _attr(blocks["leakyrelu"].layers("LeakyReLU")[0], "negative_slope", -1.0)
    expect(abs(slope - 0.2) < 1e-9, "LeakyReLU slope should be 0.2, is {slope:g}", slope=slope)
    prelu = blocks["prelu"].layers("PReLU")[0]
    expect(prelu["own_params"] == [1], "PReLU should have a single learnable slope (nn.PReLU())")
    expect(blocks["tanh"](x * 1e3).abs().max() <= 1, "tanh output should be in [-1, 1]")
    expect_value_error(student, name, Message('an unknown activation (e.g. "swish")'), None, 3, 8, 3,
                       activation="swish")
    for k, stride, options in ((3, 1, {}), (9, 2, {"batch_norm": True, "activation": "prelu"}),
                               (3, 1, {"batch_norm": True, "activation": "leakyrelu"}), (3, 2, {"activation": "tanh"})):
        shown = ", ".join([f"3, 8, {k}", f"stride={stride}", *(f"{a}={v!r}" for a, v in options.items())])
        computes_reference(student, name, 3, 8, k, stride=stride, what=f"{name}({shown})",
                           inputs=[_rand(g, 2, 3, 17, 16) * 2 - 1], **options)


@check
def subpixel_block(student: Student, folder: Path) -> None:
    name, g = "SubPixelConvolutionalBlock", _gen()
    for s in (2, 3):
        block = Remote.new(student, name, kernel_size=3, n_channels=8, scaling_factor=s, what=f"{name}(...)")
        out = block.forward_all([_rand(g, 2, 8, 10, 7)])["outs"][0]
        got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
        expect(got == (2, 8, 10 * s, 7 * s), "scaling_factor={s} maps (2, 8, 10, 7) to {got}, expected {want}",
               s=s, got=got, want=(2, 8, 10 * s, 7 * s))
        shuffles = block.layers("PixelShuffle")
        expect(len(shuffles) == 1 and _attr(shuffles[0], "upscale_factor") == s,
               "use one nn.PixelShuffle(scaling_factor)")
        convs = block.layers("Conv2d")
        expect(len(convs) == 1 and _attr(convs[0], "out_channels") == 8 * s * s
               and _attr(convs[0], "kernel_size") == (3, 3),
               "the convolution should make n_channels * scaling_factor**2 channels with the given kernel_size")
        expect(block.count("PReLU") == 1, "a sub-pixel block ends with one nn.PReLU")
        expect(block.n_params() == 8 * 8 * s * s * 9 + 8 * s * s + 1,
               "unexpected parameter count: conv (with bias) + a single-parameter PReLU")
        layers_used_once(block, _rand(g, 1, 8, 5, 4), what=name)
        block.set({p: ["fill", 0.0] for p in block.params_of("PReLU")})
        y = block(_rand(g, 2, 8, 10, 7) - 0.5)
        expect(y.min() >= 0, "the PReLU should be applied last, after the pixel shuffle")
    for s in (2, 3):
        computes_reference(student, name, kernel_size=3, n_channels=8, scaling_factor=s,
                           what=f"{name}(kernel_size=3, n_channels=8, scaling_factor={s})",
                           inputs=[_rand(g, 2, 8, 10, 7) * 2 - 1])


@check
def residual_block(student: Student, folder: Path) -> None:
    name, g = "ResidualBlock", _gen()
    block = Remote.new(student, name, kernel_size=3, n_channels=8, what=f"{name}(kernel_size=3, n_channels=8)")
    x = _rand(g, 2, 8, 11, 9)
    out = block.forward_all([x])["outs"][0]
    got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
    expect(got == tuple(x.shape), "a residual block keeps the shape {shape}, got {got}", shape=tuple(x.shape),
           got=got)
    convs = block.layers("Conv2d")
    expect(len(convs) == 2 and all(_attr(c, "kernel_size") == (3, 3) for c in convs),
           "a residual block has two 3x3 convolutions")
    n_bn = block.count("BatchNorm2d")
    expect(n_bn == 2, "a residual block has 2 batch-norms, found {n}", n=n_bn)
    expect(block.count("PReLU") == 1 and block.count("ReLU", "LeakyReLU", "Tanh") == 0,
           "a residual block has exactly one activation, a PReLU, after the first batch-norm")
    expect(block.n_params() == 2 * (8 * 8 * 9 + 8) + 2 * 16 + 1, "unexpected parameter count for a residual block")
    layers_used_once(block, x, what=name)
    block.eval()
    block.set({p: ["fill", 0.0] for p in block.params_of("PReLU")})
    xs = torch.randn(4, 8, 11, 9, generator=g)
    expect((block(xs) - xs).min() < 0, "order: conv -> BN -> PReLU -> conv -> BN, then add the input (the "
                                       "second batch-norm's output is added without an activation)")
    block.set({p: ["fill", 0.0] for p, _ in block.describe()["params"]})
    expect(_close(block(x), x, 1e-6), "the input should be added to the output (identity shortcut)")
    computes_reference(student, name, kernel_size=3, n_channels=8, what=f"{name}(kernel_size=3, n_channels=8)",
                       inputs=[torch.randn(2, 8, 11, 9, generator=g)])


def _zero_bn(remote: Remote) -> None:
    remote.set({p: ["fill", 0.0] for which in ("weight", "bias") for p in remote.params_of("BatchNorm2d", which)})


@check
def srresnet(student: Student, folder: Path) -> None:
    name, g = "SRResNet", _gen()
    for scale in (2, 4, 8):
        net = Remote.new(student, name, n_channels=8, n_blocks=2, scaling_factor=scale,
                         what=f"SRResNet(scaling_factor={scale})").eval()
        for h, w in ((12, 10), (7, 9)):
            out = net.forward_all([_rand(g, 2, 3, h, w)])["outs"][0]
            want = (2, 3, scale * h, scale * w)
            got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
            expect(got == want, "SRResNet(scaling_factor={scale}) maps (2, 3, {h}, {w}) to {got}, expected {want}",
                   scale=scale, h=h, w=w, got=got, want=want)
        shuffles = net.layers("PixelShuffle")
        n_sub = int(math.log2(scale))
        expect(len(shuffles) == n_sub and all(_attr(m, "upscale_factor") == 2 for m in shuffles),
               "scaling_factor={scale} needs {n} sub-pixel blocks of factor 2", scale=scale, n=n_sub)
    expect_value_error(student, name, "scaling_factor=3", Message("only 2, 4, 8 are possible"), scaling_factor=3)
    full = Remote.new(student, name, what="SRResNet()")
    convs = full.layers("Conv2d")
    big = [c for c in convs if _attr(c, "kernel_size") == (9, 9)]
    expect(len(big) == 2 and {(_attr(c, "in_channels"), _attr(c, "out_channels")) for c in big} == {(3, 64), (64, 3)},
           "SRResNet has two 9x9 convolutions: the first (3 -> 64) and the last (64 -> 3)")
    expect(all(_attr(c, "kernel_size") == (3, 3) for c in convs if c not in big), "all other convolutions are 3x3")
    expect(len(convs) == 37, "SRResNet() has 37 convolutions (1 + 16 x 2 + 1 + 2 + 1), found {n}", n=len(convs))
    n_bn = full.count("BatchNorm2d")
    expect(n_bn == 33, "SRResNet() has 33 batch-norms (2 per residual block + 1 after the trunk; none in the first "
                       "or last block or the sub-pixel blocks), found {n}", n=n_bn)
    n_prelu = full.count("PReLU")
    expect(n_prelu == 19 and full.count("ReLU", "LeakyReLU", "Sigmoid") == 0,
           "SRResNet() uses PReLU activations only (19 of them), found {n} PReLU", n=n_prelu)
    total = full.n_params()
    expect(total == 1_549_462, "SRResNet() should have 1,549,462 parameters, has {total:,}", total=total)
    tiny = Remote.new(student, name, n_channels=8, n_blocks=2, what="SRResNet(n_channels=8, n_blocks=2)").eval()
    layers_used_once(tiny, _rand(g, 1, 3, 8, 8), what=name)
    expect(tiny(_rand(g, 1, 3, 8, 8) * 1e3 - 500).abs().max() <= 1 + 1e-6,
           "the output should be squashed to [-1, 1] by a final tanh")
    _zero_bn(tiny)  # residual blocks become identities, the trunk's last block outputs 0
    a, b = (_tensor(o) for o in tiny.forward_all([_rand(g, 1, 3, 8, 8), _rand(g, 1, 3, 8, 8)])["outs"])
    expect(not _close(a, b, 1e-7), "the output of the first block should be added after the residual trunk "
                                   "(long skip connection)")
    for scale in (2, 4):
        computes_reference(student, name, n_channels=8, n_blocks=2, scaling_factor=scale,
                           what=f"SRResNet(n_channels=8, n_blocks=2, scaling_factor={scale})",
                           inputs=[_rand(g, 2, 3, 12, 10)])


@check
def generator(student: Student, folder: Path) -> None:
    g = _gen()
    x = _rand(g, 2, 3, 9, 7)
    srresnet = computes_reference(student, "SRResNet", n_channels=8, n_blocks=2,
                                  what="SRResNet(n_channels=8, n_blocks=2)", inputs=[x])
    gen = Remote.new(student, "Generator", n_channels=8, n_blocks=2, what="Generator(n_channels=8, n_blocks=2)")
    expect(gen.n_params() == sum(p.numel() for p in srresnet.reference.parameters()),
           "the Generator should be exactly an SRResNet (same parameters)")
    expect("initialize_with_srresnet" in gen.describe()["methods"],
           "Generator needs an initialize_with_srresnet(state_dict) method")
    gen.call("initialize_with_srresnet", srresnet.weights, what="initialize_with_srresnet")
    gen.eval()
    x = _rand(g, 2, 3, 9, 7)
    with torch.no_grad():
        want = srresnet.reference(x)
    expect(agree(gen.forward_all([x])["outs"][0], want),
           "after initialize_with_srresnet(sd) the generator should compute what the SRResNet computes")
    for scale in (2, 8):
        gs = Remote.new(student, "Generator", n_channels=8, n_blocks=1, scaling_factor=scale,
                        what=f"Generator(scaling_factor={scale})").eval()
        out = gs.forward_all([_rand(g, 1, 3, 5, 6)])["outs"][0]
        expect(torch.is_tensor(out) and tuple(out.shape) == (1, 3, 5 * scale, 6 * scale),
               "Generator(scaling_factor={scale}) should upscale by {scale}", scale=scale)
    computes_reference(student, "Generator", n_channels=8, n_blocks=2, what="Generator(n_channels=8, n_blocks=2)",
                       inputs=[_rand(g, 2, 3, 9, 7)])


def _dense_layers(remote: Remote) -> list[dict]:
    """The Linear layers, widest input first: the order forward uses them in, whatever order they were
    registered in."""
    return sorted(remote.layers("Linear"), key=lambda m: -(_attr(m, "in_features", 0) or 0))


def _param(layer: dict, which: str) -> str:
    return (layer["path"] + "." if layer["path"] else "") + which


@check
def discriminator(student: Student, folder: Path) -> None:
    name, g = "Discriminator", _gen()
    full = Remote.new(student, name, what="Discriminator()")
    total = full.n_params()
    expect(total == 23_565_505, "Discriminator() should have 23,565,505 parameters, has {total:,}", total=total)
    convs = full.layers("Conv2d")
    expect(len(convs) == 8 and all(_attr(c, "kernel_size") == (3, 3) for c in convs), "8 convolutions with 3x3 kernels")
    expect([_attr(c, "stride")[0] for c in convs] == [1, 2] * 4,
           "strides should alternate 1, 2, 1, 2, ... (4 stride-2 blocks)")
    expect([_attr(c, "out_channels") for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512],
           "channels should be 64, 64, 128, 128, 256, 256, 512, 512")
    expect(full.count("BatchNorm2d") == 7, "batch-norm on every convolution block except the first")
    leaky = full.layers("LeakyReLU")
    expect(len(leaky) == 9 and all(abs(_attr(m, "negative_slope", -1.0) - 0.2) < 1e-9 for m in leaky),
           "LeakyReLU(0.2) after each of the 8 blocks and after the first dense layer")
    linears = _dense_layers(full)
    shapes = [(_attr(m, "in_features"), _attr(m, "out_features")) for m in linears]
    expect(shapes == [(512 * 36, 1024), (1024, 1)],
           "dense layers: Linear(512 * 6 * 6, fc_size) then Linear(fc_size, 1)")
    expect(full.count("Sigmoid") == 0, "return logits: no sigmoid inside the discriminator (BCEWithLogitsLoss)")
    full.eval()
    for h, w in ((96, 96), (128, 128), (96, 120)):
        out = full.forward_all([_rand(g, 2, 3, h, w) * 2 - 1])["outs"][0]
        got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
        expect(got == (2, 1), "a (2, 3, {h}, {w}) input should give logits (2, 1), got {got}", h=h, w=w, got=got)
    x = _rand(g, 2, 3, 96, 96) * 2 - 1
    before = full(x, (2, 1))
    full.set({_param(_dense_layers(full)[-1], "bias"): ["add", 10.0]})
    after = full(x, (2, 1))
    expect(_close(after - before, torch.full_like(before, 10.0), 1e-4),
           "the output should be the last dense layer's raw output (a logit), with nothing applied after it")
    tiny = Remote.new(student, name, n_channels=8, fc_size=16, what="Discriminator(n_channels=8, fc_size=16)").eval()
    layers_used_once(tiny, _rand(g, 1, 3, 96, 96), what=name)
    bns, lins = tiny.layers("BatchNorm2d"), _dense_layers(tiny)
    capture = [[m["path"], "input"] for m in bns] + [[bns[-1]["path"], "output"], [lins[0]["path"], "input"]]
    answer = tiny.forward_all([_rand(g, 2, 3, 160, 144) * 2 - 1], capture=capture)  # > 96: the pooling really pools
    seen = answer["captured"]
    bn_inputs = [t for path, what, t in seen if what == "input" and path != lins[0]["path"]]
    last_bn = [t for path, what, t in seen if what == "output" and path == bns[-1]["path"]]
    fc_inputs = [t for path, what, t in seen if what == "input" and path == lins[0]["path"]]
    expect(bn_inputs and tuple(bn_inputs[0].shape)[1:] == (8, 80, 72),
           "batch-norm belongs to blocks 2-8 (the first block has none)")
    expect(last_bn, "the last batch-norm is not used in forward")
    pooled = F.adaptive_avg_pool2d(F.leaky_relu(_tensor(last_bn[-1]), 0.2), (6, 6)).flatten(1)
    expect(fc_inputs and _close(_tensor(fc_inputs[0]), pooled, 1e-5),
           "the first dense layer should get the flattened 6x6 adaptive *average* pool of the last block's output")
    l0w, l1w = (_param(m, "weight") for m in lins[:2])
    l0b, l1b = (_param(m, "bias") for m in lins[:2])
    tiny.set({l0w: ["fill", 0.0], l0b: ["fill", -1.0], l1w: ["fill", 1.0], l1b: ["fill", 0.0]})
    out = tiny(x, (2, 1))
    expect(_close(out, torch.full_like(out, -0.2 * 16), 1e-4), "apply LeakyReLU(0.2) between the two dense layers")
    for h, w in ((96, 96), (160, 144)):
        computes_reference(student, name, n_channels=8, fc_size=16, what="Discriminator(n_channels=8, fc_size=16)",
                           inputs=[_rand(g, 2, 3, h, w) * 2 - 1])


# ------------------------------------------------------------------------------------------------------------
# 02_solver: the student's epoch runs on the kit's networks with recording optimizers; oracles run here
# ------------------------------------------------------------------------------------------------------------
def _rel_err(a, b) -> float:
    if len(a) != len(b) or any((x is None) != (y is None) for x, y in zip(a, b)):
        return math.inf
    if any(x is not None and (not torch.is_tensor(x) or x.shape != y.shape) for x, y in zip(a, b)):
        return math.inf
    num = sum(float((x.float() - y).pow(2).sum()) for x, y in zip(a, b) if x is not None)
    den = sum(float(y.pow(2).sum()) for y in b if y is not None)
    err = math.sqrt(num) / (math.sqrt(den) + 1e-12)
    return err if math.isfinite(err) else math.inf


def _same(a, b, tol=1e-4) -> bool:
    return _rel_err(a, b) < tol


def _grads(answer, key: str) -> list:
    steps = answer.get(key)
    expect(isinstance(steps, list) and len(steps) <= 64 and all(isinstance(s, list) for s in steps),
           "the training epoch's recorded steps could not be read")
    return steps


def _number(value, what: Message):
    """A returned loss: a Python number (not a tensor: the epoch returns ``loss.item()`` values)."""
    if isinstance(value, float):
        return value
    if isinstance(value, dict) and "tensor" in value:
        raise CheckFailed("{what} is a tensor: return a Python number (e.g. loss.item())", what=what)
    return None


class OracleSGD:
    """Plain SGD (no momentum, no weight decay), the update ``torch.optim.SGD`` makes, recording a copy of the
    gradients at every step (``grads``) as ``student_side.Recorder`` does for the student's optimizer.

    The oracles use it instead of ``torch.optim.SGD``, whose first construction in a process imports
    ``torch._dynamo`` (~1.5 s of CPU while a kernel runs, for nothing the oracles need)."""

    def __init__(self, params, lr: float):
        self.params, self.lr, self.grads = list(params), lr, []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.params])
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


def _oracle_srresnet_epoch(model, batches, optimizer, loss_fn=F.mse_loss):
    losses = []
    model.train()
    for lr, hr in batches:
        loss = loss_fn(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _run_oracle_srresnet(state, batches, loss_fn=F.mse_loss):
    model = kit_upscaler()
    model.load_state_dict(state)
    opt = OracleSGD(model.parameters(), lr=0.05)
    loss = _oracle_srresnet_epoch(model, batches, opt, loss_fn)
    return {"grads": opt.grads, "params": [p.detach() for p in model.parameters()], "loss": loss}


@check
def srresnet_epoch(student: Student, folder: Path) -> None:
    g = _gen()
    torch.manual_seed(_seed())
    state = kit_upscaler().state_dict()
    batches = [(_rand(g, 2, 3, 8, 8), _rand(g, 2, 3, 32, 32) * 2 - 1) for _ in range(3)]
    ref = _run_oracle_srresnet(state, batches)
    stu = student.request("srresnet_epoch", "train_srresnet_epoch", model=state, batches=batches, lr=0.05)
    grads, n = _grads(stu, "grads"), len(batches)
    expect(len(grads) == n, "optimizer.step() ran {steps} times for {n} batches: step once per batch",
           steps=len(grads), n=n)
    if not _same(grads[0], ref["grads"][0]):
        variants = [(Message("the loss is an L1 loss: use the pixel MSE (F.mse_loss)"), F.l1_loss),
                    (Message("HR is rescaled: model output and HR are both in [-1, 1]; do not rescale them"),
                     lambda sr, hr: F.mse_loss(sr, (hr + 1) / 2))]
        for why, loss_fn in variants:
            if _same(grads[0], _run_oracle_srresnet(state, batches[:1], loss_fn)["grads"][0]):
                raise CheckFailed("the first batch's gradient is not that of the pixel MSE between model(lr) and hr "
                                  "({why})", why=why)
        raise CheckFailed("the first batch's gradient is not that of the pixel MSE between model(lr) and hr")
    for k in range(1, n):
        if not _same(grads[k], ref["grads"][k]):
            accumulated = [a + b if a is not None and torch.is_tensor(b) else None
                           for a, b in zip(ref["grads"][k], grads[k - 1])]
            if _same(grads[k], accumulated, 1e-3):
                raise CheckFailed("gradients accumulate across batches: call optimizer.zero_grad() for every batch")
            raise CheckFailed("the gradient of batch {k} is not the pixel-MSE gradient of that batch", k=k + 1)
    expect(_same(stu["params"], ref["params"], 1e-5),
           "the model's parameters after the epoch differ from one SGD step per batch on the pixel MSE")
    loss = _number(stu["loss"], Message("the returned mean loss"))
    expect(loss is not None, "return the mean loss as a number")
    expect(abs(loss - ref["loss"]) <= 1e-5 * max(1.0, abs(ref["loss"])),
           "the returned value {loss:.6f} is not the mean of the batch losses ({mean:.6f})", loss=loss,
           mean=ref["loss"])
    stu = student.request("srresnet_epoch", "train_srresnet_epoch(..., scaler=...)", model=state, batches=batches,
                          lr=0.05, scaler=True)
    expect(stu["scaler_calls"] == {"scale": n, "step": n, "update": n},
           "with a GradScaler, use scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update() per batch")
    expect(_same(stu["params"], ref["params"], 1e-5), "with a GradScaler the parameters should end as without one")


# How the generator step can go wrong, each as an oracle variant: which part of its gradient is wrong.
G_STEP_MISTAKES = {
    "d_eval": Message("the discriminator is in eval mode during the generator step: keep it in train mode (its "
                      "batch-norm uses the batch statistics)"),
    "content_detached": Message("the content loss does not reach the generator: SR is detached (or computed "
                                "without gradient) in the content loss"),
    "adversarial_detached": Message("the adversarial loss does not reach the generator: SR is detached before "
                                    "the discriminator in the generator's loss"),
    "vgg_norm_sr_only": Message("the VGG input normalisation is applied to SR only: convert HR the same way"),
    "vgg_norm_hr_only": Message("the VGG input normalisation is applied to HR only: convert SR the same way"),
}


def _oracle_srgan_epoch(g, d, vgg, batches, opt_g, opt_d, beta, order, mistake=None):
    from sr_utils.color import convert_image

    sums = {"content": 0.0, "adversarial": 0.0, "generator": 0.0, "discriminator": 0.0}
    g.train()
    d.train()
    norm = lambda t: convert_image(t, "[-1, 1]", "imagenet-norm")  # noqa: E731

    def g_step(sr, hr):
        sr_c = sr.detach() if mistake == "content_detached" else sr
        if vgg is None:
            content = F.mse_loss(sr_c, hr)
        else:
            a = sr_c if mistake == "vgg_norm_hr_only" else norm(sr_c)
            b = hr if mistake == "vgg_norm_sr_only" else norm(hr)
            content = F.mse_loss(vgg(a), vgg(b).detach())
        if mistake == "d_eval":
            d.eval()
        logits = d(sr.detach() if mistake == "adversarial_detached" else sr)
        d.train()
        adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss = content + beta * adversarial
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        return content.item(), adversarial.item(), loss.item()

    def d_step(sr, hr):
        real, fake = d(hr), d(sr.detach())
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss.item()

    for lr, hr in batches:
        sr = g(lr)
        if order == "G-first":
            c, a, gl = g_step(sr, hr)
            dl = d_step(sr, hr)
        else:
            dl = d_step(sr, hr)
            c, a, gl = g_step(sr, hr)
        for key, value in zip(sums, (c, a, gl, dl)):
            sums[key] += value
    return {k: v / len(batches) for k, v in sums.items()}


def _run_oracle_srgan(setup, vgg_state, beta, order, mistake=None, batches=None):
    g, d = kit_upscaler(), kit_discriminator()
    g.load_state_dict(setup["g"])
    d.load_state_dict(setup["d"])
    vgg = None
    if vgg_state is not None:
        vgg = kit_vgg()
        vgg.load_state_dict(vgg_state)
    opt_g, opt_d = OracleSGD(g.parameters(), lr=0.01), OracleSGD(d.parameters(), lr=0.01)
    losses = _oracle_srgan_epoch(g, d, vgg, batches or setup["batches"], opt_g, opt_d, beta, order, mistake)
    return {"grads_g": opt_g.grads, "grads_d": opt_d.grads, "g": [p.detach() for p in g.parameters()],
            "d": [p.detach() for p in d.parameters()], "losses": losses}


class Oracles:
    """The oracle epochs for one setup, in either order of the two steps, computed when first needed."""

    ORDERS = ("G-first", "D-first")

    def __init__(self, setup, vgg_state, beta):
        self.args, self.runs = (setup, vgg_state, beta), {}

    def first(self, matches):
        """The first oracle run for which ``matches(run)`` holds, or None."""
        for order in self.ORDERS:
            if order not in self.runs:
                self.runs[order] = _run_oracle_srgan(*self.args, order)
            if matches(self.runs[order]):
                return self.runs[order]
        return None


def _generator_mistake(stu_grad, setup, vgg_state, beta) -> Message:
    """Which known generator-step mistake gives the student's first generator gradient (else the generic rule)."""
    what = (Message("MSE between the VGG features of SR and HR, each converted with convert_image(x, '[-1, 1]', "
                    "'imagenet-norm')") if vgg_state is not None
            else Message("pixel MSE between SR and HR (no VGG given)"))
    generic = Message("the generator's gradient is wrong: its loss is content + beta * adversarial, with content = "
                      "{what} and adversarial = BCE-with-logits of D(sr) against 1", what=what)
    first = setup["batches"][:1]
    for mistake, why in G_STEP_MISTAKES.items():
        if mistake.startswith("vgg") and vgg_state is None:
            continue
        for order in ("G-first", "D-first"):
            ref = _run_oracle_srgan(setup, vgg_state, beta, order, mistake, first)
            if _same(stu_grad, ref["grads_g"][0]):
                return Message("the generator's gradient is wrong: {why}", why=why)
    return generic


def _check_srgan_run(stu, oracles: Oracles, n, setup, vgg_state, beta) -> None:
    grads_g, grads_d = _grads(stu, "grads_g"), _grads(stu, "grads_d")
    expect(len(grads_g) == n, "optimizer_g stepped {steps} times for {n} batches: once per batch",
           steps=len(grads_g), n=n)
    expect(len(grads_d) == n, "optimizer_d stepped {steps} times for {n} batches: once per batch",
           steps=len(grads_d), n=n)
    arrivals = stu["arrivals"]
    expect(arrivals == n, Message("the discriminator's loss reaches the generator: give the discriminator "
                                  "sr.detach()")
           if arrivals > n else Message("the generator's loss does not reach the generator's output"))
    expect(stu["vgg_untouched"] is True, "the VGG must stay frozen: no gradient for its parameters")
    if oracles.first(lambda ref: _same(grads_d[0], ref["grads_d"][0])) is None:
        raise CheckFailed("the discriminator's gradient is wrong: BCE-with-logits of D(hr) against 1 (real) plus of "
                          "D(sr.detach()) against 0 (fake), with D called separately on each")

    def fits(ref) -> bool:  # the whole epoch: every gradient and the final parameters
        return (all(_same(grads_g[k], ref["grads_g"][k]) and _same(grads_d[k], ref["grads_d"][k]) for k in range(n))
                and _same(stu["g"], ref["g"], 1e-5) and _same(stu["d"], ref["d"], 1e-5))

    # With a small beta both step orders can fit the gradients within tolerance while their adversarial losses
    # differ (D-first judges SR with the updated D): keep every order that fits, accept the losses of any of them.
    fitting = []
    oracles.first(lambda ref: fits(ref) and fitting.append(ref))  # visits every order
    ref = fitting[0] if fitting else oracles.first(lambda ref: _same(grads_g[0], ref["grads_g"][0]))
    if ref is None:
        raise CheckFailed(_generator_mistake(grads_g[0], setup, vgg_state, beta))
    for k in range(1, n):
        for key, net in (("grads_g", Message("generator")), ("grads_d", Message("discriminator"))):
            mine = grads_g if key == "grads_g" else grads_d
            if not _same(mine[k], ref[key][k]):
                acc = [a + b if a is not None and torch.is_tensor(b) else None
                       for a, b in zip(ref[key][k], mine[k - 1])]
                if _same(mine[k], acc, 1e-3):
                    raise CheckFailed("the {net}'s gradients accumulate across batches: zero them every batch",
                                      net=net)
                raise CheckFailed("the {net}'s gradient at batch {k} is wrong (is one optimizer stepped with the "
                                  "other network's loss?)", net=net, k=k + 1)
    expect(_same(stu["g"], ref["g"], 1e-5) and _same(stu["d"], ref["d"], 1e-5),
           "the parameters after the epoch differ from one generator and one discriminator step per batch")
    losses = stu["losses"]
    keys = {"content", "adversarial", "generator", "discriminator"}
    expect(isinstance(losses, dict) and isinstance(losses.get("dict"), dict) and set(losses["dict"]) == keys,
           'return a dict with keys "content", "adversarial", "generator", "discriminator"')
    got = {}
    for key in ref["losses"]:
        got[key] = _number(losses["dict"][key], Message('the returned "{key}" loss', key=key))
        expect(got[key] is not None, 'the returned "{key}" loss should be a number', key=key)

    def losses_match(run) -> bool:
        return all(abs(got[k] - v) <= 1e-4 * max(1.0, abs(v)) for k, v in run["losses"].items())

    if not any(losses_match(run) for run in fitting or [ref]):
        key, value = next((k, v) for k, v in ref["losses"].items() if abs(got[k] - v) > 1e-4 * max(1.0, abs(v)))
        raise CheckFailed('the returned "{key}" loss {got:.6f} is not the mean of the batch values ({mean:.6f})',
                          key=key, got=got[key], mean=value)


@check
def srgan_epoch(student: Student, folder: Path) -> None:
    g = _gen()
    torch.manual_seed(_seed())
    setup = {"g": kit_upscaler().state_dict(), "d": kit_discriminator().state_dict(),
             "batches": [(_rand(g, 2, 3, 16, 16), _rand(g, 2, 3, 64, 64) * 2 - 1) for _ in range(2)]}
    vgg_state = kit_vgg().state_dict()
    n = len(setup["batches"])
    # VGG content loss with a non-default beta (a hard-coded 1e-3 is wrong), and the SRGAN-MSE variant
    oracles = {}
    for content_vgg, beta in ((vgg_state, 0.05), (None, 1e-3)):
        oracles[beta] = Oracles(setup, content_vgg, beta)
        stu = student.request("srgan_epoch", "train_srgan_epoch", g=setup["g"], d=setup["d"], vgg=content_vgg,
                              batches=setup["batches"], beta=beta, lr=0.01)
        _check_srgan_run(stu, oracles[beta], n, setup, content_vgg, beta)
    stu = student.request("srgan_epoch", "train_srgan_epoch(..., scaler_g=..., scaler_d=...)", g=setup["g"],
                          d=setup["d"], vgg=vgg_state, batches=setup["batches"], beta=0.05, lr=0.01, scalers=True)
    expect(stu["scaler_calls"] == {k: {"scale": n, "step": n, "update": n} for k in ("g", "d")},
           "with GradScalers, use scaler_g for the generator's step and scaler_d for the discriminator's: "
           "scale(loss).backward(), step(optimizer), update() once per batch each")
    expect(oracles[0.05].first(lambda ref: _same(stu["g"], ref["g"], 1e-5) and _same(stu["d"], ref["d"], 1e-5))
           is not None, "with GradScalers the parameters should end as without them")


# ------------------------------------------------------------------------------------------------------------
# 04_test and 05_super_resolution: outputs recomputed from the submission's own checkpoints
# ------------------------------------------------------------------------------------------------------------
def read_student_file(path: Path, limit: int = MAX_FILE, folder: Path | None = None) -> bytes:
    """A regular file of the submission, at most ``limit`` bytes, read beneath ``folder`` (the submission; without
    it, the file's own folder) through a walk of directory descriptors: no component, folder or file, is followed
    if it is a link, even one a running kernel swaps in while this reads (:mod:`course.student_files`)."""
    import errno

    from course.student_files import FileTooLarge, read_beneath, relative_to

    folder = Path(path).parent if folder is None else Path(folder)
    try:
        rel = relative_to(path, folder)
        return read_beneath(folder, rel, limit)
    except OSError as e:
        at, last = getattr(e, "at", ""), getattr(e, "last", True)
        if e.errno == errno.ELOOP and at and not last:
            raise CheckFailed("{path} is a link, not a folder of the submission", path=at) from None
        raise CheckFailed("{path} is missing or not a plain file", path=f"{path.parent.name}/{path.name}") from None
    except ValueError as e:
        if isinstance(e, FileTooLarge):
            raise CheckFailed("{path} is larger than {mb} MB", path=path.name, mb=limit >> 20) from None
        raise CheckFailed("{path} is not a plain file", path=path.name) from None


def _is_student_file(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a regular file beneath ``folder`` reached through no link (a walk of directory
    descriptors, like :func:`read_student_file`: never a path lookup a running kernel could redirect)."""
    from course.student_files import is_file_beneath, relative_to

    try:
        return is_file_beneath(folder, relative_to(path, folder))
    except ValueError:
        return False


def _trained(student: Student, folder: Path, name: str) -> tuple[str, torch.nn.Module]:
    """``(label, network)`` of what notebooks 04 and 05 used for stage ``name`` (``srresnet``/``srgan``): the
    student's trained network of ``checkpoints/<name>/best.pth`` as notebook 03 wrote it while graded (in
    ``.grading-run/``), or, when 03 wrote none, the kit's stand-in, exactly as :mod:`sr_utils.trained` does.

    The network returned runs here: the assignment's architecture (the reference, built from the checkpoint's
    ``model_kwargs``) holding the checkpoint's weights, once the student's own network, built and loaded with the
    same checkpoint on the student side, has been seen to compute the same thing on a fresh input
    (:func:`recompute.recompute`). What the student's code does with the test images themselves never counts."""
    from sr_utils.checkpoint import generator_label
    from sr_utils.notebook import GRADING_SCRATCH
    from sr_utils.trained import StandInGenerator, stand_in_label

    shown = f"checkpoints/{name}/best.pth"
    path = folder / GRADING_SCRATCH / "checkpoints" / name / "best.pth"
    if not _is_student_file(path, folder):
        return stand_in_label(name), StandInGenerator().eval()
    data = read_student_file(path, folder=folder)
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise CheckFailed("{path} is not a readable checkpoint of tensors: run notebook 03_train again",
                          path=shown) from None
    kwargs = ckpt.get("model_kwargs", {}) if isinstance(ckpt, dict) else None
    state = ckpt.get("model") if isinstance(ckpt, dict) else None
    expect(isinstance(kwargs, dict) and all(isinstance(k, str) and isinstance(v, (int, float, str, bool))
                                            for k, v in kwargs.items()) and isinstance(state, dict),
           "{path} does not hold model_kwargs and a model state_dict: run notebook 03_train again", path=shown)
    cls = "SRResNet" if name == "srresnet" else "Generator"
    expect(ckpt.get("arch") == cls, "{path} does not say it holds a {cls} (arch): run notebook 03_train again",
           path=shown, cls=cls)
    config = ckpt.get("config")
    label = generator_label({"arch": cls, "config": config if isinstance(config, dict) else {}})
    weights = {k: v for k, v in state.items() if isinstance(k, str) and torch.is_tensor(v)}
    expect(len(weights) == len(state), "{path} does not hold model_kwargs and a model state_dict: run notebook "
                                       "03_train again", path=shown)
    net = Remote.new(student, cls, what=Message("building the {name} model of the checkpoint", name=name), **kwargs)
    net.call("load_state_dict", weights, what=Message("loading {path}", path=shown))
    fresh = _rand(_gen(), 1, 3, 12, 10)
    checked = recompute(net, cls, [fresh], kwargs=kwargs, weights=weights,
                        what=Message("the {cls} of {path}", cls=cls, path=shown))
    return label, checked.reference


def _table_scores(student: Student, folder: Path) -> tuple[set, dict]:
    """The methods (bicubic and the labels of the networks of the checkpoints notebook 03 left, or of the
    stand-ins) and ``{(set, method): (psnr, ssim)}`` recomputed with the kit's convention for every test set of at
    most 20 images."""
    from sr_utils.datasets import SREvalDataset
    from sr_utils.evaluation import bicubic, evaluate_split, model_upscaler
    from sr_utils.lists import test_lists
    from sr_utils.trained import STAGES

    upscalers = {"bicubic": bicubic(4)}
    for stage in STAGES:
        label, net = _trained(student, folder, stage)
        upscalers[label] = model_upscaler(net)
    scores = {}
    for set_name, list_file in test_lists(default_data_dir()).items():
        if len(SREvalDataset(list_file)) > 20:
            continue  # large sets are not recomputed here
        for method, upscale in upscalers.items():
            each = evaluate_split(upscale, list_file, progress=False)
            scores[set_name, method] = (sum(s["psnr"] for s in each) / len(each),
                                        sum(s["ssim"] for s in each) / len(each))
    return set(upscalers), scores


def prepare_test_table(student: Student, folder: Path) -> None:
    """The recomputation of ``test_table``, done before notebook 04 runs (the checkpoints are 03's): the grader
    calls this while the kernel works; the check then only reads the table."""
    _PREPARED[folder, "test_table"] = _table_scores(student, folder)


# Work a check can do before its notebook has run, from what the earlier notebooks left (the grader's check server
# calls it while the kernel runs); results are kept per submission folder until the check uses them.
PREPARE = {"test_table": prepare_test_table}
_PREPARED: dict = {}


@check
def test_table(student: Student, folder: Path) -> None:
    from sr_utils.notebook import GRADING_SCRATCH

    path = folder / GRADING_SCRATCH / "results" / "test_table.csv"
    expect(_is_student_file(path, folder), "results/test_table.csv is missing: run the table cell")
    text = read_student_file(path, 1 << 20, folder=folder).decode("utf-8", errors="replace")
    rows = list(csv.DictReader(io.StringIO(text)))
    expect(rows and {"set", "method", "psnr", "ssim"} <= set(rows[0]), "results/test_table.csv: unexpected columns")
    methods, scores = _PREPARED.pop((folder, "test_table"), None) or _table_scores(student, folder)
    seen = set()
    for row in rows[:100]:
        set_name, method = row.get("set"), row.get("method")
        if (set_name, method) not in scores:
            continue
        psnr, ssim = scores[set_name, method]
        try:
            got_psnr, got_ssim = float(row["psnr"]), float(row["ssim"])
        except (TypeError, ValueError):
            raise CheckFailed("{set}/{method}: the table's psnr/ssim are not numbers", set=set_name,
                              method=method) from None
        expect(abs(got_psnr - psnr) < 0.01 and abs(got_ssim - ssim) < 1e-4,
               "{set}/{method}: the table says {got_psnr:.2f} dB / {got_ssim:.4f}, recomputed with the kit's "
               "convention: {psnr:.2f} dB / {ssim:.4f} (check evaluate())", set=set_name, method=method,
               got_psnr=got_psnr, got_ssim=got_ssim, psnr=psnr, ssim=ssim)
        seen.add(method)
    expect(seen == methods, "rows missing for {methods} on the test sets", methods=sorted(methods - seen))


@check
def set5_submission(student: Student, folder: Path) -> None:
    from PIL import Image

    from sr_utils.datasets import SREvalDataset
    from sr_utils.inference import super_resolve
    from sr_utils.lists import human_eval_list, submission_folder
    from sr_utils.notebook import GRADING_SCRATCH

    Image.MAX_IMAGE_PIXELS = 64 << 20  # a decompression bomb is refused by PIL
    split, eval_list = human_eval_list(default_data_dir())
    dataset = SREvalDataset(eval_list)
    label, generator_net = _trained(student, folder, "srgan")
    shown_dir = f"submission/{submission_folder(split)}"
    for i in range(len(dataset)):
        name, lr, _ = dataset[i]
        path = folder / GRADING_SCRATCH / shown_dir / f"{name}.png"
        shown = f"{shown_dir}/{name}.png"
        expect(_is_student_file(path, folder), "{path} is missing", path=shown)
        try:
            with Image.open(io.BytesIO(read_student_file(path, 64 << 20, folder=folder))) as im:
                got = np.asarray(im.convert("RGB"))
        except CheckFailed:
            raise
        except Exception:
            raise CheckFailed("{path} is not a readable PNG image", path=shown) from None
        want = super_resolve(generator_net, lr)
        expect(got.shape == want.shape, "{path} is {got}, expected {want}", path=shown, got=got.shape,
               want=want.shape)
        diff = int(np.abs(got.astype(np.int16) - want.astype(np.int16)).max())
        expect(diff <= 1, "{path} is not the output of {label} for that image (max difference {diff} levels)",
               path=shown, label=label, diff=diff)


if __name__ == "__main__":
    sys.exit("usage: python -I -m course.grading.run_check CHECK --submission FOLDER")
