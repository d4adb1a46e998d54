"""A real single-node Slurm on localhost for the tests: Debian's slurm-wlm and munge, as root.

`running(root)` writes slurm.conf into `root`, starts munged (unless one already answers),
slurmctld and slurmd, waits until the node is idle, and stops what it started on exit.

The node is configured larger than the machine (`SlurmdParameters=config_overrides`): 64 CPUs,
512 GB and 8 GPUs (a GRES without devices), the shape of a cluster GPU node, so that the Slurm
profile's real resource requests are accepted and scheduled. Nothing enforces those limits
(no cgroups), so jobs just share the real cores.

slurmd runs configless (it fetches the configuration from slurmctld and caches it under
/run/slurm/conf): the Snakemake Slurm executor drops SLURM_* variables, SLURM_CONF included,
before its inner `srun`, which then finds the configuration there. Accounting is off, so `sacct`
fails; Snakemake must query job states with `squeue` (`MinJobAge` keeps finished jobs visible).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

REPO = Path(__file__).resolve().parents[1]
PARTITION = "debug"
NODE = {"cpus": 64, "mem_mb": 512_000, "gpus": 8}
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "unmunge", "sbatch", "srun", "squeue", "scancel", "sinfo", "scontrol")
MUNGE_RUN = Path("/run/munge")
CONF_CACHE_LINK = Path("/run/slurm/conf")  # configless slurmd's cache, where clients look
LOCK = Path("/run/lock/polyprune-test-slurm.lock")  # one test cluster per machine at a time


@dataclass(frozen=True)
class SlurmCluster:
    root: Path
    partition: str
    env: dict[str, str]  # os.environ plus SLURM_CONF: pass to every Slurm client and Snakemake

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command (squeue, scancel, ...) against this cluster."""
        return subprocess.run(args, env=self.env, check=check, capture_output=True, text=True)

    def snakemake(self, workdir: Path, profile: Path, *args: str) -> subprocess.Popen:
        """Start Snakemake in `workdir` with `profile` (see `write_profile`); `finish` waits."""
        env = {**self.env, "PATH": f"{Path(sys.executable).parent}:{self.env['PATH']}"}
        cmd = [sys.executable, "-m", "snakemake", "--profile", str(profile), *args]
        return subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )


def finish(run: subprocess.Popen, timeout: float = 240) -> str:
    """Wait for a Snakemake run; its output, or an AssertionError with the output's tail."""
    try:
        out, _ = run.communicate(timeout=timeout)
    finally:
        run.kill()
    assert run.returncode == 0, out[-6000:]
    return out


