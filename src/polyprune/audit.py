"""Auditing results: what produced a number (`polyprune explain`), and re-derived results held
against the originals, number by number (the workflow's `audit` target, rules/audit.smk)."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from polyprune.errors import DataError
from polyprune.io import atomic_file, read_json

STAGES = ("importance", "prune", "pretrain", "mlm_eval", "finetune", "retrieval")
DEFAULTS = {
    "seed": 0,
    "samples": 2,
    "stages": ["importance", "prune", "mlm_eval", "finetune", "retrieval"],
}
MODEL_CONFIG, MODEL_WEIGHTS = "config.json", "model.safetensors"  # polyprune.model's layout


# ---- the sample -------------------------------------------------------------------------------


def settings(audit: dict | None) -> dict:
    """The `audit` config section with its defaults."""
    return {**DEFAULTS, **(audit or {})}


def sample(jobs: dict[str, list], seed: int, per_stage: int) -> dict[str, list]:
    """`per_stage` jobs of each stage (all of them if it has fewer), drawn with a generator of
    its own per stage: the draw of one stage does not depend on which other stages are audited.
    A job is anything sortable (e.g. a tuple of its output paths)."""
    drawn = {}
    for stage, candidates in jobs.items():
        pool = sorted(candidates)
        picked = random.Random(f"{seed}:{stage}").sample(pool, min(per_stage, len(pool)))
        drawn[stage] = sorted(picked)
    return drawn


def moved(out: str, to: str, path: str) -> str:
    """Where the audit re-derives `path`, an output under `out`: the same path under `to`."""
    if not path.startswith(f"{out}/"):
        raise ValueError(f"{path} is not under {out}")
    return f"{to}/{path.removeprefix(f'{out}/')}"


def pairs(jobs: dict[str, list], audit: dict, out: str, to: str) -> list[tuple[str, str, str]]:
    """(stage, original, re-derived) for every output of the sampled jobs of the audited stages
    (`audit`: the section with its defaults)."""
    audited = {stage: jobs[stage] for stage in audit["stages"]}
    drawn = sample(audited, audit["seed"], audit["samples"])
    return [
        (stage, path, moved(out, to, path))
        for stage, picked in drawn.items()
        for outputs in picked
        for path in outputs
    ]


# ---- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One number re-derived: a JSON leaf, or a tensor (its sum, and the largest elementwise
    |delta|). `delta` is inf where the two files do not even hold the same numbers (`note`)."""

    stage: str
    file: str
    audit_file: str
    field: str
    original: float | int | str
    rederived: float | int | str
    delta: float
    note: str = ""


COLUMNS = [f.name for f in fields(Row)]


