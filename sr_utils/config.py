"""A training run's settings: :class:`TrainConfig` (saved in every checkpoint) and the tested :data:`PROFILES`.

Profiles name tested settings per stage: ``paper`` (a GPU, hours), ``cpu-small`` (a laptop, minutes; beats bicubic
on the bundled photos) and ``grading`` (seconds: what nbgrader runs). Every field is checked by
:meth:`TrainConfig.check` before training starts, so a typo fails at once with the field's name and what it accepts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import torch

from .i18n import tr

__all__ = ["TrainConfig", "PROFILES", "CHOICES", "default_device", "default_profile"]

#: The accepted values of the fields that take a name.
CHOICES = {
    "stage": ("srresnet", "srgan"),
    "schedule": ("constant", "step", "multistep", "cosine", "cosine-restarts", "plateau"),
    "content": ("vgg54", "mse"),
    "pixel_loss": ("mse", "l1"),
    "amp_dtype": ("auto", "float16", "bfloat16"),
    "degradation": ("bicubic", "realistic"),
}


@dataclass
class TrainConfig:
    """Everything one training run needs (saved in every checkpoint)."""

    stage: str = "srresnet"  # "srresnet" or "srgan"
    data_dir: str = ""  # default: sr_utils.lists.default_data_dir()
    train_list: str = ""  # default: DIV2K train if prepared, else the bundled samples
    val_list: str = ""  # default: DIV2K valid if prepared, else the bundled photos held out of training
    scale: int = 4
    crop_size: int = 96
    batch_size: int = 16
    patches_per_image: int = 100
    channel_shuffle: bool = False  # random RGB permutation of the training pairs (see SRDataset)
    degradation: str = "bicubic"  # "realistic": LR made from HR by blur + noise + JPEG (another task, see degradation.py)
    workers: int = 2
    seed: int = 0
    n_channels: int = 64
    n_blocks: int = 16
    d_channels: int = 64
    fc_size: int = 1024
    iterations: int = 1_000_000
    lr: float = 1e-4
    lr_d: float = 0.0  # SRGAN discriminator's learning rate; 0 = the same as lr
    warmup: int = 0  # iterations of linear warm-up
    schedule: str = "step"  # see CHOICES and sr_utils.schedules
    decay_at: list = field(default_factory=list)  # fractions of `iterations` for step/multistep
    gamma: float = 0.1  # step/multistep/plateau: the learning rate is multiplied by gamma
    restart_every: int = 0  # cosine-restarts: iterations per cycle (0 = a quarter of the run)
    plateau_patience: int = 3  # plateau: validations without a better PSNR before the rate drops
    plateau_min_factor: float = 1e-3  # plateau: the rate never drops below lr x this
    grad_clip: float = 0.0  # max grad norm; 0 = off
    pixel_loss: str = "mse"  # "l1": the solver's epoch functions get pixel_loss="l1" (they must accept it)
    ema_decay: float = 0.0  # exponential moving average of the generator's weights (e.g. 0.999); 0 = off
    g_pretrain: int = 0  # SRGAN: first iterations train the generator alone with the pixel loss
    beta: float = 1e-3  # adversarial weight (SRGAN)
    content: str = "vgg54"  # "vgg54" or "mse" (SRGAN-MSE)
    vgg_scale: float = 1.0  # 1/12.75 in the paper
    val_every: int = 1000
    val_images: int = 5
    val_lpips: bool = False  # also LPIPS at each validation (needs lpips + AlexNet weights, sr_utils.lpips_metric)
    amp: bool = True  # mixed precision: CUDA (fp16 + GradScaler, or bf16), CPUs with native bf16
    amp_dtype: str = "auto"  # "float16" (with GradScaler, also on CPU), "bfloat16", "auto" (see sr_utils.amp)
    amp_init_scale: float = 65536.0  # GradScaler's first loss scale (PyTorch's default 2**16)
    channels_last: bool = True
    compile: bool = False
    srresnet_checkpoint: str = ""  # SRGAN: the pre-trained SRResNet (default <out>/../srresnet/best.pth); "none"
    note: str = ""  # free text shown in the runs listing and the report's table of attempts

    @classmethod
    def from_profile(cls, profile: str, stage: str, **overrides) -> "TrainConfig":
        """The settings of ``PROFILES[profile][stage]``, then ``overrides`` (field names are checked)."""
        if profile not in PROFILES:
            raise ValueError(tr("unknown profile {profile!r}: {known}", profile=profile, known=", ".join(PROFILES)))
        if stage not in PROFILES[profile]:
            raise ValueError(tr("unknown stage {stage!r}: srresnet or srgan", stage=stage))
        known = {f.name for f in fields(cls)}
        wrong = sorted(set(overrides) - known)
        if wrong:
            raise ValueError(tr("unknown setting(s) {wrong}; known: {known}", wrong=", ".join(wrong),
                                known=", ".join(sorted(known))))
        return cls(**{**PROFILES[profile][stage], "stage": stage, **overrides})

    def check(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first field with a value the trainer cannot use; return ``self``."""
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(tr("{name}={value!r}: use one of {allowed}", name=name, value=getattr(self, name),
                                    allowed=", ".join(allowed)))
        positive = ("scale", "crop_size", "batch_size", "patches_per_image", "iterations", "val_every", "val_images",
                    "n_channels", "n_blocks", "lr")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(tr("{name}={value!r}: must be > 0", name=name, value=getattr(self, name)))
        for name in ("lr_d", "warmup", "restart_every", "grad_clip", "g_pretrain", "beta", "workers"):
            if getattr(self, name) < 0:
                raise ValueError(tr("{name}={value!r}: must be >= 0", name=name, value=getattr(self, name)))
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(tr("ema_decay={value!r}: 0 (off) or a decay in (0, 1), e.g. 0.999", value=self.ema_decay))
        if not 0.0 < self.gamma <= 1.0 or not 0.0 < self.plateau_min_factor <= 1.0:
            raise ValueError(tr("gamma={gamma!r} and plateau_min_factor={factor!r}: in (0, 1]", gamma=self.gamma,
                                factor=self.plateau_min_factor))
        if self.plateau_patience < 1:
            raise ValueError(tr("plateau_patience={value!r}: at least 1 validation", value=self.plateau_patience))
        if self.amp_init_scale <= 0:
            raise ValueError(tr("{name}={value!r}: must be > 0", name="amp_init_scale", value=self.amp_init_scale))
        if self.g_pretrain and self.stage != "srgan":
            raise ValueError(tr("g_pretrain is for stage srgan (SRResNet training is already generator-only)"))
        if any(not 0.0 <= f <= 1.0 for f in self.decay_at):
            raise ValueError(tr("decay_at={value!r}: fractions of `iterations`, each in [0, 1]", value=self.decay_at))
        return self


# Tested settings, per profile and stage.
PROFILES = {
    # Ledig et al. 2017: SRResNet 1e6 iterations; SRGAN 2e5 iterations with lr x0.1 halfway.
    "paper": {"srresnet": dict(iterations=1_000_000, schedule="constant"),
              "srgan": dict(iterations=200_000, schedule="step", decay_at=[0.5])},
    # A laptop CPU: a smaller network on small crops, a few minutes. channel_shuffle: the bundled training split
    # (also what this profile is for) is colour-poor — most of its photos are grey, the others mostly dark or
    # reddish — so without it the model shifts the colours it never saw (the blue background of grace_hopper, the
    # sky of rocket): a large-scale error in Y, worse than bicubic's on those photos. Permuting RGB gives exact LR/HR
    # pairs in every hue (figures in benchmarks/README.md).
    "cpu-small": {"srresnet": dict(n_channels=32, n_blocks=6, crop_size=64, batch_size=16, iterations=4000, lr=1e-3,
                                   warmup=100, schedule="cosine", val_every=500, patches_per_image=200, workers=0,
                                   channel_shuffle=True),
                  "srgan": dict(n_channels=32, n_blocks=6, crop_size=96, batch_size=8, iterations=100, lr=5e-5,
                                schedule="step", decay_at=[0.5], val_every=50, d_channels=16, fc_size=128,
                                patches_per_image=200, workers=0, channel_shuffle=True)},
    # Under nbgrader (validate, autograde): just enough to show that the student's code trains, in seconds.
    "grading": {"srresnet": dict(n_channels=8, n_blocks=2, crop_size=48, batch_size=4, iterations=3, lr=1e-3,
                                 val_every=3, val_images=1, patches_per_image=1, workers=0, amp=False),
                "srgan": dict(n_channels=8, n_blocks=2, crop_size=48, batch_size=4, iterations=2, lr=1e-4,
                              val_every=2, val_images=1, d_channels=8, fc_size=16, patches_per_image=1, workers=0,
                              amp=False)},
}


def default_device():
    """``cuda`` when a GPU is present, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_profile() -> str:
    """``grading`` while nbgrader runs the notebook; else ``$SR_KIT_PROFILE`` when set (e.g. ``grading`` for a
    smoke run of the whole assignment in a minute); else ``paper`` on a GPU, ``cpu-small`` on a CPU."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return "grading"
    forced = os.environ.get("SR_KIT_PROFILE")
    if forced:
        if forced not in PROFILES:
            raise ValueError(tr("SR_KIT_PROFILE={value!r} is not a profile: use one of {known}", value=forced,
                                known=", ".join(PROFILES)))
        return forced
    return "paper" if torch.cuda.is_available() else "cpu-small"
