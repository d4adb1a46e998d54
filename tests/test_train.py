"""The training loop's checkpoints: exact resume (in process and after a real SIGKILL), refused
resumes, corrupted checkpoints, half-written checkpoints. One process, tiny model, CPU.

`tiny_world` and `train_command` are shared with test_distributed.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from polyprune import data, train
from polyprune.errors import CheckpointError, ConfigError
from polyprune.model import MaskedLM, ModelConfig, save_model
from polyprune.objectives import MLM
from polyprune.train import (
    TrainSettings,
    checkpoints,
    deepspeed_config,
    train_mlm,
)

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
VOCAB = 48  # the tiny tokenizer's size; <mask> is the last id
LANGS = ("aa", "bb")
SEQ_LEN = 16
DATA_CFG = {"mlm_probability": 0.15, "sampling_alpha": 0.5, "seq_len": SEQ_LEN}
MASKING = data.MaskingSpec(mask_id=VOCAB - 1, vocab_size=VOCAB, n_special=4)
SETTINGS = dict(
    steps=8,
    batch_size=8,
    micro_batch_size=4,  # two micro-steps per optimizer step
    lr=1e-3,
    warmup_steps=2,
    checkpoint_every=2,
    keep_checkpoints=2,
    log_every=1,
    seed=3,
)


def tiny_model() -> MaskedLM:
    """d=32, 2 layers, one gate set per language with some heads / FFN units switched off."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=VOCAB,
        hidden=32,
        layers=2,
        heads=2,
        ffn=64,
        head_dim=16,
        max_positions=SEQ_LEN + 4,
        gate_sets=list(LANGS),
    )
    model = MaskedLM(cfg)
    model.gate_table.heads_0[0, 1] = 0.0  # aa: layer 0 without head 1
    model.gate_table.ffn_1[1, :32] = 0.0  # bb: half of layer 1's FFN
    return model


def write_world(root: Path, tokenizer: bool = False) -> dict:
    """Shards of random token ids for two languages (different sizes), an initial model, and
    (for the CLI) a tokenizer of VOCAB tokens."""
    rng = np.random.default_rng(0)
    world = {"shards": [], "init": root / "init", "root": root}
    for lang, n in zip(LANGS, (72, 40)):
        packed = rng.integers(4, VOCAB - 1, size=(n, SEQ_LEN), dtype=np.int32)
        packed[:, 0], packed[:, -1] = 0, 2
        shard_dir = root / "shards" / lang
        data.write_shards(packed, shard_dir, lang, {"eval": 4, "importance": 4}, {"size": n}, 0)
        world["shards"].append(shard_dir)
    save_model(tiny_model(), world["init"])
    if tokenizer:
        corpus = root / "corpus.txt"
        words = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op", "qr", "st", "uv", "wx"]
        corpus.write_text(
            "\n".join(" ".join(rng.choice(words, 8)) for _ in range(200)) + "\n", encoding="utf-8"
        )
        data.train_tokenizer([corpus], VOCAB, root / "tokenizer")
        tok = data.load_tokenizer(str(root / "tokenizer"))
        assert (len(tok), tok.mask_token_id) == (VOCAB, VOCAB - 1)
        world["tokenizer"] = root / "tokenizer"
    return world


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict:
    return write_world(tmp_path_factory.mktemp("world"), tokenizer=True)


def shard_set(world: dict) -> data.ShardSet:
    dirs = {Path(d).name: Path(d) for d in world["shards"]}
    return data.ShardSet(dirs, "train", DATA_CFG["sampling_alpha"], MASKING, {"aa": 72, "bb": 40})


def train_command(
    world: dict, out: Path, ckpt: Path, training: dict, nproc: int = 1, objective=None
) -> list:
    """`polyprune train` as the workflow launches it (one process, or torchrun)."""
    config = {
        "pretraining": training,
        "data": DATA_CFG,
        "identity": {"run": "test", "seed": 3, "config_digest": "test"},
        **({"objective": objective} if objective else {}),
    }
    launch = [sys.executable]
    if nproc > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return [
        *launch,
        *["-m", "polyprune.cli", "--threads", "1", "train", "--config", json.dumps(config)],
        *["--init", str(world["init"]), "--tokenizer", str(world["tokenizer"])],
        *["--shards", *map(str, world["shards"]), "--out", str(out), "--checkpoints", str(ckpt)],
    ]


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def run(
    world, ckpt: Path, stop_after=None, inputs=None, log=lambda _: None, **changes
) -> tuple[MaskedLM, list]:
    model = tiny_model()
    s = TrainSettings(**{**SETTINGS, **changes})
    inputs = inputs or {"shards": "v1"}
    objective = MLM(model)
    records = train_mlm(
        objective, shard_set(world), s, ckpt, inputs, log=log, stop_after=stop_after
    )
    return model, records


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return write_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """An uninterrupted run: its model, log records and checkpoint directory."""
    ckpt = tmp_path_factory.mktemp("reference") / "ckpt"
    model, records = run(world, ckpt)
    return model, records, ckpt


