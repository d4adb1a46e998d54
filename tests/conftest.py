import os

import pytest
import slurm_cluster


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
