"""One MLM training loop for every cell: one CPU process, torchrun/DDP, or DeepSpeed.

Exact resume: the data of an optimizer step and its dropout noise are pure functions of (seed,
step, global micro-batch index), and checkpoints hold the model, optimizer, scheduler and
loss-scaler state, so a run killed after a checkpoint and started again ends with the same
weights as an uninterrupted one. The global micro-batch index is `micro * processes + rank`, so
an optimizer step sees the same sequences however it is split over processes and accumulation
(1 process x 2 micro-steps == 2 processes x 1, up to the order of float sums).

Checkpoints are directories `ckpt_dir/step-XXXXXXXX/`, written under a hidden temporary name and
renamed into place; their meta.json (written last) records the size of every file, so that a
truncated or incomplete checkpoint is reported (CheckpointError, naming the file) rather than
resumed from. All processes must see `ckpt_dir` (a shared file system on several nodes).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from polyprune.data import ShardSet
from polyprune.errors import CheckpointError, ConfigError
from polyprune.io import atomic_dir
from polyprune.model import MaskedLM

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
CHECKPOINT = re.compile(r"step-\d{8}")
LOAD_ERRORS = (OSError, RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError)


@dataclass
class TrainSettings:
    steps: int
    batch_size: int  # sequences per optimizer step, all processes together
    micro_batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.98)
    adam_eps: float = 1e-6
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    precision: str = "fp32"
    zero_stage: int | None = None  # None: no DeepSpeed
    deepspeed_config: str | None = None  # a JSON file from config/deepspeed/
    log_every: int = 10
    time_limit_margin: int = 0  # seconds before the Slurm allocation ends: checkpoint and stop
    seed: int = 0

    def __post_init__(self):
        self.adam_betas = tuple(self.adam_betas)

    def fingerprint(self) -> dict:
        """The settings a checkpoint must agree with to be resumed (not logging/checkpointing)."""
        keep = asdict(self)
        for volatile in ("checkpoint_every", "keep_checkpoints", "log_every", "time_limit_margin"):
            keep.pop(volatile)
        keep["adam_betas"] = list(keep["adam_betas"])
        return keep


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(deepspeed: bool = False) -> Dist:
    """torchrun / the DeepSpeed launcher set WORLD_SIZE, RANK and LOCAL_RANK; without them this
    is one process. NCCL on GPUs, gloo on CPUs. DeepSpeed always wants a process group (of one
    process if need be) and its own communication layer set up over it."""
    if deepspeed:
        for key, value in [("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")]:
            os.environ.setdefault(key, value)
        if "MASTER_ADDR" not in os.environ:
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank, local_rank = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = "nccl" if cuda else "gloo"
    if deepspeed:
        import deepspeed as ds

        ds.init_distributed(dist_backend=backend)
    elif world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    return Dist(rank, world, local_rank, device)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def close_distributed() -> None:
    """Wait for every process, then take the process group down; a process that exits with it
    up may abort in its communication threads' destructors ("terminate called without an
    active exception") while another process is still saving."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def optimizer_groups(objective, s: TrainSettings) -> tuple[list[dict], list]:
    """The objective's parameter groups for the optimizer, and their schedules (LambdaLR
    factors), which do not go into the optimizer's state."""
    groups = objective.param_groups(s)
    schedules = [g["schedule"] for g in groups]
    return [{k: v for k, v in g.items() if k != "schedule"} for g in groups], schedules


# ---- checkpoints ------------------------------------------------------------------------------


def checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. Temporary directories (`.step-XXXXXXXX.tmp-*`) of a
    save that did not finish never match."""
    return sorted(p for p in ckpt_dir.glob("step-*") if CHECKPOINT.fullmatch(p.name) and p.is_dir())


def write_meta(directory: Path, step: int, s: TrainSettings, job: str, world: int) -> None:
    """meta.json, the last file of a checkpoint: step, settings, job digest, every file's size."""
    files = {
        str(f.relative_to(directory)): f.stat().st_size
        for f in sorted(directory.rglob("*"))
        if f.is_file()
    }
    meta = {"step": step, "settings": s.fingerprint(), "job": job, "world": world, "files": files}
    (directory / "meta.json").write_text(json.dumps(meta, indent=1))


