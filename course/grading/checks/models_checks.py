"""The hidden checks of 01_models: each class of the student's ``models.py`` is built on the student side, probed
(shapes, layers, behaviour on inputs drawn here) and finally recomputed here with the reference architecture holding
the same weights (:func:`.common.computes_reference`)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..recompute import agree
from ..student_client import Message, Student
from .common import (Remote, all_close, check, computes_reference, expect, expect_value_error, fresh_generator,
                     layer_attr, layers_used_once, param_name, tensor_answer, uniform)

NON_TENSOR = Message("a non-tensor")  # what an answer that should be a tensor's shape is, when it is none
ACTIVATIONS = ("PReLU", "LeakyReLU", "Tanh", "ReLU", "Sigmoid")


@check
def conv_block(student: Student, folder: Path) -> None:
    name, g = "ConvolutionalBlock", fresh_generator()
    x = uniform(g, 2, 3, 17, 16)
    for k in (3, 9):
        for stride in (1, 2):
            block = Remote.new(student, name, 3, 8, k, stride=stride, what=f"{name}(3, 8, {k}, stride={stride})")
            out = block.forward_all([x])["outs"][0]
            want = (2, 8, -(-17 // stride), -(-16 // stride))
            got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
            expect(got == want, "{name}(3, 8, kernel_size={k}, stride={stride}) maps (2, 3, 17, 16) to {got}, "
                                "expected {want}", name=name, k=k, stride=stride, got=got, want=want)
            convs = block.layers("Conv2d")
            expect(len(convs) == 1 and layer_attr(convs[0], "kernel_size") == (k, k)
                   and layer_attr(convs[0], "stride") == (stride, stride),
                   "{name} should hold one nn.Conv2d with kernel_size={k} and stride={stride}", name=name, k=k,
                   stride=stride)
    plain = Remote.new(student, name, 3, 8, 3, what=f"{name}(3, 8, 3)")
    expect(plain.count("BatchNorm2d") == 0, "batch_norm=False should add no batch-norm")
    expect(plain.count(*ACTIVATIONS) == 0, "activation=None should add no activation")
    outs = plain.forward_all([2 * x, torch.zeros_like(x), x])["outs"]
    y2, y0, y1 = (tensor_answer(o) for o in outs)
    expect(all_close(y2 - y0, 2 * (y1 - y0), 1e-5),
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
    slope = layer_attr(blocks["leakyrelu"].layers("LeakyReLU")[0], "negative_slope", -1.0)
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
                           inputs=[uniform(g, 2, 3, 17, 16) * 2 - 1], **options)


@check
def subpixel_block(student: Student, folder: Path) -> None:
    name, g = "SubPixelConvolutionalBlock", fresh_generator()
    for s in (2, 3):
        block = Remote.new(student, name, kernel_size=3, n_channels=8, scaling_factor=s, what=f"{name}(...)")
        out = block.forward_all([uniform(g, 2, 8, 10, 7)])["outs"][0]
        got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
        expect(got == (2, 8, 10 * s, 7 * s), "scaling_factor={s} maps (2, 8, 10, 7) to {got}, expected {want}",
               s=s, got=got, want=(2, 8, 10 * s, 7 * s))
        shuffles = block.layers("PixelShuffle")
        expect(len(shuffles) == 1 and layer_attr(shuffles[0], "upscale_factor") == s,
               "use one nn.PixelShuffle(scaling_factor)")
        convs = block.layers("Conv2d")
        expect(len(convs) == 1 and layer_attr(convs[0], "out_channels") == 8 * s * s
               and layer_attr(convs[0], "kernel_size") == (3, 3),
               "the convolution should make n_channels * scaling_factor**2 channels with the given kernel_size")
        expect(block.count("PReLU") == 1, "a sub-pixel block ends with one nn.PReLU")
        expect(block.n_params() == 8 * 8 * s * s * 9 + 8 * s * s + 1,
               "unexpected parameter count: conv (with bias) + a single-parameter PReLU")
        layers_used_once(block, uniform(g, 1, 8, 5, 4), what=name)
        block.set({p: ["fill", 0.0] for p in block.params_of("PReLU")})
        y = block(uniform(g, 2, 8, 10, 7) - 0.5)
        expect(y.min() >= 0, "the PReLU should be applied last, after the pixel shuffle")
    for s in (2, 3):
        computes_reference(student, name, kernel_size=3, n_channels=8, scaling_factor=s,
                           what=f"{name}(kernel_size=3, n_channels=8, scaling_factor={s})",
                           inputs=[uniform(g, 2, 8, 10, 7) * 2 - 1])


@check
def residual_block(student: Student, folder: Path) -> None:
    name, g = "ResidualBlock", fresh_generator()
    block = Remote.new(student, name, kernel_size=3, n_channels=8, what=f"{name}(kernel_size=3, n_channels=8)")
    x = uniform(g, 2, 8, 11, 9)
    out = block.forward_all([x])["outs"][0]
    got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
    expect(got == tuple(x.shape), "a residual block keeps the shape {shape}, got {got}", shape=tuple(x.shape),
           got=got)
    convs = block.layers("Conv2d")
    expect(len(convs) == 2 and all(layer_attr(c, "kernel_size") == (3, 3) for c in convs),
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
    expect(all_close(block(x), x, 1e-6), "the input should be added to the output (identity shortcut)")
    computes_reference(student, name, kernel_size=3, n_channels=8, what=f"{name}(kernel_size=3, n_channels=8)",
                       inputs=[torch.randn(2, 8, 11, 9, generator=g)])


def _zero_bn(remote: Remote) -> None:
    remote.set({p: ["fill", 0.0] for which in ("weight", "bias") for p in remote.params_of("BatchNorm2d", which)})


@check
def srresnet(student: Student, folder: Path) -> None:
    name, g = "SRResNet", fresh_generator()
    for scale in (2, 4, 8):
        net = Remote.new(student, name, n_channels=8, n_blocks=2, scaling_factor=scale,
                         what=f"SRResNet(scaling_factor={scale})").eval()
        for h, w in ((12, 10), (7, 9)):
            out = net.forward_all([uniform(g, 2, 3, h, w)])["outs"][0]
            want = (2, 3, scale * h, scale * w)
            got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
            expect(got == want, "SRResNet(scaling_factor={scale}) maps (2, 3, {h}, {w}) to {got}, expected {want}",
                   scale=scale, h=h, w=w, got=got, want=want)
        shuffles = net.layers("PixelShuffle")
        n_sub = int(math.log2(scale))
        expect(len(shuffles) == n_sub and all(layer_attr(m, "upscale_factor") == 2 for m in shuffles),
               "scaling_factor={scale} needs {n} sub-pixel blocks of factor 2", scale=scale, n=n_sub)
    expect_value_error(student, name, "scaling_factor=3", Message("only 2, 4, 8 are possible"), scaling_factor=3)
    full = Remote.new(student, name, what="SRResNet()")
    convs = full.layers("Conv2d")
    big = [c for c in convs if layer_attr(c, "kernel_size") == (9, 9)]
    expect(len(big) == 2
           and {(layer_attr(c, "in_channels"), layer_attr(c, "out_channels")) for c in big} == {(3, 64), (64, 3)},
           "SRResNet has two 9x9 convolutions: the first (3 -> 64) and the last (64 -> 3)")
    expect(all(layer_attr(c, "kernel_size") == (3, 3) for c in convs if c not in big), "all other convolutions are 3x3")
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
    layers_used_once(tiny, uniform(g, 1, 3, 8, 8), what=name)
    expect(tiny(uniform(g, 1, 3, 8, 8) * 1e3 - 500).abs().max() <= 1 + 1e-6,
           "the output should be squashed to [-1, 1] by a final tanh")
    _zero_bn(tiny)  # residual blocks become identities, the trunk's last block outputs 0
    a, b = (tensor_answer(o) for o in tiny.forward_all([uniform(g, 1, 3, 8, 8), uniform(g, 1, 3, 8, 8)])["outs"])
    expect(not all_close(a, b, 1e-7), "the output of the first block should be added after the residual trunk "
                                   "(long skip connection)")
    for scale in (2, 4):
        computes_reference(student, name, n_channels=8, n_blocks=2, scaling_factor=scale,
                           what=f"SRResNet(n_channels=8, n_blocks=2, scaling_factor={scale})",
                           inputs=[uniform(g, 2, 3, 12, 10)])


@check
def generator(student: Student, folder: Path) -> None:
    g = fresh_generator()
    x = uniform(g, 2, 3, 9, 7)
    srresnet = computes_reference(student, "SRResNet", n_channels=8, n_blocks=2,
                                  what="SRResNet(n_channels=8, n_blocks=2)", inputs=[x])
    gen = Remote.new(student, "Generator", n_channels=8, n_blocks=2, what="Generator(n_channels=8, n_blocks=2)")
    expect(gen.n_params() == sum(p.numel() for p in srresnet.reference.parameters()),
           "the Generator should be exactly an SRResNet (same parameters)")
    expect("initialize_with_srresnet" in gen.describe()["methods"],
           "Generator needs an initialize_with_srresnet(state_dict) method")
    gen.call("initialize_with_srresnet", srresnet.weights, what="initialize_with_srresnet")
    gen.eval()
    x = uniform(g, 2, 3, 9, 7)
    with torch.no_grad():
        want = srresnet.reference(x)
    expect(agree(gen.forward_all([x])["outs"][0], want),
           "after initialize_with_srresnet(sd) the generator should compute what the SRResNet computes")
    for scale in (2, 8):
        gs = Remote.new(student, "Generator", n_channels=8, n_blocks=1, scaling_factor=scale,
                        what=f"Generator(scaling_factor={scale})").eval()
        out = gs.forward_all([uniform(g, 1, 3, 5, 6)])["outs"][0]
        expect(torch.is_tensor(out) and tuple(out.shape) == (1, 3, 5 * scale, 6 * scale),
               "Generator(scaling_factor={scale}) should upscale by {scale}", scale=scale)
    computes_reference(student, "Generator", n_channels=8, n_blocks=2, what="Generator(n_channels=8, n_blocks=2)",
                       inputs=[uniform(g, 2, 3, 9, 7)])


def _dense_layers(remote: Remote) -> list[dict]:
    """The Linear layers, widest input first: the order forward uses them in, whatever order they were
    registered in."""
    return sorted(remote.layers("Linear"), key=lambda m: -(layer_attr(m, "in_features", 0) or 0))


@check
def discriminator(student: Student, folder: Path) -> None:
    name, g = "Discriminator", fresh_generator()
    full = Remote.new(student, name, what="Discriminator()")
    total = full.n_params()
    expect(total == 23_565_505, "Discriminator() should have 23,565,505 parameters, has {total:,}", total=total)
    convs = full.layers("Conv2d")
    expect(len(convs) == 8 and all(layer_attr(c, "kernel_size") == (3, 3) for c in convs),
           "8 convolutions with 3x3 kernels")
    expect([layer_attr(c, "stride")[0] for c in convs] == [1, 2] * 4,
           "strides should alternate 1, 2, 1, 2, ... (4 stride-2 blocks)")
    expect([layer_attr(c, "out_channels") for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512],
           "channels should be 64, 64, 128, 128, 256, 256, 512, 512")
    expect(full.count("BatchNorm2d") == 7, "batch-norm on every convolution block except the first")
    leaky = full.layers("LeakyReLU")
    expect(len(leaky) == 9 and all(abs(layer_attr(m, "negative_slope", -1.0) - 0.2) < 1e-9 for m in leaky),
           "LeakyReLU(0.2) after each of the 8 blocks and after the first dense layer")
    linears = _dense_layers(full)
    shapes = [(layer_attr(m, "in_features"), layer_attr(m, "out_features")) for m in linears]
    expect(shapes == [(512 * 36, 1024), (1024, 1)],
           "dense layers: Linear(512 * 6 * 6, fc_size) then Linear(fc_size, 1)")
    expect(full.count("Sigmoid") == 0, "return logits: no sigmoid inside the discriminator (BCEWithLogitsLoss)")
    full.eval()
    for h, w in ((96, 96), (128, 128), (96, 120)):
        out = full.forward_all([uniform(g, 2, 3, h, w) * 2 - 1])["outs"][0]
        got = tuple(out.shape) if torch.is_tensor(out) else NON_TENSOR
        expect(got == (2, 1), "a (2, 3, {h}, {w}) input should give logits (2, 1), got {got}", h=h, w=w, got=got)
    x = uniform(g, 2, 3, 96, 96) * 2 - 1
    before = full(x, (2, 1))
    full.set({param_name(_dense_layers(full)[-1], "bias"): ["add", 10.0]})
    after = full(x, (2, 1))
    expect(all_close(after - before, torch.full_like(before, 10.0), 1e-4),
           "the output should be the last dense layer's raw output (a logit), with nothing applied after it")
    tiny = Remote.new(student, name, n_channels=8, fc_size=16, what="Discriminator(n_channels=8, fc_size=16)").eval()
    layers_used_once(tiny, uniform(g, 1, 3, 96, 96), what=name)
    bns, lins = tiny.layers("BatchNorm2d"), _dense_layers(tiny)
    capture = [[m["path"], "input"] for m in bns] + [[bns[-1]["path"], "output"], [lins[0]["path"], "input"]]
    answer = tiny.forward_all([uniform(g, 2, 3, 160, 144) * 2 - 1], capture=capture)  # > 96: the pooling really pools
    seen = answer["captured"]
    bn_inputs = [t for path, what, t in seen if what == "input" and path != lins[0]["path"]]
    last_bn = [t for path, what, t in seen if what == "output" and path == bns[-1]["path"]]
    fc_inputs = [t for path, what, t in seen if what == "input" and path == lins[0]["path"]]
    expect(bn_inputs and tuple(bn_inputs[0].shape)[1:] == (8, 80, 72),
           "batch-norm belongs to blocks 2-8 (the first block has none)")
    expect(last_bn, "the last batch-norm is not used in forward")
    pooled = F.adaptive_avg_pool2d(F.leaky_relu(tensor_answer(last_bn[-1]), 0.2), (6, 6)).flatten(1)
    expect(fc_inputs and all_close(tensor_answer(fc_inputs[0]), pooled, 1e-5),
           "the first dense layer should get the flattened 6x6 adaptive *average* pool of the last block's output")
    l0w, l1w = (param_name(m, "weight") for m in lins[:2])
    l0b, l1b = (param_name(m, "bias") for m in lins[:2])
    tiny.set({l0w: ["fill", 0.0], l0b: ["fill", -1.0], l1w: ["fill", 1.0], l1b: ["fill", 0.0]})
    out = tiny(x, (2, 1))
    expect(all_close(out, torch.full_like(out, -0.2 * 16), 1e-4), "apply LeakyReLU(0.2) between the two dense layers")
    for h, w in ((96, 96), (160, 144)):
        computes_reference(student, name, n_channels=8, fc_size=16, what="Discriminator(n_channels=8, fc_size=16)",
                           inputs=[uniform(g, 2, 3, h, w) * 2 - 1])

