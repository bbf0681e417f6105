"""The kit's one trainer: iteration-based SRResNet and SRGAN training with exact resume.

It trains whatever ``models`` and ``solver`` modules it is given — the student's (notebook 03, or
``python -m sr_utils train-srresnet --models models.py --solver solver.py``) or the instructor's reference
(``python -m course``). The student's epoch functions (``solver.train_srresnet_epoch``/``train_srgan_epoch``) do
every training step, on chunks of ``val_every`` batches; this module only drives them: data order (and, on
request, realistic degradation of the pairs), learning-rate schedule (:mod:`sr_utils.schedules`), gradient
clipping, the weight EMA, generator pre-training before SRGAN, validation on a split that is not a test set,
checkpoints (``last.pth``, ``best.pth``), logs (``log.csv``, ``curves.png``, TensorBoard), the run's record
(:mod:`sr_utils.experiments`), AMP (:mod:`sr_utils.amp`), channels_last, DDP.

Settings: :class:`~sr_utils.config.TrainConfig` and the tested :data:`PROFILES` (``paper``, ``cpu-small``,
``grading``), defined in :mod:`sr_utils.config` and re-exported here.

Exact resume: the data order is a pure function of (seed, epoch, position) (:class:`ResumableSampler` +
``SRDataset``'s counter-based crops), and a checkpoint holds the models, optimisers, schedulers, GradScalers,
step, data position and RNG states, written atomically. Stopping after N steps and resuming gives the same losses
and weights as an uninterrupted run (checked by the tests on CPU).
"""
from __future__ import annotations

import csv
import itertools
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .amp import amp_plan, autocast_dtype, cpu_has_bf16, make_scaler
from .checkpoint import load_checkpoint, save_checkpoint
from .config import PROFILES, TrainConfig, default_device, default_profile
from .i18n import tr
from .schedules import Plateau, lr_lambda

__all__ = ["TrainConfig", "PROFILES", "default_device", "default_profile", "ResumableSampler", "lr_lambda",
           "cpu_has_bf16", "train"]


class ResumableSampler(torch.utils.data.Sampler):
    """Shuffled indices, epoch by epoch, that can start mid-epoch: epoch ``e`` is ``randperm(n)`` seeded with
    ``seed + e``; with ``world_size`` > 1 each rank takes every ``world_size``-th index (DistributedSampler
    style, ``n`` rounded down to a multiple of ``world_size``). ``state()`` / ``set_state()`` are (epoch, offset)."""

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch, self.offset = 0, 0

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        perm = perm[: self.n - self.n % self.world_size]
        return perm[self.rank:: self.world_size].tolist()

    def __len__(self) -> int:
        return self.n // self.world_size - self.offset

    def __iter__(self):
        return iter(self._indices()[self.offset:])

    def state(self) -> tuple[int, int]:
        return self.epoch, self.offset

    def set_state(self, epoch: int, offset: int) -> None:
        self.epoch, self.offset = int(epoch), int(offset)


class _ScaledFeatures(torch.nn.Module):
    """VGG features times a constant (the paper's 1/12.75 rescaling of VGG54 features)."""

    def __init__(self, vgg, scale: float):
        super().__init__()
        self.vgg, self.scale = vgg, scale

    def forward(self, x):
        return self.vgg(x) * self.scale


def _rng_state() -> dict:
    """RNG states as tensors and plain numbers (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                       gauss], "python": [version, list(words), py_gauss]}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, words, py_gauss = state["python"]
    random.setstate((version, tuple(words), py_gauss))


def _batches(loader, sampler, dataset):
    """Endless batches; ``sampler.offset`` counts the samples consumed so far in the current epoch."""
    while True:
        dataset.set_epoch(sampler.epoch)
        for batch in loader:
            sampler.offset += batch[0].shape[0]
            yield batch
        sampler.set_state(sampler.epoch + 1, 0)


def _validate(model, list_file, device, n_images: int, lpips=None) -> dict:
    """``{"val_psnr"[, "val_ssim", "val_lpips"]}``: means over the first ``n_images`` of the validation split."""
    from .evaluation import evaluate_split, model_upscaler

    rows = evaluate_split(model_upscaler(model, device), list_file, progress=False, limit=n_images, lpips=lpips)
    out = {"val_psnr": float(np.mean([r["psnr"] for r in rows]))}
    if lpips is not None:
        out.update(val_ssim=float(np.mean([r["ssim"] for r in rows])), val_lpips=float(np.mean([r["lpips"] for r in rows])))
    return out


def _epoch_kwargs(fn, cfg: TrainConfig) -> dict:
    """Extra keywords for the student's epoch function: ``pixel_loss`` when it is not the default MSE."""
    import inspect

    if cfg.pixel_loss == "mse":
        return {}
    params = inspect.signature(fn).parameters
    if "pixel_loss" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ValueError(tr("pixel_loss={loss!r} needs your solver's {function} to take a pixel_loss argument: add "
                            "`pixel_loss=\"mse\"` to its parameters and use F.l1_loss when it is \"l1\" (notebook 02 "
                            "writes solver.py)", loss=cfg.pixel_loss, function=fn.__name__))
    return {"pixel_loss": cfg.pixel_loss}


def _degraded(chunk, cfg: TrainConfig, first_step: int):
    """The batches of ``chunk`` with LR remade from HR by :func:`sr_utils.degradation.degrade` (per iteration)."""
    from .degradation import batch_generator, degrade

    for i, (lr, hr) in enumerate(chunk):
        yield degrade(hr, cfg.scale, batch_generator(cfg.seed, first_step + i)), hr


def train(cfg: TrainConfig, out_dir, models, solver, resume: bool = False, stop_after: int | None = None,
          progress: bool = True, log=print) -> dict:
    """Train ``cfg.stage`` with ``models``'s networks and ``solver``'s epoch functions into ``out_dir``.

    Writes ``last.pth`` (everything needed to resume), ``best.pth`` (the best validation PSNR so far), ``log.csv``,
    ``curves.png`` and the run's record (:func:`sr_utils.experiments.record_run`: ``config.json``, the solver and
    models as used, TensorBoard event files in ``tb/``). Both checkpoints hold ``model`` (the generator's
    ``state_dict``; its moving average when ``ema_decay`` > 0), ``arch`` (``"SRResNet"`` or ``"Generator"``) and
    ``model_kwargs``: :func:`sr_utils.checkpoint.load_generator` rebuilds the network. SRGAN starts from
    ``cfg.srresnet_checkpoint`` (default ``<out_dir>/../srresnet/best.pth``; ``"none"``: from scratch).

    ``resume``: continue from ``out_dir/last.pth`` exactly. ``stop_after``: stop after that many steps in this
    call (for tests and time-boxed runs). Returns ``{"step", "best_val_psnr", "out_dir", "val_list", "val_split",
    "history", "amp"}``.
    """
    from tqdm.auto import tqdm

    from .datasets import SRDataset, _keep_batch
    from .experiments import record_run, tensorboard_writer
    from .lists import default_data_dir, split_name, train_list, validation_list

    cfg.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    device = default_device() if not distributed or not torch.cuda.is_available() else \
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    cuda = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    if cuda:
        torch.backends.cudnn.benchmark = True
    data_dir = Path(cfg.data_dir or default_data_dir())
    tlist = Path(cfg.train_list) if cfg.train_list else train_list(data_dir, cfg.scale)
    vlist = Path(cfg.val_list) if cfg.val_list else validation_list(data_dir, cfg.scale)
    val_split = split_name(vlist)

    dataset = SRDataset(tlist, crop_size=cfg.crop_size, patches_per_image=cfg.patches_per_image, seed=cfg.seed,
                        channel_shuffle=cfg.channel_shuffle)
    sampler = ResumableSampler(len(dataset), cfg.seed, rank, world)
    per_rank_batch = cfg.batch_size // world
    if per_rank_batch * world != cfg.batch_size:
        raise ValueError(tr("batch_size {batch_size} is not divisible by the {world} processes",
                            batch_size=cfg.batch_size, world=world))
    loader = torch.utils.data.DataLoader(dataset, batch_size=per_rank_batch, sampler=sampler, drop_last=True,
                                         num_workers=cfg.workers, collate_fn=_keep_batch, pin_memory=cuda)
    model_kwargs = dict(n_channels=cfg.n_channels, n_blocks=cfg.n_blocks, scaling_factor=cfg.scale)
    nets, optimizers = {}, {}
    arch = "SRResNet" if cfg.stage == "srresnet" else "Generator"
    if cfg.stage == "srresnet":
        nets["model"] = models.SRResNet(**model_kwargs)
    else:
        gen = models.Generator(**model_kwargs)
        init = Path(cfg.srresnet_checkpoint) if cfg.srresnet_checkpoint else out.parent / "srresnet" / "best.pth"
        if not resume and cfg.srresnet_checkpoint != "none":
            ck = load_checkpoint(init)
            gen.initialize_with_srresnet(ck["model"])
        nets["model"] = gen
        nets["discriminator"] = models.Discriminator(n_channels=cfg.d_channels, fc_size=cfg.fc_size)
    for name, net in nets.items():
        if distributed:  # BN statistics over the batch of all processes, as one process would compute them
            from .distributed import convert_sync_batchnorm

            nets[name] = net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) if cuda else convert_sync_batchnorm(net)
        net.to(device)
        if cfg.channels_last:  # faster convolutions with oneDNN (CPU) and cuDNN (tensor cores)
            net.to(memory_format=torch.channels_last)
        rate = cfg.lr_d if name == "discriminator" and cfg.lr_d > 0 else cfg.lr
        optimizers[name] = torch.optim.Adam(net.parameters(), lr=rate)
    plateau = Plateau(cfg.gamma, cfg.plateau_patience, cfg.plateau_min_factor) if cfg.schedule == "plateau" else None
    schedulers = {n: torch.optim.lr_scheduler.LambdaLR(o, lr_lambda(cfg, plateau)) for n, o in optimizers.items()}
    amp = amp_plan(cfg.amp, cfg.amp_dtype, device)
    scalers = {n: make_scaler(amp, device, cfg.amp_init_scale) for n in nets}
    ema = None
    if cfg.ema_decay > 0:
        from .ema import WeightEMA

        ema = WeightEMA(nets["model"], cfg.ema_decay)
    taken = {n: 0 for n in nets}  # optimiser steps really taken (a GradScaler skips those that overflow)

    def after_step(name):
        schedulers[name].step()
        taken[name] += 1
        if ema is not None and name == "model":
            ema.update(nets["model"])

    for name, opt in optimizers.items():  # per optimiser step: clip before; schedule, count, average after
        if cfg.grad_clip > 0:
            params = list(nets[name].parameters())
            opt.register_step_pre_hook(lambda o, a, k, p=params: torch.nn.utils.clip_grad_norm_(p, cfg.grad_clip))
        opt.register_step_post_hook(lambda o, a, k, n=name: after_step(n))
    train_nets = {n: torch.nn.parallel.DistributedDataParallel(net) if distributed else net
                  for n, net in nets.items()}
    if cfg.compile:
        train_nets = {n: torch.compile(net) for n, net in train_nets.items()}

    vgg = None
    if cfg.stage == "srgan" and cfg.content == "vgg54":
        from .vgg import TruncatedVGG19, find_vgg19_weights

        if find_vgg19_weights() is None:
            raise FileNotFoundError(tr(
                "VGG54 content loss needs the ImageNet VGG19 weights, which are not on this machine (see "
                "sr_utils.vgg for where to put vgg19-dcbb9e9d.pth). Use content=mse for the paper's SRGAN-MSE "
                "variant (pixel content loss + adversarial) instead; random VGG features are never used."))
        vgg = TruncatedVGG19(5, 4, weights="imagenet").to(device)
        if cfg.vgg_scale != 1.0:
            vgg = _ScaledFeatures(vgg, cfg.vgg_scale)

    step, best, history = 0, -math.inf, []
    if resume:
        ck = load_checkpoint(out / "last.pth")
        for n in nets:
            nets[n].load_state_dict(ck["nets"][n])
            optimizers[n].load_state_dict(ck["optimizers"][n])
            schedulers[n].load_state_dict(ck["schedulers"][n])
            if scalers[n] is not None and ck["scalers"].get(n):
                scalers[n].load_state_dict(ck["scalers"][n])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        if plateau is not None:
            plateau.load_state_dict(ck["plateau"])
        step, best, history = ck["step"], ck["best"], ck["history"]
        sampler.set_state(*ck["sampler"])
        _set_rng_state(ck["rng"])
        log(tr("resumed {stage} at step {step} from {path}", stage=cfg.stage, step=step, path=out / "last.pth"))
    selected = ema.module if ema is not None else nets["model"]  # what is validated and saved as `model`

    def save(path):
        save_checkpoint(path, model=selected.state_dict(), arch=arch, model_kwargs=model_kwargs,
                        nets={n: m.state_dict() for n, m in nets.items()},
                        optimizers={n: o.state_dict() for n, o in optimizers.items()},
                        schedulers={n: s.state_dict() for n, s in schedulers.items()},
                        scalers={n: (s.state_dict() if s is not None else {}) for n, s in scalers.items()},
                        ema=ema.state_dict() if ema is not None else {},
                        plateau=plateau.state_dict() if plateau is not None else {},
                        step=step, best=best, history=history, sampler=list(sampler.state()), rng=_rng_state(),
                        config=asdict(cfg), val_list=str(vlist), val_split=val_split)

    lpips = None
    if cfg.val_lpips and rank == 0:  # fails here, before training, when the package or the weights are missing
        from .lpips_metric import LPIPSMetric

        lpips = LPIPSMetric(device=device)
    writer = None
    if rank == 0:
        record_run(out, cfg, models, solver, amp=amp.name, val_split=val_split)
        writer = tensorboard_writer(out, purge_step=step if resume else None)
    batch_iter = _batches(loader, sampler, dataset)
    end = cfg.iterations if stop_after is None else min(cfg.iterations, step + stop_after)
    bar = tqdm(total=end, initial=step, desc=cfg.stage, unit="it", disable=not progress or rank != 0)
    with autocast_dtype(device.type, amp.dtype):
        while step < end:
            n = min(cfg.val_every - step % cfg.val_every, end - step)
            pretraining = step < cfg.g_pretrain  # SRGAN: the generator alone, on the pixel loss, first
            if pretraining:
                n = min(n, cfg.g_pretrain - step)
            chunk = itertools.islice(batch_iter, n)
            if cfg.degradation == "realistic":
                chunk = _degraded(chunk, cfg, step)
            t0, before = time.perf_counter(), dict(taken)
            if cfg.stage == "srresnet" or pretraining:
                fn = solver.train_srresnet_epoch
                losses = {cfg.pixel_loss: fn(train_nets["model"], chunk, optimizers["model"], device,
                                             amp=amp.enabled, scaler=scalers["model"], **_epoch_kwargs(fn, cfg))}
            else:
                fn = solver.train_srgan_epoch
                losses = fn(train_nets["model"], train_nets["discriminator"], vgg, chunk, optimizers["model"],
                            optimizers["discriminator"], device, beta=cfg.beta, amp=amp.enabled,
                            scaler_g=scalers["model"], scaler_d=scalers["discriminator"], **_epoch_kwargs(fn, cfg))
            step += n
            bar.update(n)
            row = {"step": step, **{k: float(v) for k, v in losses.items()},
                   "lr": optimizers["model"].param_groups[0]["lr"], "sec_per_it": (time.perf_counter() - t0) / n}
            if scalers["model"] is not None:
                row["amp_skipped"] = n - (taken["model"] - before["model"])
                row["amp_scale"] = float(scalers["model"].get_scale())
            if rank == 0 and (step % cfg.val_every == 0 or step == cfg.iterations):
                row.update(_validate(selected, vlist, device, cfg.val_images, lpips))
                if plateau is not None and plateau.update(row["val_psnr"]):
                    log(tr("validation PSNR has not improved for {patience} validations: learning rate x{gamma}",
                           patience=cfg.plateau_patience, gamma=cfg.gamma))
                if row["val_psnr"] > best:
                    best = row["val_psnr"]
                    save(out / "best.pth")
            history.append(row)
            bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("step", "sec_per_it")})
            if rank == 0:
                save(out / "last.pth")
                _write_log(out / "log.csv", history)
                if writer is not None:
                    for key, value in row.items():
                        if key != "step" and math.isfinite(value):
                            writer.add_scalar(key if key.startswith("val_") else f"train/{key}", value, step)
                    writer.flush()
    bar.close()
    if writer is not None:
        writer.close()
    if rank == 0 and history:
        from .plotting import plot_training

        plot_training(history, title=cfg.stage, path=out / "curves.png")
    return {"step": step, "best_val_psnr": best, "out_dir": str(out), "val_list": str(vlist),
            "val_split": val_split, "history": history, "amp": amp.name}


def _write_log(path: Path, history: list[dict]) -> None:
    import io

    from .files import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in history for k in row)), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(path, buf.getvalue().encode())
