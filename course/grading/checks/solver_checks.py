"""The hidden checks of 02_solver: the student's epoch runs on the student side on the kit's networks
(:mod:`..training_fixtures`) with recording optimizers and scalers; oracles run the same epoch here, and every
gradient, parameter and returned loss is compared."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..student_client import CheckFailed, Message, Student
from ..training_fixtures import kit_discriminator, kit_upscaler, kit_vgg  # kit code, no student code
from .common import check, expect, fresh_generator, fresh_seed, uniform


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
    gradients at every step (``grads``) as ``training_fixtures.Recorder`` does for the student's optimizer.

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
    g = fresh_generator()
    torch.manual_seed(fresh_seed())
    state = kit_upscaler().state_dict()
    # HR of a different amplitude in each batch: batch losses far apart (~0.03, 0.12, 0.33), so that no other
    # batch's loss, nor any mix but the mean, comes within the tolerance of the mean by chance
    batches = [(uniform(g, 2, 3, 8, 8), (uniform(g, 2, 3, 32, 32) * 2 - 1) * amplitude) for amplitude in (0.3, 0.6, 1)]
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
    g = fresh_generator()
    torch.manual_seed(fresh_seed())
    setup = {"g": kit_upscaler().state_dict(), "d": kit_discriminator().state_dict(),
             "batches": [(uniform(g, 2, 3, 16, 16), uniform(g, 2, 3, 64, 64) * 2 - 1) for _ in range(2)]}
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

