"""Running the real Snakefile on a tiny configuration, for the end-to-end tests."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def snakemake(
    workdir: Path, *args: str, configfile: Path = TINY, snakefile: Path = ROOT / "Snakefile"
) -> subprocess.CompletedProcess:
    command = [
        Path(sys.executable).with_name("snakemake"),
        "--snakefile", snakefile,
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


def rules_run(done: subprocess.CompletedProcess) -> list[str]:
    """The rule of every job that a Snakemake run started (or a dry run plans)."""
    return [rule for rule, _ in jobs_run(done)]


def jobs_run(done: subprocess.CompletedProcess) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job that a Snakemake run started (or a dry run plans)."""
    blocks = re.split(r"^(?:local)?rule (\w+):$", done.stdout + done.stderr, flags=re.MULTILINE)
    found = []
    for rule, body in zip(blocks[1::2], blocks[2::2]):
        line = re.search(r"^\s+wildcards: (.*)$", body, re.MULTILINE)
        pairs = line[1].split(", ") if line else []
        found.append((rule, dict(pair.split("=", 1) for pair in pairs)))
    return found


def edited_config(to: Path, **sections: dict) -> Path:
    """tests/configs/tiny.yaml with some keys of some sections changed (or sections added)."""
    config = yaml.safe_load(TINY.read_text())
    for section, keys in sections.items():
        config[section] = {**config.get(section, {}), **keys}
    to.write_text(yaml.safe_dump(config))
    return to
