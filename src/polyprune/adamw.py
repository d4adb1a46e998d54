"""AdamW for the many short fine-tuning jobs, without torch.optim.

Constructing any torch.optim optimizer imports torch._dynamo: about 2 s of a job on the demo's
CPUs, paid by each of the demo's hundred-odd fine-tuning jobs. `FusedAdamW` runs the kernel that
`torch.optim.AdamW(fused=True)` runs, on the same state, so the two update weights identically
(tests/test_adamw.py); it sets each step's learning rate from a schedule itself, as
`torch.optim.lr_scheduler.LambdaLR` would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class FusedAdamW:
    """AdamW (decoupled weight decay, bias correction) over `groups` of parameters, each a dict
    with "params" and "weight_decay". Step k (from 0) uses the learning rate
    `lr * schedule(k)`. CPU and CUDA tensors of one dtype per group (the fused kernel's)."""

    def __init__(
        self,
        groups: list[dict],
        lr: float,
        schedule: Callable[[int], float] = lambda step: 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.lr, self.schedule, self.betas, self.eps = lr, schedule, betas, eps
        self.steps = 0
        self.groups = [
            self._state(list(group["params"]), group["weight_decay"]) for group in groups
        ]

    @staticmethod
    def _state(params: list[torch.Tensor], weight_decay: float) -> dict:
        return {
            "params": params,
            "weight_decay": weight_decay,
            "exp_avg": [torch.zeros_like(p) for p in params],
            "exp_avg_sq": [torch.zeros_like(p) for p in params],
            # the kernel's step counters: float32 on the parameter's device
            "step": [torch.zeros((), device=p.device) for p in params],
        }

    @torch.no_grad()
    def step(self) -> None:
        lr = self.lr * self.schedule(self.steps)
        for group in self.groups:
            have_grad = [i for i, p in enumerate(group["params"]) if p.grad is not None]
            if not have_grad:
                continue
            params = [group["params"][i] for i in have_grad]
            steps = [group["step"][i] for i in have_grad]
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(
                params,
                [p.grad for p in params],
                [group["exp_avg"][i] for i in have_grad],
                [group["exp_avg_sq"][i] for i in have_grad],
                [],
                steps,
                amsgrad=False,
                lr=lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=group["weight_decay"],
                eps=self.eps,
                maximize=False,
            )
        self.steps += 1

    def zero_grad(self) -> None:
        for group in self.groups:
            for p in group["params"]:
                p.grad = None