def read_meta(path: Path) -> dict:
    """A checkpoint's meta.json, after checking that every file it lists has its size."""
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        files, meta["step"] = dict(meta["files"]), int(meta["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"{meta_path}: unreadable checkpoint metadata ({e!r}); {_advice(path)}"
        ) from e
    for name, size in files.items():
        f = path / name
        found = f.stat().st_size if f.is_file() else None
        if found != size:
            what = "missing" if found is None else f"{found} bytes"
            raise CheckpointError(
                f"{f}: {what}, meta.json says {size} bytes (truncated or incomplete checkpoint); "
                + _advice(path)
            )
    return meta


def _advice(path: Path) -> str:
    return f"delete {path} to resume from an earlier checkpoint (or its folder to start over)"


class ResumeError(CheckpointError):
    pass


def job_digest(s: TrainSettings, inputs: dict) -> str:
    """What a training job is: its settings and everything else it reads (`inputs`: digests of
    the init model with its gates, tokenizer and shards, the data settings). A checkpoint is
    resumed only by the job with the same digest."""
    from polyprune.provenance import config_digest

    return config_digest({"settings": s.fingerprint(), "inputs": inputs})


# ---- engines ----------------------------------------------------------------------------------


def check_machine(s: TrainSettings) -> None:
    """What only the machine a job runs on can tell (a login node may lack what the job has)."""
    if s.zero_stage is not None and find_spec("deepspeed") is None:
        raise ConfigError(
            f"config key zero_stage: {s.zero_stage} needs the deepspeed package, which this job's "
            "Python lacks (pip install '.[deepspeed]'; or zero_stage: null)"
        )
    if s.precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError(
            "config key precision: fp16 needs a CUDA GPU and this job has none (bf16 or fp32 run "
            "on CPUs)"
        )


class TorchEngine:
    """AdamW + linear schedule; DDP when there are several processes; autocast for fp16/bf16
    (fp32 master weights), with a loss scaler for fp16."""

    def __init__(self, objective, s: TrainSettings, job: str, dist: Dist, accum: int):
        self.objective, self.s, self.dist, self.accum = objective.to(dist.device), s, dist, accum
        self.job = job
        self.net = objective
        if dist.world > 1:
            ids = [dist.device.index] if dist.device.type == "cuda" else None
            # gate tables are constant buffers: nothing to broadcast
            self.net = torch.nn.parallel.DistributedDataParallel(
                objective, device_ids=ids, broadcast_buffers=False
            )
        groups, schedules = optimizer_groups(objective, s)
        self.opt = torch.optim.AdamW(groups, lr=s.lr, betas=s.adam_betas, eps=s.adam_eps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedules)
        self.dtype = PRECISIONS[s.precision]
        self.scaler = torch.amp.GradScaler(dist.device.type, enabled=s.precision == "fp16")

    def micro_step(self, inputs, labels, lang: str, last: bool) -> tuple[float, dict]:
        sync = nullcontext() if last or self.dist.world == 1 else self.net.no_sync()
        autocast = torch.autocast(self.dist.device.type, self.dtype, enabled=self.dtype is not None)
        with sync:
            with autocast:
                loss, parts = self.net(inputs, labels, lang)
            self.scaler.scale(loss / self.accum).backward()
        return loss.item(), parts

    def optimizer_step(self) -> None:
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.s.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()

    def lr(self) -> float:
        return self.sched.get_last_lr()[0]

    def save(self, path: Path, step: int) -> None:
        if not self.dist.main:
            return
        from safetensors.torch import save_file

        with atomic_dir(path) as tmp:
            state = self.objective.state_dict()
            weights = {k: v.detach().cpu().contiguous() for k, v in state.items()}
            save_file(weights, str(tmp / "model.safetensors"))
            state = {
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(),
            }
            torch.save(state, tmp / "state.pt")
            write_meta(tmp, step, self.s, self.job, self.dist.world)

    def load(self, path: Path, meta: dict) -> None:
        from safetensors.torch import load_file

        f = path / "model.safetensors"
        try:
            self.objective.load_state_dict(load_file(str(f)))
            f = path / "state.pt"
            state = torch.load(f, map_location=self.dist.device, weights_only=True)
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except LOAD_ERRORS as e:
            raise CheckpointError(f"{f}: unreadable or mismatched ({e!r}); {_advice(path)}") from e

    def finish(self) -> None:
        pass  # the model holds the fp32 weights already


class DeepSpeedEngine:
    """DeepSpeed with the repository's config file (fp16 / bf16 options, ZeRO options) and the
    ZeRO stage of the settings; batch sizes, optimizer, clipping and precision come from the
    TrainSettings, the learning-rate schedule is the same LambdaLR as TorchEngine's."""

    def __init__(self, objective, s: TrainSettings, job: str, dist: Dist, accum: int):
        import deepspeed

        self.objective, self.s, self.job, self.dist = objective, s, job, dist
        if s.precision != "fp32":  # DeepSpeed casts the parameters only; the gate tables too
            for module in objective.half_precision_modules():
                module.to(PRECISIONS[s.precision])
        groups, schedules = optimizer_groups(objective, s)
        self.engine, *_ = deepspeed.initialize(
            model=objective,
            model_parameters=groups,
            config=deepspeed_config(s, accum),
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedules),
        )

    def micro_step(self, inputs, labels, lang: str, last: bool) -> tuple[float, dict]:
        device = self.engine.device
        loss, parts = self.engine(inputs.to(device), labels.to(device), lang)
        self.engine.backward(loss)
        self.engine.step()  # DeepSpeed counts micro-steps and steps at the accumulation boundary
        return loss.item(), parts

    def optimizer_step(self) -> None:
        pass

    def lr(self) -> float:
        return self.engine.get_lr()[0]

    def save(self, path: Path, step: int) -> None:
        # every rank writes its ZeRO partition into a temporary directory; rank 0 adds meta.json
        # (the sizes of all files) and renames it into place
        tmp = path.with_name(f".{path.name}.tmp-ds")
        if self.dist.main:
            shutil.rmtree(tmp, ignore_errors=True)
        barrier()
        self.engine.save_checkpoint(str(tmp), tag="ds")
        barrier()
        if self.dist.main:
            write_meta(tmp, step, self.s, self.job, self.dist.world)
            shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
        barrier()

    def load(self, path: Path, meta: dict) -> None:
        if meta["world"] != self.dist.world:
            raise ResumeError(
                f"{path} holds ZeRO partitions of {meta['world']} processes, this run has "
                f"{self.dist.world}; run with {meta['world']} or delete {path.parent} to start over"
            )
        try:
            loaded, _ = self.engine.load_checkpoint(str(path), tag="ds")
        except LOAD_ERRORS as e:
            raise CheckpointError(f"{path}: unreadable DeepSpeed checkpoint ({e!r})") from e
        if loaded is None:
            raise CheckpointError(f"{path}: DeepSpeed found no checkpoint there; {_advice(path)}")

    def finish(self) -> None:
        """Put the fp32 master weights (gathered from the ZeRO partitions; a collective call)
        into the model, so that what is saved is not the fp16/bf16 working copy."""
        from deepspeed.utils import safe_get_full_fp32_param

        for p in self.objective.parameters():
            full = safe_get_full_fp32_param(p)
            p.data = (p.data if full is None else full).float()
        self.objective.float()