def numeric_leaves(obj, prefix: str = "") -> Iterator[tuple[str, float | int]]:
    """(field path, value) of every number in a JSON value (booleans count as 0/1), skipping any
    `provenance` subtree; strings and nulls are not numbers."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key != "provenance":
                yield from numeric_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from numeric_leaves(value, f"{prefix}[{i}]")
    elif isinstance(obj, bool):
        yield prefix, int(obj)
    elif isinstance(obj, (int, float)):
        yield prefix, obj


def number_delta(a: float | int, b: float | int) -> float:
    """|b - a|; 0 for two NaNs or two equal infinities."""
    if a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    ):
        return 0.0
    return float(abs(b - a)) if math.isfinite(a) and math.isfinite(b) else math.inf


def compare_json(original, rederived) -> list[tuple[str, object, object, float, str]]:
    """(field, original, re-derived, delta, note) of every numeric leaf of either value."""
    a, b = dict(numeric_leaves(original)), dict(numeric_leaves(rederived))
    rows = []
    for key in [*a, *(k for k in b if k not in a)]:
        if key not in b:
            rows.append((key, a[key], "", math.inf, "missing in the re-derived result"))
        elif key not in a:
            rows.append((key, "", b[key], math.inf, "not in the original"))
        else:
            rows.append((key, a[key], b[key], number_delta(a[key], b[key]), ""))
    return rows


def _tensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise DataError(f"{path}: unreadable tensors ({e})") from e


def tensor_delta(a, b) -> float:
    """Largest elementwise |b - a| of two tensors of one shape (NaN against NaN counts as 0)."""
    import torch

    a, b = a.double(), b.double()
    if a.numel() == 0:
        return 0.0
    diff = (b - a).abs()
    same = (a == b) | (a.isnan() & b.isnan())
    return float(torch.where(same, torch.zeros_like(diff), diff).max())


def compare_tensors(
    original: dict, rederived: dict
) -> list[tuple[str, object, object, float, str]]:
    """(tensor name, original sum, re-derived sum, max |delta|, note) of every tensor of either."""
    rows = []
    for name in [*original, *(k for k in rederived if k not in original)]:
        a, b = original.get(name), rederived.get(name)
        if b is None:
            rows.append((name, float(a.double().sum()), "", math.inf, "missing in re-derived"))
        elif a is None:
            rows.append((name, "", float(b.double().sum()), math.inf, "not in the original"))
        elif a.shape != b.shape or a.dtype != b.dtype:
            note = f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
            rows.append((name, "", "", math.inf, note))
        else:
            rows.append(
                (name, float(a.double().sum()), float(b.double().sum()), tensor_delta(a, b), "")
            )
    return rows


def compared_file(path: str | Path) -> Path:
    """The file that holds a result's numbers: a model directory's weights, else the file."""
    path = Path(path)
    return path / MODEL_WEIGHTS if path.is_dir() else path


def compare(stage: str, original: str, rederived: str) -> list[Row]:
    """Every number of a re-derived result against the original: JSON files leaf by leaf
    (outside `provenance`), safetensors files and model directories (their weights) tensor by
    tensor."""
    a, b = compared_file(original), compared_file(rederived)
    if a.suffix == ".json":
        found = compare_json(read_json(a, "result"), read_json(b, "re-derived result"))
    elif a.suffix == ".safetensors":
        found = compare_tensors(_tensors(a), _tensors(b))
    else:
        raise DataError(f"{original}: cannot compare (neither JSON, safetensors nor a model)")
    return [Row(stage, str(original), str(rederived), *row) for row in found]


def identical_bytes(original: str | Path, rederived: str | Path) -> bool:
    a, b = compared_file(original), compared_file(rederived)
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


# ---- the report -------------------------------------------------------------------------------


def _number(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(rows: Iterable[Row], path) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        out.writerows([_number(v) for v in astuple(row)] for row in rows)


def read_csv(path) -> list[dict]:
    """The rows of an audit.csv, with `delta` as a float."""
    with open(path, newline="") as f:
        return [{**row, "delta": float(row["delta"])} for row in csv.DictReader(f)]


def code_versions(paths: Iterable[str]) -> list[str]:
    """The code versions that wrote these results (those with a provenance record)."""
    found = []
    for path in paths:
        try:
            found.append(read_provenance(path).get("code_version", "?"))
        except DataError:
            continue
    return sorted(set(found))


def markdown(rows: list[Row], pairs: list[tuple[str, str, str]], audit: dict, run: str) -> str:
    differ = [r for r in rows if r.delta != 0]
    stages = ", ".join(dict.fromkeys(stage for stage, _, _ in pairs))
    verdict = (
        "every number equals the original"
        if not differ
        else f"**{len(differ)} differ**, largest |delta| {max(r.delta for r in differ):g}"
    )
    lines = [
        f"# Audit ({run})",
        "",
        f"{len(pairs)} outputs of a sample of jobs (seed {audit['seed']}, up to "
        f"{audit['samples']} per stage of: {stages}) re-derived from the original inputs; "
        f"{len(rows)} numbers compared: {verdict}.",
        "A tensor counts as one number (its sum; delta: the largest elementwise difference).",
        "Every number is in `audit.csv`.",
    ]
    before = code_versions(original for _, original, _ in pairs)
    after = code_versions(rederived for _, _, rederived in pairs)
    if before != after:
        lines.append(
            f"The originals were written by code {', '.join(before)}; the re-derived results by "
            f"{', '.join(after)} (a JSON result's bytes then differ in that field)."
        )
    lines += [
        "",
        "| stage | file | numbers | max abs delta | identical bytes |",
        "|---|---|---:|---:|---|",
    ]
    for stage, original, rederived in pairs:
        mine = [r for r in rows if r.file == original]
        worst = max((r.delta for r in mine), default=0.0)
        same = "yes" if identical_bytes(original, rederived) else "no"
        lines.append(f"| {stage} | `{original}` | {len(mine)} | {worst:g} | {same} |")
    if differ:
        lines += [
            "",
            "## Differences",
            "",
            "| stage | file | field | original | re-derived | delta | note |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r.stage} | `{r.file}` | `{r.field}` | {_number(r.original)} | "
            f"{_number(r.rederived)} | {r.delta:g} | {r.note} |"
            for r in differ
        ]
    return "\n".join(lines) + "\n"


def audit(pairs: list[tuple[str, str, str]], csv_path, md_path, audit: dict, run: str) -> list:
    """Compare each (stage, original, re-derived) pair; write the CSV of every number and the
    Markdown summary. Returns the rows."""
    rows = [
        row for stage, original, rederived in pairs for row in compare(stage, original, rederived)
    ]
    write_csv(rows, csv_path)
    with atomic_file(md_path) as tmp:
        tmp.write_text(markdown(rows, pairs, audit, run))
    return rows


# ---- polyprune explain ------------------------------------------------------------------------


def read_provenance(path: str | Path) -> dict:
    """The provenance record of a result: a JSON result, a model directory, or an importance
    file (safetensors metadata). DataError, naming the file, for anything else."""
    path = Path(path)
    if path.is_dir():
        meta = read_json(path / MODEL_CONFIG, "model config")
        where = path / MODEL_CONFIG
    elif path.suffix == ".safetensors":
        where = path
        try:
            from safetensors import SafetensorError, safe_open

            with safe_open(str(path), "pt") as f:
                meta = json.loads((f.metadata() or {}).get("meta", "{}"))
        except (SafetensorError, OSError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: unreadable safetensors file ({e})") from e
    else:
        meta, where = read_json(path, "result"), path
    record = meta.get("provenance") if isinstance(meta, dict) else None
    if not isinstance(record, dict):
        gates = path.parent / "gates.json"
        hint = f"; a cell's gated model: see {gates}" if path.is_dir() and gates.exists() else ""
        raise DataError(f"{where}: no provenance record (not a polyprune result){hint}")
    return record


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies under it."""
    from polyprune.provenance import input_key

    return input_key(path)