def test_uninterrupted_run_learns_and_keeps_checkpoints(reference):
    model, records, ckpt = reference
    assert [r["step"] for r in records] == list(range(1, 9))
    assert records[-1]["loss"] < records[0]["loss"]
    assert records[-1]["lr"] == 0.0  # linear decay to zero at the last step
    assert [p.name for p in checkpoints(ckpt)] == ["step-00000006", "step-00000008"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_resume_is_exact(world, reference, tmp_path):
    ckpt = tmp_path / "ckpt"
    _, first = run(world, ckpt, stop_after=4)
    assert first[-1]["step"] == 4
    model, second = run(world, ckpt)
    assert [r["step"] for r in second] == [5, 6, 7, 8]
    assert_same_weights(model.state_dict(), reference[0].state_dict())
    assert [r["loss"] for r in first + second] == [r["loss"] for r in reference[1]]


@pytest.mark.parametrize(
    "change, named",
    [({"lr": 2e-3}, "changed: lr"), ({"inputs": {"shards": "v2"}}, "changed: inputs")],
)
def test_another_jobs_checkpoint_is_not_resumed(world, reference, tmp_path, change, named):
    """A checkpoint of other settings or other inputs (init model, gates, tokenizer, shards,
    data settings) starts the run over, saying so, and is removed."""
    ckpt = tmp_path / "ckpt"
    run(world, ckpt, stop_after=2)
    said = []
    _, records = run(world, ckpt, stop_after=2, log=said.append, **change)
    assert records[0]["step"] == 1
    assert "step-00000002 belongs to another job" in said[0] and named in said[0]
    assert [p.name for p in checkpoints(ckpt)] == ["step-00000002"]  # the new job's own


def test_logging_and_checkpointing_are_not_part_of_the_job(world, reference, tmp_path):
    ckpt = tmp_path / "ckpt"
    run(world, ckpt, stop_after=4)
    model, records = run(world, ckpt, checkpoint_every=4, log_every=3)
    assert [r["step"] for r in records] == [6, 8]  # resumed after step 4
    assert_same_weights(model.state_dict(), reference[0].state_dict())


@pytest.mark.parametrize(
    "damage, culprit",
    [
        ("truncate:model.safetensors", "model.safetensors"),
        ("truncate:state.pt", "state.pt"),
        ("garble:state.pt", "state.pt"),  # same size, unreadable content
        ("garble:meta.json", "meta.json"),
        ("delete:meta.json", "meta.json"),
    ],
)
def test_damaged_checkpoint_is_named(world, tmp_path, damage, culprit):
    ckpt = tmp_path / "ckpt"
    run(world, ckpt, stop_after=4)
    how, name = damage.split(":")
    f = ckpt / "step-00000004" / name
    if how == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "garble":
        f.write_bytes(b"\x00" * f.stat().st_size)
    else:
        f.unlink()
    with pytest.raises(CheckpointError, match=rf"step-00000004/{culprit}"):
        run(world, ckpt)


def test_half_written_checkpoint_is_ignored(world, reference, tmp_path):
    ckpt = tmp_path / "ckpt"
    run(world, ckpt, stop_after=4)
    # what a save killed before its rename leaves: a hidden temporary directory, here of a later
    # step and with a plausible meta.json
    leftover = ckpt / ".step-00000006.tmp-12345"
    leftover.mkdir()
    (leftover / "meta.json").write_text(json.dumps({"step": 6, "settings": {}, "files": {}}))
    (leftover / "model.safetensors").write_bytes(b"half")
    assert [p.name for p in checkpoints(ckpt)] == ["step-00000002", "step-00000004"]
    model, records = run(world, ckpt)
    assert records[0]["step"] == 5
    assert_same_weights(model.state_dict(), reference[0].state_dict())
    assert not leftover.exists()


def test_deepspeed_config_files(tmp_path):
    """The repository's JSON files load; what polyprune owns overwrites them."""
    for precision in ("fp16", "bf16"):
        path = REPO / "config" / "deepspeed" / f"{precision}.json"
        s = TrainSettings(
            **{**SETTINGS, "precision": precision, "zero_stage": 2, "deepspeed_config": str(path)}
        )
        cfg = deepspeed_config(s, accum=4)
        assert (
            cfg[precision]["enabled"]
            and not cfg[{"fp16": "bf16", "bf16": "fp16"}[precision]]["enabled"]
        )
        assert cfg["zero_optimization"]["stage"] == 2
        assert cfg["gradient_accumulation_steps"] == 4
        assert cfg["train_micro_batch_size_per_gpu"] == 4
        assert cfg["optimizer"]["params"]["lr"] == 1e-3
        assert "scheduler" not in cfg  # the schedule is polyprune's own LambdaLR
        DeepSpeedConfig = pytest.importorskip("deepspeed.runtime.config").DeepSpeedConfig
        DeepSpeedConfig(cfg)  # DeepSpeed accepts it
    fp16 = json.loads((REPO / "config" / "deepspeed" / "fp16.json").read_text())
    assert fp16["fp16"]["loss_scale"] == 0  # dynamic loss scaling, as the paper
    with pytest.raises(ConfigError, match="zero_stage"):
        deepspeed_config(TrainSettings(**{**SETTINGS, "precision": "bf16", "zero_stage": 0}), 1)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        deepspeed_config(
            TrainSettings(**{**SETTINGS, "zero_stage": 2, "deepspeed_config": str(bad)}), 1
        )


@pytest.mark.slow
def test_killed_cli_run_resumes_exactly(tiny_world, tmp_path):
    """SIGKILL `polyprune train` once a checkpoint exists, run it again: the final weights equal
    those of an uninterrupted run."""
    training = {**SETTINGS, "steps": 60, "checkpoint_every": 5, "keep_checkpoints": 1}
    training.pop("seed")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    ref = subprocess.Popen(
        train_command(tiny_world, tmp_path / "ref", tmp_path / "ref-ckpt", training),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    cmd = train_command(tiny_world, out, ckpt, training)
    victim = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoints(ckpt) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not out.exists(), "the run finished before it could be killed"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = [line for line in done.stdout.splitlines() if line.startswith("resumed from")]
    assert resumed, done.stdout
    assert 0 < int(resumed[0].rsplit(" ", 1)[-1]) < 60
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    assert_same_weights(weights(out), weights(tmp_path / "ref"))
    final = json.loads((out / "config.json").read_text())
    assert final["log"][-1]["step"] == 60


def test_zero_stage_without_deepspeed_names_the_key(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # find_spec: not installed
    s = TrainSettings(**{**SETTINGS, "zero_stage": 1})
    with pytest.raises(ConfigError, match=r"^config key zero_stage: 1 needs the deepspeed package"):
        train_mlm(MLM(tiny_model()), None, s, tmp_path, inputs={})


def test_fp16_without_cuda_names_the_key(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    s = TrainSettings(**{**SETTINGS, "precision": "fp16"})
    with pytest.raises(ConfigError, match=r"^config key precision: fp16 needs a CUDA GPU"):
        train_mlm(MLM(tiny_model()), None, s, tmp_path, inputs={})


def test_a_time_limit_warning_checkpoints_the_step_in_progress(world, reference, tmp_path):
    """SIGUSR1 (Slurm's `--signal=USR1@...` before the time limit) during step 3, between
    periodic checkpoints (every 2 steps): step 3 is saved, and a resumed run loses nothing."""
    ckpt, said = tmp_path / "ckpt", []

    def log(line):
        said.append(line)
        if line.startswith('{"step": 3,'):
            os.kill(os.getpid(), signal.SIGUSR1)

    run(world, ckpt, stop_after=3, log=log)
    assert "time-limit warning (signal): checkpoint at step 3" in said
    assert [p.name for p in checkpoints(ckpt)] == ["step-00000002", "step-00000003"]
    model, records = run(world, ckpt)
    assert records[0]["step"] == 4
    assert_same_weights(model.state_dict(), reference[0].state_dict())
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the handler was removed


def test_a_job_stops_with_a_checkpoint_before_its_allocation_ends(
    world, reference, tmp_path, monkeypatch
):
    """Under Slurm, `time_limit_margin` seconds before the allocation's end (here: already
    past), the step in progress is saved and the job stops with one line; a rerun resumes."""
    monkeypatch.setattr(train, "allocation_end", lambda: time.time() + 30)
    ckpt, said = tmp_path / "ckpt", []
    with pytest.raises(train.TimeLimitReached, match=r"ckpt: stopped at step 1 of 8, 60 s before"):
        run(world, ckpt, log=said.append, time_limit_margin=60)
    assert "time-limit warning (deadline): checkpoint at step 1" in said
    assert [p.name for p in checkpoints(ckpt)] == ["step-00000001"]
    monkeypatch.setattr(train, "allocation_end", lambda: None)  # outside Slurm: no deadline
    model, records = run(world, ckpt, time_limit_margin=60)
    assert records[0]["step"] == 2
    assert_same_weights(model.state_dict(), reference[0].state_dict())
