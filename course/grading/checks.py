"""Hidden checks of the ``superres`` assignment (instructor-only: never copied into the release).

Each check takes a :class:`Submission` (a folder with the student's notebooks) and raises :class:`CheckFailed`
with one line that says what is wrong without giving the solution. Modules are rebuilt from the submitted
notebooks' ``%%writefile`` cells (never a ``models.py`` found on disk). Solver checks use the instructor's
reference models (extracted from ``source/superres/01_models.ipynb``), so a wrong ``models.py`` does not also
cost the solver's points, and compare the student's training step by step with oracles written here: the
parameters, gradients and returned losses are verified, never trusted.
"""
from __future__ import annotations

import copy
import csv
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sr_utils.lists import default_data_dir
from sr_utils.notebook import export_modules, load_module

# Captured before any student code runs, so that a submission patching torch/numpy cannot change verdicts.
_equal, _allclose, _isfinite = torch.equal, torch.allclose, math.isfinite
_np_equal, _np_abs = np.array_equal, np.abs

SOURCE = Path(__file__).resolve().parents[2] / "source" / "superres" if Path(__file__).is_file() else None
CHECKS = {}


class CheckFailed(AssertionError):
    """A hidden check failed; the message is shown to the student."""


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def expect(condition, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Submission:
    """A submitted assignment folder; modules are rebuilt from its notebooks into a private temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._tmp = Path(tempfile.mkdtemp(prefix="sr_check_"))
        self._modules = {}

    def module(self, name: str, notebook: str):
        if name not in self._modules:
            try:
                export_modules(self.folder / notebook, self._tmp, only=[f"{name}.py"], quiet=True)
            except (FileNotFoundError, ValueError) as e:
                raise CheckFailed(str(e)) from None
            torch.manual_seed(0)
            self._modules[name] = load_module(name, self._tmp)
        return self._modules[name]

    def models(self):
        return self.module("models", "01_models.ipynb")

    def solver(self):
        self.models()  # a solver may `import models`
        return self.module("solver", "02_solver.ipynb")

    def cls(self, name: str):
        m = self.models()
        expect(hasattr(m, name), f"models.py has no class {name}: is the `%%writefile -a models.py` line of its cell "
                                 "still there, and was the cell run?")
        return getattr(m, name)


_reference = {}


def set_reference_source(source: str) -> None:
    """Use this ``models.py`` source as the reference (the sandboxed grader sends it: no file to read back)."""
    import types

    module = types.ModuleType("sr_reference_models")
    module.__file__ = "<reference models>"
    sys.modules["sr_reference_models"] = module
    exec(compile(source, "<reference models>", "exec"), module.__dict__)
    _reference["models"] = module


def reference_models():
    """The instructor's models, rebuilt from the source notebook (the one reference solution)."""
    if "models" not in _reference:
        tmp = Path(tempfile.mkdtemp(prefix="sr_ref_"))
        export_modules(SOURCE / "01_models.ipynb", tmp, only=["models.py"], quiet=True)
        _reference["models"] = load_module("models", tmp, module_name="sr_reference_models")
    return _reference["models"]


def expect_value_error(fn, what: str, hint: str = "") -> None:
    """``fn()`` must raise ValueError (bad arguments are refused clearly, not by a crash later)."""
    try:
        fn()
    except ValueError:
        return
    except Exception as e:
        raise CheckFailed(f"{what} should raise ValueError, raised {type(e).__name__}") from None
    raise CheckFailed(f"{what} should raise ValueError{hint}")


def count(module: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layers_used_once(model: nn.Module, *inputs, what: str) -> None:
    """Every layer holding parameters must run exactly once per forward (catches layers built but skipped)."""
    calls, handles = {}, []
    for name, m in model.named_modules():
        if any(True for _ in m.parameters(recurse=False)):
            calls[name] = 0
            handles.append(m.register_forward_hook(lambda mod, i, o, name=name: calls.__setitem__(name, calls[name] + 1)))
    try:
        with torch.no_grad():
            _call(model, *inputs, what=f"{what}.forward")
    finally:
        for h in handles:
            h.remove()
    for name, n in calls.items():
        if n != 1:
            kind = type(dict(model.named_modules())[name]).__name__
            raise CheckFailed(f"{what}: a {kind} layer is built in __init__ but " +
                              ("not used in forward" if n == 0 else f"used {n} times in forward"))


def _call(fn, *args, what: str, **kwargs):
    try:
        return fn(*args, **kwargs)
    except CheckFailed:
        raise
    except Exception as e:
        raise CheckFailed(f"{what} raised {type(e).__name__}: {e}") from None


# ------------------------------------------------------------------------------------------------------------
# 01_models
# ------------------------------------------------------------------------------------------------------------
@check
def conv_block(sub: Submission) -> None:
    CB = sub.cls("ConvolutionalBlock")
    torch.manual_seed(0)
    x = torch.rand(2, 3, 17, 16)
    for k in (3, 9):
        for stride in (1, 2):
            block = _call(CB, 3, 8, k, stride=stride, what=f"ConvolutionalBlock(3, 8, {k}, stride={stride})")
            out = _call(block, x, what="ConvolutionalBlock.forward")
            want = (2, 8, -(-17 // stride), -(-16 // stride))
            expect(tuple(out.shape) == want, f"ConvolutionalBlock(3, 8, kernel_size={k}, stride={stride}) maps "
                                             f"(2, 3, 17, 16) to {tuple(out.shape)}, expected {want}")
            convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
            expect(len(convs) == 1 and convs[0].kernel_size == (k, k) and convs[0].stride == (stride, stride),
                   f"ConvolutionalBlock should hold one nn.Conv2d with kernel_size={k} and stride={stride}")
    plain = CB(3, 8, 3)
    expect(count(plain, nn.BatchNorm2d) == 0, "batch_norm=False should add no batch-norm")
    expect(count(plain, (nn.PReLU, nn.LeakyReLU, nn.Tanh, nn.ReLU, nn.Sigmoid)) == 0,
           "activation=None should add no activation")
    zero = torch.zeros_like(x)
    with torch.no_grad():
        expect(_allclose(plain(2 * x) - plain(zero), 2 * (plain(x) - plain(zero)), atol=1e-5),
               "with activation=None the block should be a plain (linear) convolution")
    bn = CB(3, 8, 3, batch_norm=True).train()
    expect(count(bn, nn.BatchNorm2d) == 1, "batch_norm=True should add exactly one nn.BatchNorm2d")
    with torch.no_grad():
        out = bn(x)
    expect(out.mean(dim=(0, 2, 3)).abs().max() < 1e-4, "batch-norm should come right after the convolution")
    for act in ("prelu", "leakyrelu"):
        block = CB(3, 8, 3, batch_norm=True, activation=act).train()
        layers_used_once(block, x, what="ConvolutionalBlock")
        with torch.no_grad():
            means = block(x).mean(dim=(0, 2, 3))
        expect(means.min() > 0.05, "the activation should come after the batch-norm (conv -> BN -> activation)")
    acts = {"prelu": nn.PReLU, "leakyrelu": nn.LeakyReLU, "tanh": nn.Tanh}
    for name, kind in acts.items():
        block = CB(3, 8, 3, activation=name)
        expect(count(block, kind) == 1, f'activation="{name}" should add one {kind.__name__}')
    leaky = [m for m in CB(3, 8, 3, activation="leakyrelu").modules() if isinstance(m, nn.LeakyReLU)][0]
    expect(abs(leaky.negative_slope - 0.2) < 1e-9, f"LeakyReLU slope should be 0.2, is {leaky.negative_slope}")
    prelu = [m for m in CB(3, 8, 3, activation="prelu").modules() if isinstance(m, nn.PReLU)][0]
    expect(prelu.weight.numel() == 1, "PReLU should have a single learnable slope (nn.PReLU())")
    with torch.no_grad():
        expect(CB(3, 8, 3, activation="tanh")(x * 1e3).abs().max() <= 1, "tanh output should be in [-1, 1]")
    expect_value_error(lambda: CB(3, 8, 3, activation="swish"), 'an unknown activation (e.g. "swish")')


@check
def subpixel_block(sub: Submission) -> None:
    SP = sub.cls("SubPixelConvolutionalBlock")
    torch.manual_seed(0)
    for s in (2, 3):
        block = _call(SP, kernel_size=3, n_channels=8, scaling_factor=s, what="SubPixelConvolutionalBlock(...)")
        out = _call(block, torch.rand(2, 8, 10, 7), what="SubPixelConvolutionalBlock.forward")
        expect(tuple(out.shape) == (2, 8, 10 * s, 7 * s),
               f"scaling_factor={s} maps (2, 8, 10, 7) to {tuple(out.shape)}, expected {(2, 8, 10 * s, 7 * s)}")
        shuffles = [m for m in block.modules() if isinstance(m, nn.PixelShuffle)]
        expect(len(shuffles) == 1 and shuffles[0].upscale_factor == s, "use one nn.PixelShuffle(scaling_factor)")
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        expect(len(convs) == 1 and convs[0].out_channels == 8 * s * s and convs[0].kernel_size == (3, 3),
               "the convolution should make n_channels * scaling_factor**2 channels with the given kernel_size")
        expect(count(block, nn.PReLU) == 1, "a sub-pixel block ends with one nn.PReLU")
        expect(n_params(block) == 8 * 8 * s * s * 9 + 8 * s * s + 1,
               "unexpected parameter count: conv (with bias) + a single-parameter PReLU")
        layers_used_once(block, torch.rand(1, 8, 5, 4), what="SubPixelConvolutionalBlock")
        with torch.no_grad():
            [m for m in block.modules() if isinstance(m, nn.PReLU)][0].weight.zero_()
            y = block(torch.rand(2, 8, 10, 7) - 0.5)
        expect(y.min() >= 0, "the PReLU should be applied last, after the pixel shuffle")


@check
def residual_block(sub: Submission) -> None:
    RB = sub.cls("ResidualBlock")
    torch.manual_seed(0)
    block = _call(RB, kernel_size=3, n_channels=8, what="ResidualBlock(kernel_size=3, n_channels=8)")
    x = torch.rand(2, 8, 11, 9)
    out = _call(block, x, what="ResidualBlock.forward")
    expect(tuple(out.shape) == tuple(x.shape), f"a residual block keeps the shape {tuple(x.shape)}, got {tuple(out.shape)}")
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    expect(len(convs) == 2 and all(c.kernel_size == (3, 3) for c in convs), "a residual block has two 3x3 convolutions")
    expect(count(block, nn.BatchNorm2d) == 2, f"a residual block has 2 batch-norms, found {count(block, nn.BatchNorm2d)}")
    expect(count(block, nn.PReLU) == 1 and count(block, (nn.ReLU, nn.LeakyReLU, nn.Tanh)) == 0,
           "a residual block has exactly one activation, a PReLU, after the first batch-norm")
    expect(n_params(block) == 2 * (8 * 8 * 9 + 8) + 2 * 16 + 1, "unexpected parameter count for a residual block")
    layers_used_once(block, x, what="ResidualBlock")
    block.eval()
    with torch.no_grad():
        [m for m in block.modules() if isinstance(m, nn.PReLU)][0].weight.zero_()
        xs = torch.randn(4, 8, 11, 9)
        expect((block(xs) - xs).min() < 0, "order: conv -> BN -> PReLU -> conv -> BN, then add the input (the "
                                           "second batch-norm's output is added without an activation)")
        for p in block.parameters():
            p.zero_()
        expect(_allclose(block(x), x, atol=1e-6), "the input should be added to the output (identity shortcut)")


def _zero_bn(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.zero_()
                m.bias.zero_()


@check
def srresnet(sub: Submission) -> None:
    S = sub.cls("SRResNet")
    torch.manual_seed(0)
    for scale in (2, 4, 8):
        net = _call(S, n_channels=8, n_blocks=2, scaling_factor=scale, what=f"SRResNet(scaling_factor={scale})").eval()
        for h, w in ((12, 10), (7, 9)):
            with torch.no_grad():
                out = _call(net, torch.rand(2, 3, h, w), what="SRResNet.forward")
            want = (2, 3, scale * h, scale * w)
            expect(tuple(out.shape) == want, f"SRResNet(scaling_factor={scale}) maps (2, 3, {h}, {w}) to "
                                             f"{tuple(out.shape)}, expected {want}")
        shuffles = [m for m in net.modules() if isinstance(m, nn.PixelShuffle)]
        expect(len(shuffles) == int(math.log2(scale)) and all(m.upscale_factor == 2 for m in shuffles),
               f"scaling_factor={scale} needs {int(math.log2(scale))} sub-pixel blocks of factor 2")
    expect_value_error(lambda: S(scaling_factor=3), "scaling_factor=3", " (only 2, 4, 8 are possible)")
    full = S()
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    big = [c for c in convs if c.kernel_size == (9, 9)]
    expect(len(big) == 2 and {(c.in_channels, c.out_channels) for c in big} == {(3, 64), (64, 3)},
           "SRResNet has two 9x9 convolutions: the first (3 -> 64) and the last (64 -> 3)")
    expect(all(c.kernel_size == (3, 3) for c in convs if c not in big), "all other convolutions are 3x3")
    expect(len(convs) == 37, f"SRResNet() has 37 convolutions (1 + 16 x 2 + 1 + 2 + 1), found {len(convs)}")
    n_bn = count(full, nn.BatchNorm2d)
    expect(n_bn == 33, f"SRResNet() has 33 batch-norms (2 per residual block + 1 after the trunk; none in the first "
                       f"or last block or the sub-pixel blocks), found {n_bn}")
    n_prelu = count(full, nn.PReLU)
    expect(n_prelu == 19 and count(full, (nn.ReLU, nn.LeakyReLU, nn.Sigmoid)) == 0,
           f"SRResNet() uses PReLU activations only (19 of them), found {n_prelu} PReLU")
    total = n_params(full)
    expect(total == 1_549_462, f"SRResNet() should have 1,549,462 parameters, has {total:,}")
    tiny = S(n_channels=8, n_blocks=2).eval()
    layers_used_once(tiny, torch.rand(1, 3, 8, 8), what="SRResNet")
    with torch.no_grad():
        big_out = tiny(torch.rand(1, 3, 8, 8) * 1e3 - 500)
        expect(big_out.abs().max() <= 1 + 1e-6, "the output should be squashed to [-1, 1] by a final tanh")
        _zero_bn(tiny)  # residual blocks become identities, the trunk's last block outputs 0
        a, b = tiny(torch.rand(1, 3, 8, 8)), tiny(torch.rand(1, 3, 8, 8))
    expect(not _allclose(a, b, atol=1e-7), "the output of the first block should be added after the residual trunk "
                                           "(long skip connection)")


@check
def generator(sub: Submission) -> None:
    S, G = sub.cls("SRResNet"), sub.cls("Generator")
    torch.manual_seed(0)
    srresnet = S(n_channels=8, n_blocks=2)
    with torch.no_grad():
        for p in srresnet.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    gen = _call(G, n_channels=8, n_blocks=2, what="Generator(n_channels=8, n_blocks=2)")
    expect(n_params(gen) == n_params(srresnet), "the Generator should be exactly an SRResNet (same parameters)")
    expect(hasattr(gen, "initialize_with_srresnet"), "Generator needs an initialize_with_srresnet(state_dict) method")
    _call(gen.initialize_with_srresnet, srresnet.state_dict(), what="initialize_with_srresnet")
    srresnet.eval()
    gen.eval()
    x = torch.rand(2, 3, 9, 7)
    with torch.no_grad():
        expect(_allclose(gen(x), srresnet(x), atol=1e-6),
               "after initialize_with_srresnet(sd) the generator should compute what the SRResNet computes")
    for scale in (2, 8):
        g = G(n_channels=8, n_blocks=1, scaling_factor=scale).eval()
        with torch.no_grad():
            expect(tuple(g(torch.rand(1, 3, 5, 6)).shape) == (1, 3, 5 * scale, 6 * scale),
                   f"Generator(scaling_factor={scale}) should upscale by {scale}")


@check
def discriminator(sub: Submission) -> None:
    D = sub.cls("Discriminator")
    torch.manual_seed(0)
    full = _call(D, what="Discriminator()")
    total = n_params(full)
    expect(total == 23_565_505, f"Discriminator() should have 23,565,505 parameters, has {total:,}")
    convs = [m for m in full.modules() if isinstance(m, nn.Conv2d)]
    expect(len(convs) == 8 and all(c.kernel_size == (3, 3) for c in convs), "8 convolutions with 3x3 kernels")
    expect([c.stride[0] for c in convs] == [1, 2] * 4, "strides should alternate 1, 2, 1, 2, ... (4 stride-2 blocks)")
    expect([c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512],
           "channels should be 64, 64, 128, 128, 256, 256, 512, 512")
    expect(count(full, nn.BatchNorm2d) == 7, "batch-norm on every convolution block except the first")
    leaky = [m for m in full.modules() if isinstance(m, nn.LeakyReLU)]
    expect(len(leaky) == 9 and all(abs(m.negative_slope - 0.2) < 1e-9 for m in leaky),
           "LeakyReLU(0.2) after each of the 8 blocks and after the first dense layer")
    linears = [m for m in full.modules() if isinstance(m, nn.Linear)]
    expect(len(linears) == 2 and (linears[0].in_features, linears[0].out_features) == (512 * 36, 1024)
           and (linears[1].in_features, linears[1].out_features) == (1024, 1),
           "dense layers: Linear(512 * 6 * 6, fc_size) then Linear(fc_size, 1)")
    expect(count(full, nn.Sigmoid) == 0, "return logits: no sigmoid inside the discriminator (BCEWithLogitsLoss)")
    full.eval()
    for h, w in ((96, 96), (128, 128), (96, 120)):
        with torch.no_grad():
            out = _call(full, torch.rand(2, 3, h, w) * 2 - 1, what="Discriminator.forward")
        expect(tuple(out.shape) == (2, 1), f"a (2, 3, {h}, {w}) input should give logits (2, 1), got {tuple(out.shape)}")
    x = torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        before = full(x)
        linears[-1].bias.add_(10.0)
        after = full(x)
    expect(_allclose(after - before, torch.full_like(before, 10.0), atol=1e-4),
           "the output should be the last dense layer's raw output (a logit), with nothing applied after it")
    tiny = D(n_channels=8, fc_size=16).eval()
    layers_used_once(tiny, torch.rand(1, 3, 96, 96), what="Discriminator")
    bn_inputs, fc_inputs, last_bn = [], [], []
    bns = [m for m in tiny.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks = [m.register_forward_pre_hook(lambda mod, inp: bn_inputs.append(tuple(inp[0].shape))) for m in bns]
    hooks.append(bns[-1].register_forward_hook(lambda mod, inp, out: last_bn.append(out.clone())))  # before any in-place act
    lin = [m for m in tiny.modules() if isinstance(m, nn.Linear)]
    hooks.append(lin[0].register_forward_pre_hook(lambda mod, inp: fc_inputs.append(inp[0].clone())))
    with torch.no_grad():
        tiny(torch.rand(2, 3, 160, 144) * 2 - 1)  # larger than 96: the 6x6 pooling really pools
        for h in hooks:
            h.remove()
        expect(bn_inputs[0][1:] == (8, 80, 72), "batch-norm belongs to blocks 2-8 (the first block has none)")
        pooled = F.adaptive_avg_pool2d(F.leaky_relu(last_bn[-1], 0.2), (6, 6)).flatten(1)
        expect(fc_inputs and tuple(fc_inputs[0].shape) == tuple(pooled.shape) and _allclose(fc_inputs[0], pooled, atol=1e-5),
               "the first dense layer should get the flattened 6x6 adaptive *average* pool of the last block's output")
        lin[0].weight.zero_()
        lin[0].bias.fill_(-1.0)
        lin[1].weight.fill_(1.0)
        lin[1].bias.zero_()
        out = tiny(x)
    expect(_allclose(out, torch.full_like(out, -0.2 * 16), atol=1e-4),
           "apply LeakyReLU(0.2) between the two dense layers")


# ------------------------------------------------------------------------------------------------------------
# 02_solver: oracles and step-by-step recording
# ------------------------------------------------------------------------------------------------------------
class Recorder:
    """Wraps an optimizer: records a copy of its parameters' gradients at every step()."""

    def __init__(self, optimizer, params):
        self.optimizer, self.params, self.grads = optimizer, list(params), []
        optimizer.register_step_pre_hook(self._pre)

    def _pre(self, optimizer, args, kwargs):
        self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.params])


def _rel_err(a, b) -> float:
    num = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b) if x is not None and y is not None)
    den = sum(float(y.pow(2).sum()) for y in b if y is not None)
    if any((x is None) != (y is None) for x, y in zip(a, b)):
        return math.inf
    return math.sqrt(num) / (math.sqrt(den) + 1e-12)


def _same(a, b, tol=1e-4) -> bool:
    return _rel_err(a, b) < tol


def _oracle_srresnet_epoch(model, batches, optimizer):
    losses = []
    model.train()
    for lr, hr in batches:
        loss = F.mse_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _srresnet_setup():
    ref = reference_models()
    torch.manual_seed(1)
    model = ref.SRResNet(n_channels=8, n_blocks=2)
    batches = [(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32) * 2 - 1) for _ in range(3)]
    return model, batches


@check
def srresnet_epoch(sub: Submission) -> None:
    solver = sub.solver()
    expect(hasattr(solver, "train_srresnet_epoch"), "solver.py has no function train_srresnet_epoch")
    model0, batches = _srresnet_setup()

    def run(fn, student):
        model = copy.deepcopy(model0)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        rec = Recorder(opt, model.parameters())
        if student:
            loss = _call(fn, model, [(lr.clone(), hr.clone()) for lr, hr in batches], opt, torch.device("cpu"),
                         what="train_srresnet_epoch")
        else:
            loss = fn(model, batches, opt)
        return model, rec, loss

    m_ref, r_ref, loss_ref = run(_oracle_srresnet_epoch, False)
    m_stu, r_stu, loss_stu = run(solver.train_srresnet_epoch, True)
    n = len(batches)
    expect(len(r_stu.grads) == n, f"optimizer.step() ran {len(r_stu.grads)} times for {n} batches: step once per batch")
    if not _same(r_stu.grads[0], r_ref.grads[0]):
        raise CheckFailed("the first batch's gradient is not that of the pixel MSE between model(lr) and hr "
                          "(model output and HR are both in [-1, 1]; do not rescale them)")
    for k in range(1, n):
        if not _same(r_stu.grads[k], r_ref.grads[k]):
            accumulated = [a + b for a, b in zip(r_ref.grads[k], r_stu.grads[k - 1])]
            if _same(r_stu.grads[k], accumulated, 1e-3):
                raise CheckFailed("gradients accumulate across batches: call optimizer.zero_grad() for every batch")
            raise CheckFailed(f"the gradient of batch {k + 1} is not the pixel-MSE gradient of that batch")
    expect(_same(list(m_stu.parameters()), list(m_ref.parameters()), 1e-5),
           "the model's parameters after the epoch differ from one SGD step per batch on the pixel MSE")
    expect(isinstance(loss_stu, (float, int)) or (torch.is_tensor(loss_stu) and loss_stu.numel() == 1),
           "return the mean loss as a number")
    expect(abs(float(loss_stu) - loss_ref) <= 1e-5 * max(1.0, abs(loss_ref)),
           f"the returned value {float(loss_stu):.6f} is not the mean of the batch losses ({loss_ref:.6f})")

    class RecordingScaler:  # the GradScaler interface, without scaling: counts what the epoch asks of it
        def __init__(self):
            self.calls = {"scale": 0, "step": 0, "update": 0}

        def scale(self, loss):
            self.calls["scale"] += 1
            return loss

        def step(self, optimizer):
            self.calls["step"] += 1
            optimizer.step()

        def update(self):
            self.calls["update"] += 1

    model = copy.deepcopy(model0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = RecordingScaler()
    _call(solver.train_srresnet_epoch, model, [(lr.clone(), hr.clone()) for lr, hr in batches], opt,
          torch.device("cpu"), amp=False, scaler=scaler, what="train_srresnet_epoch(..., scaler=...)")
    expect(scaler.calls == {"scale": n, "step": n, "update": n},
           "with a GradScaler, use scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update() per batch")
    expect(_same(list(model.parameters()), list(m_ref.parameters()), 1e-5),
           "with a GradScaler the parameters should end as without one")


def _oracle_srgan_epoch(g, d, vgg, batches, opt_g, opt_d, beta, order):
    from sr_utils.color import convert_image

    sums = {"content": 0.0, "adversarial": 0.0, "generator": 0.0, "discriminator": 0.0}
    g.train()
    d.train()
    ones = lambda t: torch.ones_like(t)  # noqa: E731

    def g_step(sr, hr):
        if vgg is None:
            content = F.mse_loss(sr, hr)
        else:
            content = F.mse_loss(vgg(convert_image(sr, "[-1, 1]", "imagenet-norm")),
                                 vgg(convert_image(hr, "[-1, 1]", "imagenet-norm")).detach())
        logits = d(sr)
        adversarial = F.binary_cross_entropy_with_logits(logits, ones(logits))
        loss = content + beta * adversarial
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        return content.item(), adversarial.item(), loss.item()

    def d_step(sr, hr):
        real, fake = d(hr), d(sr.detach())
        loss = (F.binary_cross_entropy_with_logits(real, ones(real))
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


def _srgan_setup():
    from sr_utils.vgg import TruncatedVGG19

    ref = reference_models()
    torch.manual_seed(2)
    g = ref.Generator(n_channels=8, n_blocks=2)
    d = ref.Discriminator(n_channels=8, n_blocks=4, fc_size=16)
    vgg = TruncatedVGG19(i=2, j=2, weights=None)
    batches = [(torch.rand(2, 3, 24, 24), torch.rand(2, 3, 96, 96) * 2 - 1) for _ in range(2)]
    return g, d, vgg, batches


def _run_srgan(fn, g0, d0, vgg, batches, student, order=None, beta=1e-3):
    g, d = copy.deepcopy(g0), copy.deepcopy(d0)
    opt_g = torch.optim.SGD(g.parameters(), lr=0.01)
    opt_d = torch.optim.SGD(d.parameters(), lr=0.01)
    rec_g, rec_d = Recorder(opt_g, g.parameters()), Recorder(opt_d, d.parameters())
    arrivals = []

    def count_arrivals(module, inputs, out):  # counts the backward passes that reach the generator's output
        if torch.is_tensor(out) and out.requires_grad:
            out.register_hook(lambda grad: arrivals.append(1))

    g.register_forward_hook(count_arrivals)
    batches = [(lr.clone(), hr.clone()) for lr, hr in batches]
    if student:
        out = _call(fn, g, d, vgg, batches, opt_g, opt_d, torch.device("cpu"), beta=beta, what="train_srgan_epoch")
    else:
        out = fn(g, d, vgg, batches, opt_g, opt_d, beta, order)
    return {"g": g, "d": d, "rec_g": rec_g, "rec_d": rec_d, "losses": out, "arrivals": len(arrivals)}


def _check_srgan_run(stu, refs, n, vgg) -> None:
    expect(len(stu["rec_g"].grads) == n, f"optimizer_g stepped {len(stu['rec_g'].grads)} times for {n} batches: "
                                         "once per batch")
    expect(len(stu["rec_d"].grads) == n, f"optimizer_d stepped {len(stu['rec_d'].grads)} times for {n} batches: "
                                         "once per batch")
    expect(stu["arrivals"] == n, "the discriminator's loss reaches the generator: give the discriminator sr.detach()"
           if stu["arrivals"] > n else "the generator's loss does not reach the generator's output")
    if vgg is not None:
        expect(all(p.grad is None for p in vgg.parameters()) and not any(p.requires_grad for p in vgg.parameters()),
               "the VGG must stay frozen: no gradient for its parameters")
    for ref in refs:
        if _same(stu["rec_d"].grads[0], ref["rec_d"].grads[0]):
            break
    else:
        raise CheckFailed("the discriminator's gradient is wrong: BCE-with-logits of D(hr) against 1 (real) plus of "
                          "D(sr.detach()) against 0 (fake), with D called separately on each")
    matching = [ref for ref in refs if _same(stu["rec_g"].grads[0], ref["rec_g"].grads[0])]
    if not matching:
        what = "MSE between the VGG features of SR and HR, each converted with convert_image(x, '[-1, 1]', " \
               "'imagenet-norm')" if vgg is not None else "pixel MSE between SR and HR (no VGG given)"
        raise CheckFailed(f"the generator's gradient is wrong: its loss is content + beta * adversarial, with content "
                          f"= {what} and adversarial = BCE-with-logits of D(sr) against 1")
    ref = matching[0]
    for k in range(1, n):
        for key in ("rec_g", "rec_d"):
            if not _same(stu[key].grads[k], ref[key].grads[k]):
                net = "generator" if key == "rec_g" else "discriminator"
                acc = [a + b for a, b in zip(ref[key].grads[k], stu[key].grads[k - 1])]
                if _same(stu[key].grads[k], acc, 1e-3):
                    raise CheckFailed(f"the {net}'s gradients accumulate across batches: zero them every batch")
                raise CheckFailed(f"the {net}'s gradient at batch {k + 1} is wrong (is one optimizer stepped with "
                                  "the other network's loss?)")
    expect(_same(list(stu["g"].parameters()), list(ref["g"].parameters()), 1e-5)
           and _same(list(stu["d"].parameters()), list(ref["d"].parameters()), 1e-5),
           "the parameters after the epoch differ from one generator and one discriminator step per batch")
    losses = stu["losses"]
    expect(isinstance(losses, dict) and set(losses) == {"content", "adversarial", "generator", "discriminator"},
           'return a dict with keys "content", "adversarial", "generator", "discriminator"')
    for key, value in ref["losses"].items():
        got = float(losses[key])
        expect(abs(got - value) <= 1e-4 * max(1.0, abs(value)),
               f'the returned "{key}" loss {got:.6f} is not the mean of the batch values ({value:.6f})')


@check
def srgan_epoch(sub: Submission) -> None:
    solver = sub.solver()
    expect(hasattr(solver, "train_srgan_epoch"), "solver.py has no function train_srgan_epoch")
    g0, d0, vgg, batches = _srgan_setup()
    # VGG content loss with a non-default beta (a hard-coded 1e-3 is wrong), and the SRGAN-MSE variant
    for content_vgg, beta in ((vgg, 0.05), (None, 1e-3)):
        refs = [_run_srgan(_oracle_srgan_epoch, g0, d0, content_vgg, batches, False, order, beta)
                for order in ("G-first", "D-first")]
        stu = _run_srgan(solver.train_srgan_epoch, g0, d0, content_vgg, batches, True, beta=beta)
        _check_srgan_run(stu, refs, len(batches), content_vgg)


# ------------------------------------------------------------------------------------------------------------
# 04_test and 05_super_resolution: outputs recomputed from the submission's own checkpoints
# ------------------------------------------------------------------------------------------------------------
def _trained(sub: Submission, name: str):
    from sr_utils.checkpoint import CheckpointError, load_checkpoint

    path = sub.folder / "checkpoints" / name / "best.pth"
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        raise CheckFailed(f"{e}: run notebook 03_train first") from None
    cls = sub.cls("SRResNet" if name == "srresnet" else "Generator")
    net = _call(cls, **ckpt["model_kwargs"], what=f"building the {name} model of the checkpoint")
    _call(net.load_state_dict, ckpt["model"], what=f"loading checkpoints/{name}/best.pth")
    return net.eval()


@check
def test_table(sub: Submission) -> None:
    from sr_utils.evaluation import evaluate_split
    from sr_utils.inference import bicubic_upscale, super_resolve
    from sr_utils.lists import test_lists

    path = sub.folder / "results" / "test_table.csv"
    expect(path.is_file(), "results/test_table.csv is missing: run the table cell")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    expect(rows and {"set", "method", "psnr", "ssim"} <= set(rows[0]), "results/test_table.csv: unexpected columns")
    lists = test_lists(default_data_dir())
    upscalers = {"bicubic": lambda lr: bicubic_upscale(lr, 4)}
    for method, ckpt in (("SRResNet", "srresnet"), ("SRGAN", "srgan")):
        net = _trained(sub, ckpt)
        upscalers[method] = lambda lr, net=net: super_resolve(net, lr)
    seen = set()
    for row in rows:
        set_name, method = row["set"], row["method"]
        if set_name not in lists or method not in upscalers:
            continue
        from sr_utils.datasets import SREvalDataset

        if len(SREvalDataset(lists[set_name])) > 20:
            continue  # large sets are not recomputed here
        scores = evaluate_split(upscalers[method], lists[set_name], progress=False)
        psnr = sum(s["psnr"] for s in scores) / len(scores)
        ssim = sum(s["ssim"] for s in scores) / len(scores)
        expect(abs(float(row["psnr"]) - psnr) < 0.01 and abs(float(row["ssim"]) - ssim) < 1e-4,
               f"{set_name}/{method}: the table says {float(row['psnr']):.2f} dB / {float(row['ssim']):.4f}, "
               f"recomputed with the kit's convention: {psnr:.2f} dB / {ssim:.4f} (check evaluate())")
        seen.add(method)
    expect(seen == set(upscalers), f"rows missing for {sorted(set(upscalers) - seen)} on the test sets")


@check
def set5_submission(sub: Submission) -> None:
    from PIL import Image

    from sr_utils.datasets import SREvalDataset
    from sr_utils.inference import super_resolve
    from sr_utils.lists import human_eval_list

    dataset = SREvalDataset(human_eval_list(default_data_dir())[1])
    generator_net = _trained(sub, "srgan")
    for i in range(len(dataset)):
        name, lr, _ = dataset[i]
        path = sub.folder / "submission" / "set5" / f"{name}.png"
        expect(path.is_file(), f"submission/set5/{name}.png is missing")
        with Image.open(path) as im:
            got = np.asarray(im.convert("RGB"))
        want = super_resolve(generator_net, lr)
        expect(got.shape == want.shape, f"submission/set5/{name}.png is {got.shape}, expected {want.shape}")
        diff = int(_np_abs(got.astype(np.int16) - want.astype(np.int16)).max())
        expect(diff <= 1, f"submission/set5/{name}.png is not your SRGAN generator's output for that image "
                          f"(max difference {diff} levels)")


if __name__ == "__main__":
    sys.exit("run through run_check.py")
