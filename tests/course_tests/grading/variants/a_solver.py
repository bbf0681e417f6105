"""Variant A: no helper functions, running sums, VGG called once on the concatenated SR and HR batch."""
import torch
import torch.nn.functional as F

from sr_utils.color import convert_image


def train_srresnet_epoch(model, loader, optimizer, device, amp=False, scaler=None):
    model.train()
    total, n = 0.0, 0
    for n, (lr, hr) in enumerate(loader, start=1):
        lr = lr.to(device, non_blocking=True)
        hr = hr.to(device, non_blocking=True)
        optimizer.zero_grad()
        with torch.autocast(device_type=device.type, enabled=amp):
            sr = model(lr)
        loss = F.mse_loss(sr.float(), hr, reduction="mean")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total += float(loss.detach())
    return total / max(n, 1)


def train_srgan_epoch(generator, discriminator, truncated_vgg, loader, optimizer_g, optimizer_d, device,
                      beta=1e-3, amp=False, scaler_g=None, scaler_d=None):
    generator.train()
    discriminator.train()
    sums = dict.fromkeys(("content", "adversarial", "generator", "discriminator"), 0.0)
    n = 0
    for lr, hr in loader:
        lr, hr = lr.to(device), hr.to(device)
        sr = generator(lr)
        # --- generator
        if truncated_vgg is not None:
            both = convert_image(torch.cat([sr, hr], dim=0), "[-1, 1]", "imagenet-norm")
            feat_sr, feat_hr = truncated_vgg(both).split(sr.shape[0], dim=0)
            content_loss = F.mse_loss(feat_sr, feat_hr.detach())
        else:
            content_loss = F.mse_loss(sr, hr)
        fake_score = discriminator(sr)
        adv_loss = F.binary_cross_entropy_with_logits(fake_score, torch.full_like(fake_score, 1.0))
        gen_loss = content_loss + beta * adv_loss
        optimizer_g.zero_grad()
        if scaler_g is not None:
            scaler_g.scale(gen_loss).backward()
            scaler_g.step(optimizer_g)
            scaler_g.update()
        else:
            gen_loss.backward()
            optimizer_g.step()
        # --- discriminator
        optimizer_d.zero_grad()
        real_score = discriminator(hr)
        fake_score = discriminator(sr.detach())
        dis_loss = F.binary_cross_entropy_with_logits(real_score, torch.full_like(real_score, 1.0)) + \
            F.binary_cross_entropy_with_logits(fake_score, torch.full_like(fake_score, 0.0))
        if scaler_d is not None:
            scaler_d.scale(dis_loss).backward()
            scaler_d.step(optimizer_d)
            scaler_d.update()
        else:
            dis_loss.backward()
            optimizer_d.step()

        n += 1
        sums["content"] += content_loss.item()
        sums["adversarial"] += adv_loss.item()
        sums["generator"] += gen_loss.item()
        sums["discriminator"] += dis_loss.item()
    return {k: v / n for k, v in sums.items()}
