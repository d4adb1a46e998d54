import os

import pytest
import slurm_cluster
import torch
from workflow_runs import ROOT, snakemake, tail


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node Slurm for the session (tests/slurm_cluster.py): a SlurmCluster with
    `partition` and `env`. Skips where it cannot start (not root, packages missing); with
    CI=true, fails instead."""
    reason = slurm_cluster.unavailable_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no local Slurm: {reason}")
        pytest.skip(reason)
    with slurm_cluster.running(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The working directory of one finished run of the whole DAG on tests/configs/tiny.yaml,
    shared by the end-to-end tests; a test that changes files works on `copy_run` of it."""
    # a checkout path and a working directory with spaces in them (quoting in shell commands)
    root = tmp_path_factory.mktemp("paths with spaces")
    (root / "poly prune").symlink_to(ROOT)
    workdir = root / "tiny run"
    workdir.mkdir()
    done = snakemake(workdir, snakefile=root / "poly prune" / "Snakefile")
    assert done.returncode == 0, tail(done)
    return workdir
