"""Multi-process training helpers: batch-norm synchronised across processes on the CPU (gloo) as on CUDA.

``torch.nn.SyncBatchNorm`` only runs on CUDA. Without synchronisation each process normalises with the
statistics of its own slice of the batch, so N processes do not train like one process on the whole batch.
:class:`CPUSyncBatchNorm` all-reduces the per-channel sums (autograd-aware, so gradients flow across processes
through the statistics exactly as in a single process), which makes DDP on CPUs equivalent to one process on the
concatenated batch (checked by the tests with 2 gloo processes).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["CPUSyncBatchNorm", "convert_sync_batchnorm"]


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch of all processes of the default group."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not self.training or not (dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        local = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)),
                           x.new_tensor([x.numel() / c])])
        total = all_reduce(local)  # sum over processes, differentiable
        n = total[-1]
        mean = total[:c] / n
        var = total[c:2 * c] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``module`` (in place) by a :class:`CPUSyncBatchNorm` with the same state."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            sync.train(child.training)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module