def unavailable_reason() -> str | None:
    """Why a local Slurm cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting a local Slurm needs root"
    missing = [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install slurm-wlm munge)"
    if Path("/etc/slurm/slurm.conf").exists():
        return "/etc/slurm/slurm.conf exists: this machine has its own Slurm"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(root: Path) -> tuple[Path, int]:
    """slurm.conf and gres.conf in `root`; returns slurm.conf's path and slurmctld's port."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ctld_port = _free_port()
    conf = root / "slurm.conf"
    conf.write_text(
        f"""\
ClusterName=polyprune-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldParameters=enable_configless
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={NODE["cpus"]} RealMemory={NODE["mem_mb"]} \
Gres=gpu:{NODE["gpus"]} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    )
    # GPUs without hardware: Slurm wants one device file per GPU; empty files do.
    for i in range(NODE["gpus"]):
        (root / f"gpu{i}").touch()
    last = NODE["gpus"] - 1
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File={root}/gpu[0-{last}]\n")
    return conf, ctld_port


def _munge_works() -> bool:
    encoded = subprocess.run(["munge", "-n"], capture_output=True)
    if encoded.returncode != 0:
        return False
    return subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True).returncode == 0


def _start_munge() -> int | None:
    """Start munged as the munge user unless one answers; return its pid if started here."""
    if _munge_works():
        return None
    for folder in (MUNGE_RUN, Path("/var/log/munge"), Path("/var/lib/munge")):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    if not Path("/etc/munge/munge.key").exists():
        subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
    subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
    _require(_until(_munge_works, 10), "munged does not answer")
    return int((MUNGE_RUN / "munged.pid").read_text())


def _until(ready, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(message)


def _stop(pid: int) -> None:
    """Stop a daemon this harness started (checked by name: the pid may be stale)."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() not in DAEMONS:
            return
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return
    if not _until(lambda: not Path(f"/proc/{pid}").exists(), 15):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _tear_down(root: Path, pids: list[int]) -> None:
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    subprocess.run(["scancel", f"--partition={PARTITION}"], env=env, capture_output=True)
    _until(lambda: not _active_jobs(env), 30)
    for pid in reversed(pids):
        _stop(pid)
    # Left behind, the link makes every Slurm client (so every Snakemake start, whose Slurm
    # plugin asks `scontrol`) wait seconds for the stopped controller.
    if CONF_CACHE_LINK.is_symlink() and root in Path(os.readlink(CONF_CACHE_LINK)).parents:
        CONF_CACHE_LINK.unlink()


def _try_lock(ledger: TextIO) -> bool:
    try:
        fcntl.flock(ledger, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def running(root: Path) -> Iterator[SlurmCluster]:
    """Start munge, slurmctld and slurmd with their files under `root`; stop them on exit.

    Test sessions on one machine take turns (/run/slurm/conf and munged are shared): the lock
    file LOCK also lists the running cluster's root and daemons, so that a session killed
    before its teardown is cleaned up by the next one.
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a+") as ledger:
        _require(_until(lambda: _try_lock(ledger), 900), f"{LOCK} held by another session")
        ledger.seek(0)
        left = ledger.read().split()
        if left:
            _tear_down(Path(left[0]), [int(pid) for pid in left[1:]])
        ledger.truncate(0)
        ledger.write(f"{root}\n")
        pids: list[int] = []

        def started(pid: int) -> None:
            pids.append(pid)
            ledger.write(f"{pid}\n")
            ledger.flush()

        conf, ctld_port = write_conf(root)
        env = {**os.environ, "SLURM_CONF": str(conf)}
        cluster = SlurmCluster(root=root, partition=PARTITION, env=env)
        try:
            munged = _start_munge()
            if munged:
                started(munged)
            for daemon in (["slurmctld"], ["slurmd", "--conf-server", f"127.0.0.1:{ctld_port}"]):
                subprocess.run(daemon, env=env, check=True)
                pid_file = root / f"{daemon[0]}.pid"
                _require(_until(pid_file.exists, 10), f"{daemon[0]} did not start; see {root}/log")
                started(int(pid_file.read_text()))
            idle = _until(lambda: _node_state(env) == "idle", 30)
            _require(idle, f"the node did not become idle; see {root}/log")
            yield cluster
        finally:
            _tear_down(root, pids)
            ledger.truncate(0)


def _node_state(env: dict[str, str]) -> str:
    sinfo = ["sinfo", "--noheader", "--format=%T"]
    return subprocess.run(sinfo, env=env, capture_output=True, text=True).stdout.strip()


def _active_jobs(env: dict[str, str]) -> str:
    squeue = ["squeue", "--noheader"]
    return subprocess.run(squeue, env=env, capture_output=True, text=True).stdout.strip()


def write_profile(
    cluster: SlurmCluster,
    dest: Path,
    *,
    variables: dict | None = None,
    set_resources: dict | None = None,
    **settings,
) -> Path:
    """The shipped profile slurm/config.v8+.yaml adapted to the local cluster, written to `dest`.

    Site variables point at the local partition (`variables` overrides more of them); job states
    come from squeue (no accounting here); status checks start after 2 s, not 40. The profile's
    configfile is dropped: pass `configfile=...`,
    other top-level settings as keyword arguments (`jobs=2`), and per-rule resources in
    `set_resources` ({rule: {resource: value}}, merged into the profile's).
    """
    profile = yaml.safe_load((REPO / "slurm" / "config.v8+.yaml").read_text())
    profile.pop("configfile")
    site = profile["__variables__"]
    site.update(account="", cpu_partition=cluster.partition, gpu_partition=cluster.partition)
    site.update(variables or {})
    for rule, resources in (set_resources or {}).items():
        profile["set-resources"].setdefault(rule, {}).update(copy.deepcopy(resources))
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-no-account": True,
            "slurm-init-seconds-before-status-checks": 2,
        }
    )
    profile.update({key.replace("_", "-"): value for key, value in settings.items()})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.v8+.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest
