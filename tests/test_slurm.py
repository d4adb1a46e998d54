"""The cluster path: the profiles, and Snakemake through a real local Slurm (slurm_cluster.py).

The Slurm tests run toy workflows whose rules carry the real rule names, so that the shipped
profile (slurm/config.v8+.yaml, adapted by `slurm_cluster.write_profile`) gives them the real
resources: CPU defaults, a GPU rule, the exclusive benchmark, the multi-node pretraining form.
"""

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from slurm_cluster import REPO, finish, write_profile

# The workflow's rules by where the profiles put them (the paper's DAG; the demo adds the
# training of its base model, `base_model`, a GPU rule there).
CPU_RULES = ["tokenizer", "shard", "base_model", "prune", "export"]
CPU_RULES += ["prepare_task", "subnetworks", "figure7", "ds_cut"]
CPU_RULES += ["sparse_task", "sparse_base", "sparse_tests"]
# seconds-long steps over results: they run beside Snakemake, not in Slurm's queue
LOCAL_RULES = ["all", "select", "chance", "table1", "table2", "table3", "table4", "table5"]
LOCAL_RULES += ["figure2", "figure3", "figure4", "figure5", "figure6"]
LOCAL_RULES += ["sparse_f1", "sparse_resources", "sparse_robustness", "sparse_exemplars"]
GPU_RULES = ["importance", "mlm_eval", "finetune", "retrieval", "bench_throughput"]
GPU_RULES += ["sparse_finetune", "sparse_eval"]

WORKER = """\
import sys

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(total)
if dist.get_rank() == 0:
    open(sys.argv[1], "w").write(f"{dist.get_world_size()} {int(total.item())}\\n")
dist.destroy_process_group()
"""


def snakefile(path: Path, rules: str) -> Path:
    (path / "Snakefile").write_text(textwrap.dedent(rules))
    return path


def job_states(cluster) -> list[str]:
    out = cluster.run("squeue", "--states=all", "--noheader", "--format=%T").stdout
    return out.split()