def _changed(recorded, current) -> bool:
    """Whether `current` differs from `recorded` in a key that `recorded` holds (a step may
    record only some keys of a section)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return any(k not in current or _changed(v, current[k]) for k, v in recorded.items())
    return recorded != current


def config_file(run: str, sections: dict | None) -> tuple[Path | None, str]:
    """The shipped configuration file of `run` (config/*.yaml, tests/configs/*.yaml) and whether
    its sections still equal those the result records."""
    import yaml

    from polyprune.config import ROOT

    shipped = [*sorted((ROOT / "config").glob("*.yaml"))]
    shipped += sorted((ROOT / "tests" / "configs").glob("*.yaml"))
    for path in shipped:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(loaded, dict) or loaded.get("run") != run:
            continue
        if sections is None:
            return path, "the sections it read are not recorded (an older result)"
        changed = [s for s in sections if _changed(sections[s], loaded.get(s))]
        if changed:
            return path, f"{', '.join(changed)} changed in it since: expect other numbers"
        return path, "its sections still equal the recorded ones"
    return None, f"CONFIG: the configuration file of run {run!r}"


def rebuild_command(path: str | Path, run: str, sections: dict | None) -> tuple[str, str]:
    """The command that rebuilds a result from its inputs (run in the workflow's working
    directory, which the recorded paths are relative to), and a note on its config file."""
    from polyprune.config import ROOT

    found, note = config_file(run, sections)
    options = ["--cores 2"]
    if Path.cwd().resolve() != ROOT.resolve():
        options.append(f"--snakefile {_shown(ROOT / 'Snakefile')}")
    if found is None:
        options.append("--configfile CONFIG")
    elif found.resolve() != (ROOT / "config" / "config.yaml").resolve():
        options.append(f"--configfile {_shown(found)}")
    return f"snakemake {' '.join(options)} --force {_shown(Path(path))}", note


def explain(path: str | Path, verify: bool = False) -> str:
    """What produced a result, as text: run, seed, the config sections it read, code version,
    inputs and their digests (with `verify`: whether the files here still have them), packages,
    and the command that rebuilds it."""
    from polyprune.io import file_digest
    from polyprune.provenance import FULL_DIGEST_LIMIT, config_digest

    record = read_provenance(path)
    packages = ", ".join(f"{k} {v}" for k, v in record.get("packages", {}).items())
    sections = record.get("config")
    digest = record.get("config_digest", "?")
    if sections is None:
        checked = "sections not recorded (an older result)"
    elif config_digest(sections) == digest:
        checked = "matches the sections below"
    else:
        checked = "DOES NOT match the sections below"
    lines = [
        f"{_shown(Path(path))}",
        f"  run:      {record.get('run', '?')}",
        f"  seed:     {record.get('seed', '?')}",
        f"  code:     {record.get('code_version', '?')}",
        f"  python:   {record.get('python', '?')}",
        f"  packages: {packages or '-'}",
        f"  config:   sha256 {digest} ({checked})",
    ]
    for name, value in (sections or {}).items():
        lines.append(f"    {name}: {json.dumps(value, sort_keys=True)}")
    if sections == {}:
        lines.append("    (none: the step reads no configuration section)")
    inputs = record.get("inputs", {})
    lines.append("  inputs:" + ("" if inputs else "   none"))
    for name, recorded in inputs.items():
        status = ""
        if verify:
            here = Path(name)
            if not here.exists():
                status = "  (not found here)"
            else:
                same = file_digest(here, FULL_DIGEST_LIMIT) == recorded
                status = "  (unchanged)" if same else "  (CHANGED since)"
        lines.append(f"    {name}  sha256 {recorded}{status}")
    extra = {k: v for k, v in record.items() if k not in EXPLAINED}
    for name, value in extra.items():
        lines.append(f"  {name}: {json.dumps(value, sort_keys=True)}")
    command, note = rebuild_command(path, record.get("run", "?"), sections)
    lines += [f"  rebuild:  {command}", f"            ({note})"]
    return "\n".join(lines) + "\n"


EXPLAINED = {
    "run",
    "seed",
    "code_version",
    "python",
    "packages",
    "config_digest",
    "config",
    "inputs",
}
