import subprocess
import sys

import torch

from polyprune.adamw import FusedAdamW
from polyprune.objectives import lr_factor, weight_groups


def model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3), torch.nn.Linear(3, 3)
    )


def train(net, optimizer, after_step, steps=7):
    torch.manual_seed(1)
    for _ in range(steps):
        net[:3](torch.randn(5, 6)).pow(2).mean().backward()  # the last layer gets no gradient
        optimizer.step()
        after_step()
        optimizer.zero_grad()


def test_updates_as_torch_adamw_fused_with_lambda_schedule():
    schedule = lambda step: lr_factor(step, 2, 7)  # noqa: E731
    reference, ours = model(0), model(0)
    torch_adamw = torch.optim.AdamW(
        weight_groups(reference, 0.1), lr=0.01, betas=(0.9, 0.98), eps=1e-6, fused=True
    )
    lambda_lr = torch.optim.lr_scheduler.LambdaLR(torch_adamw, schedule)
    train(reference, torch_adamw, lambda_lr.step)
    fused = FusedAdamW(weight_groups(ours, 0.1), 0.01, schedule, betas=(0.9, 0.98), eps=1e-6)
    train(ours, fused, lambda: None)
    for (name, expected), actual in zip(reference.named_parameters(), ours.parameters()):
        assert torch.equal(expected, actual), name
    assert not torch.equal(model(0)[0].weight, ours[0].weight)  # it did train
    assert torch.equal(model(0)[3].weight, ours[3].weight)  # no gradient, no step


def test_fine_tuning_never_imports_torch_dynamo():
    # the point of FusedAdamW: torch.optim's optimizers import it (seconds per job)
    code = (
        "import sys, torch\n"
        "from polyprune.adamw import FusedAdamW\n"
        "net = torch.nn.Linear(2, 2)\n"
        "opt = FusedAdamW([{'params': net.parameters(), 'weight_decay': 0.0}], 0.1)\n"
        "net(torch.ones(1, 2)).sum().backward()\n"
        "torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)\n"
        "opt.step()\n"
        "assert 'torch._dynamo' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