def dry_run_resources(profile: str, *args: str) -> dict[str, dict[str, str]]:
    """Resources of the workflow's jobs, by rule, in a dry run with `profile` from the repo root."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "--profile", profile, *args]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout
    blocks = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.MULTILINE)
    return {rule: dict(kv.split("=", 1) for kv in line.split(", ")) for rule, line in blocks}


def test_slurm_profile_resources():
    res = dry_run_resources("slurm", "all")  # as documented: the paper's study
    assert set(res) == {*CPU_RULES, *GPU_RULES, *LOCAL_RULES, "pretrain", "ds_train"}
    for rule in CPU_RULES:
        assert res[rule]["slurm_partition"] == "cpu", rule
        assert "gpu" not in res[rule], rule
    assert res["prepare_task"]["mem_mb"] == "4000"  # "4000 * attempt" on the first attempt
    for rule in GPU_RULES:
        assert (res[rule]["slurm_partition"], res[rule]["gpu"]) == ("gpu", "1"), rule
        assert res[rule]["cpus_per_gpu"] == "8", rule
    assert res["finetune"]["runtime"] == "720"  # min(max_runtime, 720 * attempt)
    pretrain = res["pretrain"]
    assert (pretrain["nodes"], pretrain["tasks"], pretrain["gres"]) == ("4", "4", "gpu:8")
    assert pretrain["mpi"].startswith("srun --ntasks-per-node=1")
    assert res["ds_train"] == pretrain  # a DS model trains like a cell
    assert res["sparse_finetune"] == res["finetune"]  # the second study's models
    assert res["sparse_base"]["mem_mb"] == "16000"


def test_result_steps_run_beside_snakemake():
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        parsed = api.workflow(ResourceSettings(), snakefile=REPO / "Snakefile", workdir=REPO)
        local = parsed._workflow._localrules  # what Workflow.is_local reads under Slurm
    assert local == {*LOCAL_RULES, "audit"}


def test_local_profile_serialises_gpu_rules():
    res = dry_run_resources("local")
    gpu_rules = [*GPU_RULES, "pretrain", "ds_train", "base_model"]
    assert all(res[rule].get("gpu") == "1" for rule in gpu_rules)
    # the demo's second study reuses its base model: no sparse_base
    assert not any("gpu" in res[rule] for rule in CPU_RULES if rule in res and rule != "base_model")


def test_conda_envs_follow_constraints():
    pins = dict(
        line.split("==")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        assert "python=3.11" in env["dependencies"], env_file.name
        pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
        for name, version in (req.split("==") for req in pip if "==" in req):
            assert version.split("+")[0] == pins.get(name, version), (env_file.name, name)


@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_runs_through_slurm(slurm, tmp_path):
    snakefile(
        tmp_path,
        """
        localrules: all
        rule all:
            input: "importance.txt", "bench_throughput.txt"
        rule corpus:
            output: "corpus.txt"
            shell: "echo corpus > {output}"
        rule shard:
            input: "corpus.txt"
            output: "shards/{lang}.txt"
            shell: "echo {wildcards.lang} > {output}"
        rule importance:
            input: expand("shards/{lang}.txt", lang=["aa", "bb"])
            output: "importance.txt"
            shell: "env | grep ^SLURM_ | sort > {output}"
        rule bench_throughput:
            input: "corpus.txt"
            output: "bench_throughput.txt"
            shell: "env | grep ^SLURM_ | sort > {output}"
        """,
    )
    finish(slurm.snakemake(tmp_path, write_profile(slurm, tmp_path / "profile")))

    assert (tmp_path / "shards" / "bb.txt").read_text() == "bb\n"
    gpu_env = (tmp_path / "importance.txt").read_text()
    assert f"SLURM_JOB_PARTITION={slurm.partition}" in gpu_env
    assert "SLURM_GPUS_ON_NODE=1" in gpu_env  # the profile's `gpu: 1` reached the job step
    assert "SLURM_GPUS_ON_NODE=1" in (tmp_path / "bench_throughput.txt").read_text()
    # Job states came from squeue: this cluster has no accounting for sacct to read.
    assert slurm.run("sacct", check=False).returncode != 0
    assert set(job_states(slurm)) == {"COMPLETED"}


@pytest.mark.slurm
@pytest.mark.slow
def test_cancelled_job_is_resubmitted_with_more_memory(slurm, tmp_path):
    # The first attempt waits to be cancelled; the resubmitted one records its resources.
    snakefile(
        tmp_path,
        """
        rule report:
            output: "report.txt"
            shell:
                "echo $SLURM_JOB_ID >> attempts.txt; "
                "if [ $(wc -l < attempts.txt) -eq 1 ]; then sleep 600; fi; "
                "echo {resources.mem_mb} {resources.runtime} > {output}"
        """,
    )
    run = slurm.snakemake(tmp_path, write_profile(slurm, tmp_path / "profile"))
    attempts = tmp_path / "attempts.txt"
    deadline = time.monotonic() + 60
    while not attempts.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
    if attempts.exists():
        slurm.run("scancel", attempts.read_text().strip())
    finish(run)

    first, second = attempts.read_text().split()
    assert first != second
    assert (tmp_path / "report.txt").read_text().split() == ["8000", "240"]  # attempt 2


@pytest.mark.slurm
@pytest.mark.slow
def test_multinode_pretrain_form(slurm, tmp_path):
    # The profile's two-node pretrain form (mpi, tasks, gres, one launcher per node) on the one
    # node: its two tasks stand for the two nodes, one CPU worker each, rendezvous over gloo.
    (tmp_path / "worker.py").write_text(WORKER)
    launch = REPO / "workflow" / "scripts" / "launch.sh"
    snakefile(
        tmp_path,
        f"""
        rule pretrain:
            output: "pretrain.txt"
            shell: "{{resources.mpi}} bash {launch} 1 {sys.executable} worker.py {{output}}"
        """,
    )
    profile = write_profile(
        slurm,
        tmp_path / "profile",
        variables={"pretrain_nodes": 2, "gpus_per_node": 2},
        set_resources={"pretrain": {"nodes": 1, "mpi": "'srun --ntasks=2 --kill-on-bad-exit=1'"}},
    )
    finish(slurm.snakemake(tmp_path, profile))
    assert (tmp_path / "pretrain.txt").read_text().split() == ["2", "3"]  # world 2, 1 + 2


@pytest.mark.slurm
@pytest.mark.slow
def test_demo_target_through_slurm_resumes_after_scancel(slurm, tmp_path):
    # The demo DAG (tiny config) up to its base model, through sbatch with the shipped profile.
    # The base model's training is cancelled with scancel once it has written a checkpoint; the
    # rerun resumes from that checkpoint and completes the target.
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["base_training"].update(steps=1500, checkpoint_every=100, log_every=100)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    profile = write_profile(slurm, tmp_path / "profile", configfile="config.yaml", retries=0)
    target = ["--snakefile", str(REPO / "Snakefile"), "results/tiny/base"]
    run = slurm.snakemake(tmp_path, profile, *target)
    checkpoints = tmp_path / "results" / "tiny" / "checkpoints" / "base"
    deadline = time.monotonic() + 600
    while not list(checkpoints.glob("step-*")):
        assert run.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.5)
    slurm.run("scancel", f"--partition={slurm.partition}")
    out, _ = run.communicate(timeout=240)
    assert run.returncode != 0, out[-3000:]
    assert not (tmp_path / "results" / "tiny" / "base").exists()
    done = finish(slurm.snakemake(tmp_path, profile, *target), timeout=600)
    log = (tmp_path / "logs" / "tiny" / "base_model.log").read_text()
    assert f"resumed from {checkpoints.relative_to(tmp_path)} at step" in log, done[-3000:]
    assert (tmp_path / "results" / "tiny" / "base" / "model.safetensors").exists()


def test_audit_jobs_get_the_resources_of_the_jobs_they_rerun():
    study, audit = dry_run_resources("slurm", "all"), dry_run_resources("slurm", "audit")
    rerun = [rule for rule in audit if rule.startswith("audit_")]
    assert {"audit_importance", "audit_finetune"} <= set(rerun)
    for rule in rerun:
        assert audit[rule] == study[rule.removeprefix("audit_")], rule


@pytest.mark.slurm
@pytest.mark.slow
def test_training_stops_before_its_time_limit_and_the_retry_resumes(slurm, tmp_path):
    # The demo's base model through the shipped profile with a one-minute limit: the job reads
    # its end time from squeue, checkpoints 50 s before it and stops; Snakemake resubmits it
    # with a longer limit, and the retry resumes from that checkpoint (the only one: periodic
    # checkpoints never come) and completes the target.
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["base_training"].update(
        steps=2000, checkpoint_every=10**6, log_every=500, time_limit_margin=50
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    profile = write_profile(
        slurm,
        tmp_path / "profile",
        configfile="config.yaml",
        retries=1,
        set_resources={"base_model": {"runtime": "1 + 29 * (attempt - 1)"}},
    )
    target = ["--snakefile", str(REPO / "Snakefile"), "results/tiny/base"]
    done = finish(slurm.snakemake(tmp_path, profile, *target), timeout=1200)
    log = (tmp_path / "logs" / "tiny" / "base_model.log").read_text()
    resumed = re.search(r"resumed from \S+ at step (\d+)", log)
    assert resumed, done[-3000:]
    assert 0 < int(resumed[1]) < 2000
    assert (tmp_path / "results" / "tiny" / "base" / "model.safetensors").exists()
