"""What produced a result: run, seed, the config sections it read and their digest, code
version, input digests, packages.

A provenance record is a pure function of the inputs, the settings and the code: it holds no
time and no host name, so that two runs of one config (in two clones) write byte-identical
results. When and where a job ran is in its log (and in Snakemake's own metadata).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from polyprune import __version__
from polyprune.io import file_digest

PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "numpy", "deepspeed", "snakemake")
FULL_DIGEST_LIMIT = 256 << 20  # larger files are identified by size and their first/last MiB


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@cache
def code_version() -> str:
    """polyprune's version plus the git commit of the checkout it runs from (and "-dirty")."""
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{commit}"


@cache
def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def input_key(path) -> str:
    """An input's name in a provenance record: the path as given, relative to the working
    directory when it lies under it (so that two clones name their inputs alike)."""
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)
    return str(path)


def provenance(identity: dict, inputs=(), **extra) -> dict:
    """`identity` is polyprune.config.identity(config): run, seed, the settings read and their
    digest. The time and host go to stderr (the job's log), not into the record."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(f"provenance: written on {platform.node()} at {when}", file=sys.stderr, flush=True)
    return {
        **identity,
        "code_version": code_version(),
        "inputs": {input_key(p): file_digest(p, FULL_DIGEST_LIMIT) for p in inputs},
        "packages": package_versions(),
        "python": platform.python_version(),
        **extra,
    }
