"""Variant B: module.zero_grad(), losses written out by hand (softplus form of BCE-with-logits), torch.stack means."""
import torch
import torch.nn.functional as F

from sr_utils.color import convert_image


def _to_vgg(x):
    return convert_image(x, "[-1, 1]", "imagenet-norm")


def train_srresnet_epoch(model, loader, optimizer, device, amp=False, scaler=None):
    model.train()
    batch_losses = []
    for batch in loader:
        lr, hr = (t.to(device) for t in batch)
        sr = model(lr)
        loss = ((sr - hr) ** 2).mean()
        model.zero_grad()
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        batch_losses.append(loss.detach())
    return torch.stack(batch_losses).mean().item()


def _apply(loss, optimizer, scaler):
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def train_srgan_epoch(generator, discriminator, truncated_vgg, loader, optimizer_g, optimizer_d, device,
                      beta=1e-3, amp=False, scaler_g=None, scaler_d=None):
    generator.train()
    discriminator.train()
    rows = []
    for lr, hr in loader:
        lr, hr = lr.to(device), hr.to(device)
        sr = generator(lr)

        if truncated_vgg is None:
            content = ((sr - hr) ** 2).mean()
        else:
            with torch.no_grad():
                target = truncated_vgg(_to_vgg(hr))
            content = ((truncated_vgg(_to_vgg(sr)) - target) ** 2).mean()
        adversarial = F.softplus(-discriminator(sr)).mean()  # = BCE-with-logits against 1
        g_total = content + adversarial * beta
        generator.zero_grad()
        _apply(g_total, optimizer_g, scaler_g)

        discriminator.zero_grad()
        d_total = F.softplus(-discriminator(hr)).mean() + F.softplus(discriminator(sr.detach())).mean()
        _apply(d_total, optimizer_d, scaler_d)

        rows.append(torch.stack([content.detach(), adversarial.detach(), g_total.detach(), d_total.detach()]))
    means = torch.stack(rows).mean(dim=0).tolist()
    return dict(zip(("content", "adversarial", "generator", "discriminator"), means))