def deepspeed_config(s: TrainSettings, accum: int) -> dict:
    """The DeepSpeed config: the JSON file's keys, with those polyprune owns overwritten."""
    if s.precision != "fp32" and not s.zero_stage:
        raise ConfigError(
            f"precision {s.precision} under DeepSpeed needs zero_stage >= 1 (the fp32 master "
            "weights are read back from the ZeRO optimizer); or use zero_stage null (torch "
            "autocast, DDP)"
        )
    try:
        base = json.loads(Path(s.deepspeed_config).read_text()) if s.deepspeed_config else {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"deepspeed_config {s.deepspeed_config}: unreadable ({e})") from e
    return {
        **base,
        "train_micro_batch_size_per_gpu": s.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": s.grad_clip,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": s.lr,
                "betas": list(s.adam_betas),
                "eps": s.adam_eps,
                "weight_decay": s.weight_decay,
                # FusedAdam is a compiled op for GPUs; the same update in torch elsewhere
                "torch_adam": not torch.cuda.is_available(),
            },
        },
        "fp16": {**base.get("fp16", {}), "enabled": s.precision == "fp16"},
        "bf16": {**base.get("bf16", {}), "enabled": s.precision == "bf16"},
        "zero_optimization": {**base.get("zero_optimization", {}), "stage": s.zero_stage},
    }


