"""Running the real Snakefile on a tiny configuration, for the end-to-end tests."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, configfile: Path = TINY) -> subprocess.CompletedProcess:
    command = [
        Path(sys.executable).with_name("snakemake"),
        "--snakefile", ROOT / "Snakefile",
        "--directory", workdir,
        "--configfile", configfile,
        "--cores", "2",
        *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def tail(done: subprocess.CompletedProcess) -> str:
    return done.stdout[-4000:] + done.stderr[-4000:]


def copy_run(workdir: Path, to: Path) -> Path:
    """A copy of a finished run (results, logs and Snakemake's metadata, with their times), for
    a test that changes files without disturbing the tests that share the original."""
    shutil.copytree(workdir, to, symlinks=True)
    return to
