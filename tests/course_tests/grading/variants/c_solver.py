"""Variant C: discriminator step BEFORE the generator step, loss-module instances, (a - b).pow(2).mean(),
ImageNet normalisation written out, losses kept in a list."""
import statistics

import torch
from torch import nn

from sr_utils.color import IMAGENET_MEAN, IMAGENET_STD

_bce = nn.BCEWithLogitsLoss()
_mse = nn.MSELoss()


def _imagenet(x):
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x.clamp(-1, 1) + 1) / 2 - mean) / std


def train_srresnet_epoch(model, loader, optimizer, device, amp=False, scaler=None):
    model.train()
    history = []
    for lr, hr in loader:
        sr = model(lr.to(device))
        loss = _mse(sr, hr.to(device))
        optimizer.zero_grad(set_to_none=False)
        (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        history.append(loss.item())
    return statistics.fmean(history)


def train_srgan_epoch(generator, discriminator, truncated_vgg, loader, optimizer_g, optimizer_d, device,
                      beta=1e-3, amp=False, scaler_g=None, scaler_d=None):
    generator.train()
    discriminator.train()
    history = []
    for lr, hr in loader:
        lr, hr = lr.to(device), hr.to(device)
        sr = generator(lr)

        # 1. discriminator: real -> 1, fake -> 0, on a detached SR
        real_logit = discriminator(hr)
        fake_logit = discriminator(sr.detach())
        loss_d = _bce(real_logit, torch.ones_like(real_logit)) + _bce(fake_logit, torch.zeros_like(fake_logit))
        optimizer_d.zero_grad()
        for_d = scaler_d.scale(loss_d) if scaler_d else loss_d
        for_d.backward()
        (scaler_d or optimizer_d).step(*([optimizer_d] if scaler_d else []))
        if scaler_d:
            scaler_d.update()

        # 2. generator, judged by the freshly updated discriminator
        if truncated_vgg is not None:
            loss_content = (truncated_vgg(_imagenet(sr)) - truncated_vgg(_imagenet(hr)).detach()).pow(2).mean()
        else:
            loss_content = (sr - hr).pow(2).mean()
        judged = discriminator(sr)
        loss_adv = _bce(judged, torch.ones_like(judged))
        loss_g = loss_content + beta * loss_adv
        optimizer_g.zero_grad()
        for_g = scaler_g.scale(loss_g) if scaler_g else loss_g
        for_g.backward()
        (scaler_g or optimizer_g).step(*([optimizer_g] if scaler_g else []))
        if scaler_g:
            scaler_g.update()

        history.append((loss_content.item(), loss_adv.item(), loss_g.item(), loss_d.item()))
    columns = list(zip(*history))
    return {key: sum(col) / len(col)
            for key, col in zip(("content", "adversarial", "generator", "discriminator"), columns)}