# ---- the loop ---------------------------------------------------------------------------------


def resume_point(engine, ckpt_dir: Path, s: TrainSettings, job: str, dist: Dist, log) -> int:
    """Load the newest checkpoint in `ckpt_dir` and return the step to start from: 0 when there
    is none, or when it belongs to another job (then every checkpoint there is removed)."""
    found = checkpoints(ckpt_dir)
    if not found:
        return 0
    latest = found[-1]
    meta = read_meta(latest)
    if meta.get("job") != job:
        barrier()  # every process has read meta.json before it goes
        if dist.main:
            old, new = meta["settings"], s.fingerprint()
            changed = sorted(k for k in {**old, **new} if old.get(k) != new.get(k)) or ["inputs"]
            log(f"{latest} belongs to another job (changed: {', '.join(changed)}): starting over")
            for stale in found:
                shutil.rmtree(stale)
        barrier()
        return 0
    engine.load(latest, meta)
    return meta["step"]


class TimeLimitReached(CheckpointError):
    """A training job stopped before its allocation's time limit, with a checkpoint to resume."""


def allocation_end() -> float | None:
    """When the Slurm job this process runs in reaches its time limit (epoch seconds), from
    squeue; None outside Slurm, or without a limit."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or not shutil.which("squeue"):
        return None
    out = subprocess.run(
        ["squeue", "--noheader", "--jobs", job, "--format", "%e"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        return datetime.fromisoformat(out.stdout.strip()).timestamp()
    except ValueError:  # "N/A", "UNLIMITED", or squeue failed
        return None


class TimeLimitWarning:
    """When a training job should checkpoint before its time limit, so that the retried job
    resumes from the step it reached:
    - SIGUSR1 (`--signal=USR1@...`, where a site asks Slurm for it): the step in progress ends
      with a checkpoint and training carries on;
    - `time_limit_margin` seconds before the Slurm allocation ends (squeue's end time): the step
      in progress ends with a checkpoint and the job stops (TimeLimitReached).
    Processes get the signal, and reach the deadline, not necessarily in the same step: they
    agree on it (a DeepSpeed save is collective)."""

    def __init__(self, dist: Dist, margin: int):
        self.dist, self.received = dist, False
        end = allocation_end() if margin > 0 else None
        self.deadline = None if end is None else end - margin
        self.previous = signal.signal(signal.SIGUSR1, self.receive)

    def receive(self, *_) -> None:
        self.received = True

    def due(self) -> str | None:
        """None, "signal" or "deadline"."""
        late = self.deadline is not None and time.time() >= self.deadline
        flags = torch.tensor([float(self.received), float(late)], device=self.dist.device)
        if self.dist.world > 1:
            torch.distributed.all_reduce(flags, torch.distributed.ReduceOp.MAX)
        self.received = False
        return "deadline" if flags[1] else "signal" if flags[0] else None

    def close(self) -> None:
        signal.signal(signal.SIGUSR1, self.previous)


def global_mean(values: list[float], dist: Dist) -> float:
    total = torch.tensor([sum(values), len(values)], dtype=torch.float64, device=dist.device)
    if dist.world > 1:
        torch.distributed.all_reduce(total)
    return (total[0] / total[1]).item()


def train_mlm(
    objective,
    shards: ShardSet,
    s: TrainSettings,
    ckpt_dir: Path,
    inputs: dict,
    log=print,
    stop_after: int | None = None,
) -> list[dict]:
    """Train `objective` (polyprune.objectives) in place for `s.steps` optimizer steps, resuming
    from `ckpt_dir` what was the same job (`job_digest(s, inputs)`); it ends in fp32 (under
    DeepSpeed: the fp32 master weights) on every process.

    Returns the log records (one per `log_every` steps; the loss is the mean over all processes'
    micro-batches since the last record, the objective's other terms the mean over this
    process's). `stop_after` ends the run after that step's checkpoint, as if killed there (for
    tests)."""
    check_machine(s)
    dist = init_distributed(deepspeed=s.zero_stage is not None)
    per_step = s.micro_batch_size * dist.world
    if s.batch_size % per_step:
        raise ValueError(
            f"batch_size {s.batch_size} is not a multiple of micro_batch_size x processes "
            f"({s.micro_batch_size} x {dist.world})"
        )
    accum = s.batch_size // per_step
    engine_cls = DeepSpeedEngine if s.zero_stage is not None else TorchEngine
    job = job_digest(s, inputs)
    engine = engine_cls(objective, s, job, dist, accum)
    ckpt_dir = Path(ckpt_dir)
    if dist.main:  # leftovers of saves that were killed
        for tmp in ckpt_dir.glob(".step-*.tmp*"):
            shutil.rmtree(tmp, ignore_errors=True)
    start = resume_point(engine, ckpt_dir, s, job, dist, log)
    if start and dist.main:
        log(f"resumed from {ckpt_dir} at step {start}")
    objective.train()
    warning = TimeLimitWarning(dist, s.time_limit_margin)
    try:
        records, losses, parts, t0, tokens = [], [], {}, time.perf_counter(), 0
        for step in range(start, s.steps):
            for micro in range(accum):
                index = micro * dist.world + dist.rank  # the global micro-batch index
                lang, inputs, labels = shards.batch(s.seed, step, index, 0, s.micro_batch_size)
                torch.manual_seed(step_seed(s.seed, step, index))
                loss, terms = engine.micro_step(
                    inputs.to(dist.device), labels.to(dist.device), lang, last=micro == accum - 1
                )
                losses.append(loss)
                for name, value in terms.items():
                    parts.setdefault(name, []).append(value)
                tokens += inputs.numel()
            engine.optimizer_step()
            done = step + 1
            if done % s.log_every == 0 or done == s.steps:
                elapsed = time.perf_counter() - t0
                rec = {
                    "step": done,
                    "loss": global_mean(losses, dist),
                    "lr": engine.lr(),
                    **{name: sum(v) / len(v) for name, v in parts.items()},
                    "tokens_per_s": tokens * dist.world / elapsed,
                }
                records.append(rec)
                if dist.main:
                    log(json.dumps(rec))
                losses, parts, t0, tokens = [], {}, time.perf_counter(), 0
            warned = warning.due()
            if warned or done % s.checkpoint_every == 0 or done == s.steps:
                engine.save(ckpt_dir / f"step-{done:08d}", done)
                if dist.main:
                    if warned:
                        log(f"time-limit warning ({warned}): checkpoint at step {done}")
                    for old in checkpoints(ckpt_dir)[: -s.keep_checkpoints]:
                        shutil.rmtree(old)
                if warned == "deadline" and done < s.steps:
                    raise TimeLimitReached(
                        f"{ckpt_dir}: stopped at step {done} of {s.steps}, {s.time_limit_margin} s"
                        " before the job's time limit; a rerun resumes from this checkpoint"
                    )
                if stop_after is not None and done >= stop_after:
                    break
    finally:
        warning.close()
    engine.finish()
    objective.eval()
    return records


@torch.no_grad()
def mlm_loss(model: MaskedLM, data, masking, batch_size: int, seed: int, gate_set=None) -> float:
    """Mean masked-LM loss over all sequences of `data`, with a fixed masking seed."""
    from polyprune.data import fixed_batches

    model.eval()
    device = model.embed.tokens.weight.device
    total, count = 0.0, 0
    for inputs, labels in fixed_batches(data, masking, batch_size, seed):
        n = int(labels.ne(-100).sum())
        total += model(inputs.to(device), labels=labels.to(device), gate_set=gate_set).item() * n
        count += n
    return total / count
