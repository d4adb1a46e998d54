"""Atomic outputs: whole or absent, with the umask's permissions, no leftovers of killed jobs."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from polyprune.io import atomic_dir, atomic_file

REPO = Path(__file__).resolve().parents[1]


def test_a_failed_block_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_the_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "model") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))  # written 0600
        with atomic_file(tmp_path / "scores.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
    finally:
        os.umask(previous)
    for path in [tmp_path / "model", *tmp_path.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def test_a_killed_writers_temporary_folder_is_removed_by_the_next(tmp_path):
    out = tmp_path / "tokenizer"
    writer = (
        "import sys, time\n"
        "from polyprune.io import atomic_dir\n"
        "from polyprune.jobs import exit_on_sigterm\n"
        "exit_on_sigterm()\n"
        "with atomic_dir(sys.argv[1]) as tmp:\n"
        "    (tmp / 'part').write_text('x')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(
            [sys.executable, "-c", writer, str(out)], env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline() == "writing\n"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        leftovers = [p.name for p in tmp_path.iterdir()]
        # SIGTERM (Snakemake, Slurm) cleans up on the way out; SIGKILL cannot
        assert leftovers == ([] if sig == signal.SIGTERM else [f".tokenizer.tmp-{proc.pid}"])
    with atomic_dir(out) as tmp:
        (tmp / "whole").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer"]


JOB = (
    "import atexit, sys\n"
    "from pathlib import Path\n"
    "from types import SimpleNamespace\n"
    "from polyprune.jobs import job\n"
    "out = Path(sys.argv[1])\n"
    "snakemake = SimpleNamespace(threads=1, params={}, log=[str(out / 'job.log')])\n"
    "atexit.register(lambda: (out / 'teardown').write_text('ran'))\n"
    "with job(snakemake):\n"
    "    print('working')\n"
    "    (out / 'result').write_text(sys.argv[2])\n"
    "    if sys.argv[2] == 'fail':\n"
    "        raise RuntimeError('the job failed')\n"
)


@pytest.mark.parametrize("outcome", ["succeed", "fail"])
def test_a_job_that_succeeds_skips_the_interpreters_teardown(tmp_path, outcome):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", JOB, str(tmp_path), outcome], env=env)
    log = (tmp_path / "job.log").read_text()
    assert (tmp_path / "result").read_text() == outcome
    assert log.startswith("working\n") and "polyprune: cost " in log
    if outcome == "succeed":
        assert done.returncode == 0 and not (tmp_path / "teardown").exists()
    else:  # a failure goes the usual way: traceback, exit status, atexit handlers
        assert done.returncode == 1 and "RuntimeError: the job failed" in log
        assert (tmp_path / "teardown").read_text() == "ran"
