"""What produced a result: run, config digest, code version, seed, input digests, packages."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
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


def provenance(identity: dict, inputs=(), **extra) -> dict:
    """`identity` is polyprune.config.identity(config): run, config digest and seed."""
    return {
        **identity,
        "code_version": code_version(),
        "inputs": {str(p): file_digest(p, FULL_DIGEST_LIMIT) for p in inputs},
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
