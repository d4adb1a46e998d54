"""The training loop under torchrun (DDP, gloo) and DeepSpeed (CPU accelerator, ZeRO-2, bf16),
launched as the workflow launches it: `python -m torch.distributed.run --standalone
--nproc_per_node=2 -m polyprune.cli train ...`, on a tiny model, on CPU.

The data of an optimizer step does not depend on how it is split over processes (train.py:
global micro-batch index = micro x processes + rank), so one process with 2 micro-steps of 4 and
two processes with 1 micro-step of 4 each see the same 8 sequences per step with the same
dropout noise. What may differ:
- DDP: only the order of float sums of gradients (gloo all-reduce vs local accumulation). With two
  halves and a power-of-two divisor it is exact in practice; the test allows 1e-5 relative on the
  loss and 1e-5 absolute on the weights (float32 round-off amplified over 12 Adam steps).
- DeepSpeed bf16: forward and backward run in bf16 (8 significant bits, relative rounding 2^-9,
  about 0.2% per operation) on a bf16-rounded copy of the weights; the optimizer keeps fp32
  master weights. Allowed: 0.02 absolute on a loss of about 3.9 (0.5%; about 4e-4 seen), and the
  distance between the final weights and the fp32 run's at most 10% of the distance the fp32 run
  moved from the initial weights (about 2% seen).
Timing: the first DeepSpeed run JIT-builds a communication op into TORCH_EXTENSIONS_DIR (default
~/.cache/torch_extensions; 35 s to 3 minutes); later runs reuse it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import REPO, SETTINGS, assert_same_weights, tiny_world, train_command, weights

from polyprune.train import checkpoints

pytestmark = pytest.mark.slow
__all__ = ["tiny_world"]  # a fixture, imported for this module's tests

TRAINING = {
    **{k: v for k, v in SETTINGS.items() if k != "seed"},
    "steps": 12,
    "checkpoint_every": 3,
    "keep_checkpoints": 1,
}
DEEPSPEED = {
    **TRAINING,
    "precision": "bf16",
    "zero_stage": 2,
    "deepspeed_config": str(REPO / "config" / "deepspeed" / "bf16.json"),
}
ENV = {
    **os.environ,
    "PYTHONPATH": str(REPO / "src"),
    "DS_ACCELERATOR": "cpu",
    "TORCH_EXTENSIONS_DIR": os.environ.get(
        "TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions")
    ),
}
TIMEOUT = 600  # the first DeepSpeed run builds its communication op


def train(
    world, out: Path, training: dict, nproc: int, ckpt: Path | None = None, objective=None
) -> dict:
    """Run `polyprune train` to completion; the final model's log records and weights."""
    ckpt = ckpt or out.with_name(out.name + "-ckpt")
    cmd = train_command(world, out, ckpt, training, nproc, objective)
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    log = json.loads((out / "config.json").read_text())["log"]
    return {"log": log, "weights": weights(out), "stdout": done.stdout}


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc); torchrun starts its workers in new sessions, so
    killing its process group would leave them running."""
    tree = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in children:
            tree += process_tree(int(child))
    return tree


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; its parent may never reap it


def kill_after_first_checkpoint(world, out: Path, ckpt: Path, training: dict, nproc: int):
    """Start `polyprune train`, SIGKILL all its processes (workers first) once a checkpoint
    exists."""
    cmd = train_command(world, out, ckpt, training, nproc)
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while not checkpoints(ckpt) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victims = process_tree(proc.pid)
    for pid in reversed(victims):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    while any(alive(pid) for pid in victims):
        time.sleep(0.05)
    assert checkpoints(ckpt), "no checkpoint before the deadline"
    assert not out.exists(), "the run finished before it could be killed"


def resumed_at(stdout: str) -> int:
    lines = [line for line in stdout.splitlines() if line.startswith("resumed from")]
    assert lines, stdout
    return int(lines[0].rsplit(" ", 1)[-1])


def losses(run: dict) -> np.ndarray:
    return np.array([r["loss"] for r in run["log"]])


def update_mismatch(run: dict, reference: dict, init: dict) -> float:
    """|run - reference| / |reference - init| over all trained tensors."""
    keys = [k for k in init if not k.startswith("gate_table.")]
    diff = sum(((run["weights"][k] - reference["weights"][k]) ** 2).sum() for k in keys)
    moved = sum(((reference["weights"][k] - init[k]) ** 2).sum() for k in keys)
    return float((diff / moved).sqrt())


@pytest.fixture(scope="module")
def single(tiny_world, tmp_path_factory) -> dict:
    """The reference: one process, fp32, 2 micro-steps per optimizer step."""
    return train(tiny_world, tmp_path_factory.mktemp("single") / "out", TRAINING, nproc=1)


def test_ddp_matches_one_process(tiny_world, single, tmp_path):
    ddp = train(tiny_world, tmp_path / "out", TRAINING, nproc=2)
    assert [r["step"] for r in ddp["log"]] == [r["step"] for r in single["log"]]
    np.testing.assert_allclose(losses(ddp), losses(single), rtol=1e-5, atol=0)
    for k, v in single["weights"].items():
        torch.testing.assert_close(ddp["weights"][k], v, rtol=0, atol=1e-5)


def test_one_process_checkpoint_resumes_under_ddp(tiny_world, single, tmp_path):
    """Killed as one process, finished as two: the checkpoint holds the whole state, and the
    data of a step does not depend on the number of processes."""
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    kill_after_first_checkpoint(tiny_world, out, ckpt, TRAINING, nproc=1)
    run = train(tiny_world, out, TRAINING, nproc=2, ckpt=ckpt)
    assert 0 < resumed_at(run["stdout"]) < TRAINING["steps"]
    for k, v in single["weights"].items():
        torch.testing.assert_close(run["weights"][k], v, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def deepspeed_run(tiny_world, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("deepspeed") / "out"
    return train(tiny_world, out, DEEPSPEED, nproc=2)


def test_deepspeed_bf16_matches_fp32(tiny_world, single, deepspeed_run):
    ds = deepspeed_run
    assert [r["step"] for r in ds["log"]] == [r["step"] for r in single["log"]]
    assert [r["lr"] for r in ds["log"]] == pytest.approx([r["lr"] for r in single["log"]])
    np.testing.assert_allclose(losses(ds), losses(single), rtol=0, atol=0.02)
    init = weights(tiny_world["init"])
    assert update_mismatch(ds, single, init) < 0.1
    # the saved weights are DeepSpeed's fp32 master weights, not the bf16 working copy
    trained = [v for k, v in ds["weights"].items() if not k.startswith("gate_table.")]
    assert all(v.dtype == torch.float32 for v in trained)
    in_bf16 = sum(int((v.bfloat16().float() == v).sum()) for v in trained)
    assert in_bf16 < 0.2 * sum(v.numel() for v in trained)


def test_deepspeed_resume_is_exact(tiny_world, deepspeed_run, tmp_path):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    kill_after_first_checkpoint(tiny_world, out, ckpt, DEEPSPEED, nproc=2)
    run = train(tiny_world, out, DEEPSPEED, nproc=2, ckpt=ckpt)
    assert 0 < resumed_at(run["stdout"]) < DEEPSPEED["steps"]
    assert_same_weights(run["weights"], deepspeed_run["weights"])
    assert not ckpt.exists()  # a finished job's checkpoints cannot be mistaken for the next's


OBJECTIVES = {
    "l0": {
        "kind": "l0",
        "setting": "nonshared",
        "scope": "encoder",
        "component_weights": {},
        "l0": {"target_sparsity": 0.5, "diversity": 0.5, "alpha_only_steps": 2},
        "hard_concrete": {},
        "families": {"aa": "x", "bb": "y"},
    },
    "distil": {"kind": "distil", "distillation": {"temperature": 2, "alpha_ce": 5, "alpha_mlm": 2}},
}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objectives_train_alike_in_one_process_under_ddp_and_deepspeed(tiny_world, tmp_path, name):
    """L0 (gates sampled per global micro-batch) and distillation (a frozen teacher beside the
    student) under torchrun and DeepSpeed's CPU path: the same steps, the same losses within the
    tolerances of the plain MLM runs above."""
    objective = OBJECTIVES[name]
    one = train(tiny_world, tmp_path / "one", TRAINING, nproc=1, objective=objective)
    ddp = train(tiny_world, tmp_path / "ddp", TRAINING, nproc=2, objective=objective)
    np.testing.assert_allclose(losses(ddp), losses(one), rtol=1e-5, atol=0)
    for k, v in one["weights"].items():
        torch.testing.assert_close(ddp["weights"][k], v, rtol=0, atol=1e-5)
    ds = train(tiny_world, tmp_path / "ds", DEEPSPEED, nproc=2, objective=objective)
    np.testing.assert_allclose(losses(ds), losses(one), rtol=0, atol=0.05)
    assert ds["weights"].keys() == one["weights"].keys()
