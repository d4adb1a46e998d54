"""The configuration: schema validation, languages, and the grid of cells.

Kept free of torch so that the Snakefile (parsed by every job) stays fast.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from polyprune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DENSE = "dense"
# ISO 639 codes, with CC-100's script or romanisation suffixes (zh-Hans, hi_rom); the codes
# name files and appear in job commands, so nothing else gets through
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")

# Published shapes (the models' config.json on the hub), so that sizes need no download.
SHAPES = {
    "xlm-roberta-base": dict(vocab_size=250002, hidden=768, layers=12, heads=12, ffn=3072),
    "xlm-roberta-large": dict(vocab_size=250002, hidden=1024, layers=24, heads=16, ffn=4096),
    "bert-base-multilingual-cased": dict(
        vocab_size=119547,
        hidden=768,
        layers=12,
        heads=12,
        ffn=3072,
        layout="bert",
        max_positions=512,
        type_vocab=2,
        pad_id=0,
        layer_norm_eps=1e-12,
    ),
}


@cache
def _validator():
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(top level)"


def validate(config: dict) -> dict:
    """Check `config` against the schema and the rules the schema cannot state."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(config))
    if error is not None:
        if error.validator == "required":
            missing = re.search(r"'([^']+)' is a required property", error.message)
            path = [*error.absolute_path, missing[1] if missing else "?"]
            raise ConfigError(f"config key {_key(path)}: missing")
        raise ConfigError(f"config key {_key(error.absolute_path)}: {error.message}")
    _check_semantics(config)
    return config


def _check_semantics(config: dict) -> None:
    _check_language_codes(config)
    known = known_languages(config)
    chosen = study_languages(config)
    unknown = [lang for lang in chosen if known is not None and lang not in known]
    if unknown:
        raise ConfigError(f"config key languages: unknown language(s) {unknown}")
    if config["source_language"] not in chosen:
        raise ConfigError(
            f"config key source_language: {config['source_language']!r} is not among languages"
        )
    scratch = config["model"]["base"] == "scratch"
    if scratch and "shape" not in config["model"]:
        raise ConfigError("config key model.shape: missing (needed when model.base is scratch)")
    if scratch and "base_training" not in config:
        raise ConfigError("config key base_training: missing (needed when model.base is scratch)")
    if scratch and config["tokenizer"]["source"] == "pretrained":
        raise ConfigError("config key tokenizer.source: a scratch model has no tokenizer to reuse")
    if config["tokenizer"]["source"] == "train" and config["corpus"]["source"] == "cc100":
        raise ConfigError("config key tokenizer.source: train a tokenizer on local text only")
    if config["corpus"]["source"] == "synthetic":
        _check_world(config)
    else:
        _check_corpus_path(config["corpus"].get("path"))
    if scratch:
        _check_shape(config["model"]["shape"], config["data"])
    finetune = config.get("finetune")
    if finetune:
        _check_retrieval_layer(config["model"], finetune["retrieval_layer"])
    if scratch and finetune:
        limit = config["model"]["shape"]["max_positions"] - 2
        for kind in ("pair", "token", "qa"):
            if finetune["max_length"][kind] > limit:
                raise ConfigError(
                    f"config key finetune.max_length.{kind}: at most model.shape.max_positions"
                    f" - 2 = {limit}"
                )
    throughput = config.get("throughput")
    if (
        scratch
        and throughput
        and throughput["seq_len"] > config["model"]["shape"]["max_positions"] - 2
    ):
        raise ConfigError(
            "config key throughput.seq_len: at most model.shape.max_positions - 2"
            f" = {config['model']['shape']['max_positions'] - 2}"
        )
    if finetune and "tasks" not in config:
        raise ConfigError("config key tasks: missing (needed for finetune)")
    _check_task_sizes(config.get("tasks", {}).get("sizes", {}))
    for mode in finetune["modes"] if finetune else []:
        for key in ("grid", "selection"):
            if mode not in finetune[key]:
                raise ConfigError(f"config key finetune.{key}.{mode}: missing")
    _check_algorithms(config)
    _check_dynamic(config)
    _check_sparse_finetuning(config)
    for key in ("base_training", "pretraining"):
        t = config.get(key)
        if t and t["batch_size"] % t["micro_batch_size"]:
            raise ConfigError(f"config key {key}.batch_size: not a multiple of micro_batch_size")
        if t and t["warmup_steps"] > t["steps"]:
            raise ConfigError(f"config key {key}.warmup_steps: more than steps ({t['steps']})")


def check_grid(grid: Sequence[float], key: str = "pruning.dynamic.grid") -> list[float]:
    """The inference sparsities s_0 = 0 < s_1 < ... < s_n = 1 (Appendix D)."""
    values = [float(s) for s in grid]
    increasing = all(b > a for a, b in itertools.pairwise(values))
    if len(values) < 2 or values[0] != 0 or values[-1] != 1 or not increasing:
        raise ConfigError(f"config key {key}: sparsities increasing from 0 to 1, got {list(grid)}")
    return values


def _check_dynamic(config: dict) -> None:
    dynamic = config["pruning"].get("dynamic")
    if not dynamic:
        return
    check_grid(dynamic["grid"])
    if dynamic["table_sparsity"] not in dynamic["grid"][1:-1]:
        raise ConfigError(
            "config key pruning.dynamic.table_sparsity: one of the grid's sparsities between 0"
            " and 1"
        )
    if any(r.startswith("l0") for r in dynamic["runs"]) and "l0" not in config["pruning"]:
        raise ConfigError("config key pruning.l0: missing (needed for L0-based DS runs)")
    reference = (dynamic.get("reference") or {}).get("cell")
    if reference is not None and reference not in cells(config):
        raise ConfigError(
            f"config key pruning.dynamic.reference.cell: {reference!r} is not a cell of this run"
        )
    finetune = config.get("finetune") or {}
    for key, within in (("tasks", "tasks"), ("table_tasks", "tasks"), ("modes", "modes")):
        extra = [x for x in dynamic.get(key) or [] if x not in finetune.get(within, [])]
        if extra:
            raise ConfigError(f"config key pruning.dynamic.{key}: {extra} not in finetune.{within}")


def _check_sparse_finetuning(config: dict) -> None:
    sparse = config.get("sparse_finetuning")
    if not sparse:
        return
    if "tasks" not in config:
        raise ConfigError("config key tasks: missing (needed for sparse_finetuning)")
    sparsities = sparse["sparsities"]
    if 0 not in sparsities or len(sparsities) < 2:
        raise ConfigError(
            "config key sparse_finetuning.sparsities: 0 (the dense model each change is measured"
            f" against) and at least one more, got {sparsities}"
        )
    schedule = sparse["schedule"]
    if schedule["end"] < schedule["start"]:
        raise ConfigError(
            f"config key sparse_finetuning.schedule.end: {schedule['end']} precedes"
            f" schedule.start ({schedule['start']})"
        )
    if sparse["languages"] != "all":
        have = ner_languages(config)
        missing = [lang for lang in sparse["languages"] if lang not in have]
        if missing:
            raise ConfigError(f"config key sparse_finetuning.languages: no NER data for {missing}")
    source = ner_source(config)
    if "zero-shot" in sparse["regimes"] and source not in sparse_languages(config):
        raise ConfigError(
            f"config key sparse_finetuning.languages: the zero-shot regime trains on {source!r}"
        )
    if sparse["resources"]:
        table = sparse_resources_table(sparse["resources"])
        missing = [lang for lang in sparse_languages(config) if lang not in table]
        if missing:
            raise ConfigError(
                f"config key sparse_finetuning.resources: {sparse['resources']} has no size for"
                f" {missing}"
            )


def ner_languages(config: dict) -> list[str]:
    """The languages with NER (PAN-X) data: the demo world's, or XTREME's 40 under the study's
    codes (tasks.language_codes)."""
    if config["tasks"]["source"] == "synthetic":
        return list(config["world"]["languages"])
    from polyprune.tasks.pipeline import study_codes
    from polyprune.tasks.sources import PANX_LANGS

    rename = study_codes(config["tasks"].get("language_codes"))
    return [rename.get(lang, lang) for lang in PANX_LANGS]


def ner_source(config: dict) -> str:
    """The language the zero-shot regime trains on: the world's source, or XTREME's English."""
    if config["tasks"]["source"] == "synthetic":
        return config["world"]["source"]
    from polyprune.tasks.sources import SOURCE_LANG

    return SOURCE_LANG


def sparse_languages(config: dict) -> list[str]:
    chosen = config["sparse_finetuning"]["languages"]
    return ner_languages(config) if chosen == "all" else list(chosen)


def sparse_resources_table(path: str) -> dict[str, float]:
    """A TSV of each language's pretraining data (`code`, `size`; other columns kept for
    people, e.g. the unit and source)."""
    full = Path(path) if Path(path).is_absolute() else ROOT / path
    try:
        with open(full, newline="") as fh:
            lines = (line for line in fh if not line.startswith("#"))
            rows = list(csv.DictReader(lines, delimiter="\t"))
        return {row["code"]: float(row["size"]) for row in rows}
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ConfigError(
            f"config key sparse_finetuning.resources: {path} is no table of code and size ({e})"
        ) from e


def sparse_variants(config: dict) -> list[str]:
    """The second study's models per regime and seed: `dense` (sparsity 0) and
    `<kind>-s<percent>` for each kind and nonzero sparsity."""
    sparse = config["sparse_finetuning"]
    nonzero = [s for s in sparse["sparsities"] if s > 0]
    dense = [DENSE] if len(nonzero) < len(sparse["sparsities"]) else []
    return dense + [f"{kind}-s{_number(100 * s)}" for kind in sparse["kinds"] for s in nonzero]


def parse_sparse_variant(name: str) -> tuple[str | None, float]:
    """(kind, sparsity) of a second-study model name."""
    if name == DENSE:
        return None, 0.0
    kind, percent = name.rsplit("-s", 1)
    return kind, float(percent) / 100


def sparse_test_sets(config: dict) -> list[str]:
    """The test sets of the second study: `clean` and one per perturbation (robustness)."""
    spec = config["sparse_finetuning"]["perturbations"]
    return [
        "clean",
        *[f"char_noise-{_number(rate)}" for rate in spec.get("char_noise", [])],
        *[f"casing-{how}" for how in spec.get("casing", [])],
        *(["unseen_entities"] if spec.get("unseen_entities") else []),
    ]


def _check_algorithms(config: dict) -> None:
    algorithms = config["pruning"]["algorithms"]
    if any(a in LEARNED for a in algorithms) and "l0" not in config["pruning"]:
        raise ConfigError("config key pruning.l0: missing (needed for the L0 algorithms)")
    if (DISTIL in algorithms or "l0impkd" in algorithms) and "distillation" not in config:
        raise ConfigError("config key distillation: missing (needed for distil and l0impkd)")
    if (
        any(a in ("l0imp", "l0impkd") for a in algorithms)
        and config["pruning"]["l0"]["family_prior"]
    ):
        language_families(config)
    layers = (config.get("distillation") or {}).get("student_layers")
    depth = config["model"]["shape"]["layers"] if "shape" in config["model"] else None
    if depth is None and config["model"]["base"] in SHAPES:
        depth = SHAPES[config["model"]["base"]]["layers"]
    if isinstance(layers, list) and depth is not None and max(layers) >= depth:
        raise ConfigError(
            f"config key distillation.student_layers: the model has layers 0-{depth - 1}"
        )


def _check_language_codes(config: dict) -> None:
    listed = [] if config["languages"] == "all" else config["languages"]
    for key, codes in [("languages", listed), ("source_language", [config["source_language"]])]:
        for code in codes:
            if not LANGUAGE_CODE.fullmatch(code):
                raise ConfigError(
                    f"config key {key}: {code!r} is not a language code (e.g. en, zh-Hans, hi_rom)"
                )
    table = config["corpus"].get("languages_table")
    if config["corpus"]["source"] != "synthetic" and table:
        for code in _language_table(table):
            if not LANGUAGE_CODE.fullmatch(code):
                raise ConfigError(
                    f"config key corpus.languages_table: {table} has {code!r}, not a language code"
                )


def _check_corpus_path(path: str | None) -> None:
    if not path:
        raise ConfigError("config key corpus.path: missing (needed for cc100 and text corpora)")
    try:
        per_language = path.format(lang="a") != path.format(lang="b")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            f"config key corpus.path: only {{lang}} may be in braces ({type(e).__name__}: {e})"
        ) from e
    if not per_language:
        raise ConfigError(
            "config key corpus.path: has no {lang}, so every language would read the same file"
        )


def _check_shape(shape: dict, data: dict) -> None:
    if shape["hidden"] % shape["heads"]:
        raise ConfigError(
            f"config key model.shape.heads: {shape['heads']} does not divide hidden"
            f" ({shape['hidden']})"
        )
    if shape["max_positions"] < data["seq_len"] + 2:
        raise ConfigError("config key model.shape.max_positions: must be at least seq_len + 2")


def _check_retrieval_layer(model: dict, layer: int) -> None:
    """The layer must exist: in the scratch shape, or in a published model's (if known)."""
    base = model["base"]
    if base == "scratch":
        layers = model["shape"]["layers"]
    else:
        layers = SHAPES.get(base.removeprefix("FacebookAI/"), {}).get("layers")
    if layers is not None and layer > layers:
        raise ConfigError(
            f"config key finetune.retrieval_layer: {layer}, but the model has {layers} layers"
        )


def _check_task_sizes(sizes: dict) -> None:
    from polyprune.synth.tasks import SPLITS

    for task, splits in sizes.items():
        if task not in SPLITS:
            raise ConfigError(f"config key tasks.sizes.{task}: unknown task, not in {list(SPLITS)}")
        for split in splits:
            if split not in SPLITS[task]:
                raise ConfigError(
                    f"config key tasks.sizes.{task}.{split}: no such split of {task}, only"
                    f" {list(SPLITS[task])}"
                )


def _check_world(config: dict) -> None:
    from polyprune.synth import World

    if "world" not in config:
        raise ConfigError("config key world: missing (needed for the synthetic corpus)")
    try:
        World.from_config(config["world"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"config key world: {e}") from e
    if config["world"]["source"] != config["source_language"]:
        raise ConfigError("config key source_language: must be the world's source language")


def load(path: str | Path) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path}: {e}") from e
    return validate(config)


# ---- languages --------------------------------------------------------------------------------


@cache
def _language_table(path: str) -> dict[str, dict]:
    table = Path(path) if Path(path).is_absolute() else ROOT / path
    try:
        with open(table, newline="") as fh:
            return {row["code"]: row for row in csv.DictReader(fh, delimiter="\t")}
    except (OSError, KeyError, UnicodeDecodeError) as e:
        raise ConfigError(f"config key corpus.languages_table: {table}: unreadable ({e!r})") from e


def known_languages(config: dict) -> list[str] | None:
    """The languages the corpus source offers (None: any, e.g. local text without a table)."""
    corpus = config["corpus"]
    if corpus["source"] == "synthetic":
        return list(config.get("world", {}).get("languages", {}))
    if corpus.get("languages_table"):
        return list(_language_table(corpus["languages_table"]))
    return None


def study_languages(config: dict) -> list[str]:
    if config["languages"] == "all":
        known = known_languages(config)
        if known is None:
            raise ConfigError("config key languages: 'all' needs corpus.languages_table")
        return known
    return list(config["languages"])


def corpus_sizes(config: dict) -> dict[str, float] | None:
    """Published corpus sizes per language (for sampling and Figure 2), if the config has a
    language table; otherwise None (sizes are then counted in the shards)."""
    table = config["corpus"].get("languages_table")
    if not table:
        return None
    column = config["corpus"].get("size_column", "gib")
    rows = _language_table(table)
    return {lang: float(rows[lang][column]) for lang in study_languages(config)}


def sampling_probs(sizes: dict[str, float], alpha: float) -> dict[str, float]:
    """XLM-R's language sampling: q_i = n_i / sum n, p_i = q_i^alpha / sum_j q_j^alpha."""
    total = sum(sizes.values())
    weights = {lang: (n / total) ** alpha for lang, n in sizes.items()}
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def train_sequences(config: dict, lang: str) -> int | None:
    """How many training sequences to shard for `lang`: data.max_train_sequences if set, else
    (with published corpus sizes) what continued pretraining will draw under the sampling, plus
    10%; None means the whole corpus."""
    cap = config["data"].get("max_train_sequences")
    sizes = corpus_sizes(config)
    if cap or sizes is None:
        return cap
    p = sampling_probs(sizes, config["data"]["sampling_alpha"])[lang]
    t = config["pretraining"]
    return math.ceil(1.1 * p * t["steps"] * t["batch_size"])


# ---- cells ------------------------------------------------------------------------------------


def component_weights(head_dim: int, weights: dict) -> dict[str, float]:
    """Size of one component in units of d (Appendix B): a head removes a head_dim-wide slice of
    Wq, Wk, Wv and Wo; an FFN unit a column of W1 and a row of W2; an embedding rank is weighted
    by the config (the paper: 1)."""
    return {
        "heads": weights.get("head_per_dim", 4) * head_dim,
        "ffn": weights.get("ffn", 2),
        "emb": weights.get("emb", 1),
    }


# How an algorithm makes its cells (docs/method.md): gradient prunes by importance and continues
# pretraining with the gates frozen; the L0 family learns its gates during continued pretraining
# (vanilla L0 shared, named by its λ; improved L0 non-shared, named by its target: l0con with the
# sparsity constraint, l0imp with the diversity loss as well, l0impkd with distillation as well);
# distil is DistilXLM-R, a half-depth student.
GRADIENT = "gradient"
DISTIL = "distil"
VANILLA_L0 = "l0"
IMPROVED_L0 = ("l0con", "l0imp", "l0impkd")
LEARNED = (VANILLA_L0, *IMPROVED_L0)
PRUNING = (GRADIENT, *LEARNED)  # the algorithms that prune the base model's own layers
# Table 1's rows and Table 2's (the improved-L0 ablation); cells of Table 2 alone are fine-tuned
# on finetune.ablation_tasks
TABLE1_ALGORITHMS = (DENSE, DISTIL, GRADIENT, VANILLA_L0, "l0imp")
TABLE2_ALGORITHMS = LEARNED


@dataclass(frozen=True)
class Cell:
    algorithm: str
    setting: str | None = None  # shared | nonshared; None for dense and distil
    sparsity: float | None = None  # the target (gradient, improved L0, a DS model's cut)
    lam: float | None = None  # vanilla L0's λ (its sparsity is a result)
    dynamic: bool = False  # cut from a Dynamic Sparsification model (no sparsity: the DS run)

    @property
    def name(self) -> str:
        return cell_name(self)


def _number(x: float) -> str:
    return f"{round(x, 6):g}".replace(".", "p")


def cell_name(cell: Cell) -> str:
    """`dense`, `distil`, `gradient-shared-s50`, `l0imp-nonshared-s50`, `l0-shared-lam0p5`;
    Dynamic Sparsification: `ds-gradient-shared` (the DS model), `ds-gradient-shared-s70` (cut
    at 70%); values that are not whole keep their decimals."""
    if cell.setting is None:
        return cell.algorithm
    prefix = "ds-" if cell.dynamic else ""
    if cell.dynamic and cell.sparsity is None:
        return f"{prefix}{cell.algorithm}-{cell.setting}"
    size = f"lam{_number(cell.lam)}" if cell.lam is not None else f"s{_number(cell.sparsity * 100)}"
    return f"{prefix}{cell.algorithm}-{cell.setting}-{size}"


def parse_cell(name: str) -> Cell:
    if name in (DENSE, DISTIL):
        return Cell(name)
    m = re.fullmatch(
        r"(ds-)?([a-z0-9]+)-(shared|nonshared)(?:-(s|lam)([0-9p]+(?:e[-+]?[0-9]+)?))?", name
    )
    if not m or (m[4] is None and not m[1]):
        raise ValueError(f"not a cell name: {name!r}")
    dynamic = m[1] is not None
    if m[4] is None:
        return Cell(m[2], m[3], dynamic=True)
    value = float(m[5].replace("p", "."))
    if m[4] == "lam":
        return Cell(m[2], m[3], lam=value, dynamic=dynamic)
    return Cell(m[2], m[3], sparsity=value / 100, dynamic=dynamic)


def dense_pretraining(config: dict) -> bool:
    """Whether the dense row is continued-pretrained like the pruned cells (the demo's
    from-scratch model) or is the base model as it is (the paper: the public checkpoint)."""
    return (config.get("dense") or {}).get("continued_pretraining", True)


def identity(config: dict, settings: dict | None = None) -> dict:
    """What every result records about the configuration that produced it: run, seed, the
    settings it read (the whole config if not given) and their digest."""
    from polyprune.provenance import config_digest

    read = config if settings is None else settings
    return {
        "run": config["run"],
        "seed": config["seed"],
        "config_digest": config_digest(read),
        "config": read,
    }


def step_settings(config: dict, *keys: str, **derived) -> dict:
    """The keys of the config a step reads (`section` or `section.key`, nested as in the
    config; absent ones left out), what the workflow derived from others for this job (e.g. a
    cell's objective), and its identity."""
    chosen: dict = dict(derived)
    for key in keys:
        *sections, last = key.split(".")
        node, into = config, chosen
        for section in sections:
            node, into = node.get(section) or {}, into.setdefault(section, {})
        if last in node:
            into[last] = node[last]
    return {**chosen, "identity": identity(config, chosen)}


def grid_points(finetune: dict, train_set: str, mode: str) -> list[tuple[float, int]]:
    """The (lr, epochs) points of a training set in a mode: `finetune.grid`, with the lists that
    `finetune.task_grid.<train_set>.<mode>` sets in their place."""
    points = {
        **finetune["grid"][mode],
        **finetune.get("task_grid", {}).get(train_set, {}).get(mode, {}),
    }
    return [(lr, epochs) for lr in points["lr"] for epochs in points["epochs"]]


def algorithm_cells(config: dict, algorithm: str) -> list[Cell]:
    p = config["pruning"]
    if algorithm == GRADIENT:
        return [Cell(algorithm, s, x) for s in p["settings"] for x in p["sparsities"]]
    if algorithm == VANILLA_L0:
        return [Cell(algorithm, "shared", lam=lam) for lam in p["l0"]["lambdas"]]
    if algorithm in IMPROVED_L0:
        return [Cell(algorithm, "nonshared", x) for x in p["sparsities"]]
    return [Cell(algorithm)]


def dynamic_runs(config: dict) -> list[str]:
    """The Dynamic Sparsification models to train, as cell names (`ds-gradient-shared`)."""
    dynamic = config["pruning"].get("dynamic") or {}
    return [f"ds-{run}" for run in dynamic.get("runs", [])]


def dynamic_cells(config: dict) -> list[str]:
    """A cell per DS model and grid sparsity strictly between 0 and 1."""
    dynamic = config["pruning"].get("dynamic") or {}
    cut = [s for s in dynamic.get("grid", []) if 0 < s < 1]
    return [
        cell_name(Cell(run.algorithm, run.setting, s, dynamic=True))
        for run in map(parse_cell, dynamic_runs(config))
        for s in cut
    ]


def cells(config: dict) -> list[str]:
    """Every cell of the study: the dense row, each listed algorithm's cells, then the cuts of
    the Dynamic Sparsification models."""
    algorithms = config["pruning"]["algorithms"]
    made = [c.name for a in algorithms for c in algorithm_cells(config, a)]
    return [DENSE, *made, *dynamic_cells(config)]


def table_cells(config: dict, table: int) -> list[str]:
    """The cells that Table 1, 2 or 3 shows, in the config's order: Table 3 is Table 1 with the
    DS models cut at `pruning.dynamic.table_sparsity`."""
    algorithms = TABLE1_ALGORITHMS if table in (1, 3) else TABLE2_ALGORITHMS
    chosen = [c for c in cells(config) if parse_cell(c).algorithm in algorithms]
    rows = [c for c in chosen if not parse_cell(c).dynamic]
    if table == 3:
        rows += [c for c in chosen if _table3_cut(config, parse_cell(c))]
    return rows


def _table3_cut(config: dict, cell: Cell) -> bool:
    dynamic = config["pruning"].get("dynamic") or {}
    return cell.dynamic and cell.sparsity == dynamic.get("table_sparsity")


def cell_tasks(config: dict, cell: str) -> list[str]:
    """The evaluation tasks a cell is fine-tuned and tested on: finetune.tasks; for a cell that
    only Table 2 shows, finetune.ablation_tasks when set; for a DS cut, pruning.dynamic.tasks,
    or at Table 3's sparsity pruning.dynamic.table_tasks when set."""
    finetune = config["finetune"]
    spec = parse_cell(cell)
    if spec.dynamic:
        dynamic = config["pruning"]["dynamic"]
        table = _table3_cut(config, spec)
        chosen = dynamic.get("table_tasks") or finetune["tasks"] if table else dynamic["tasks"]
        return [t for t in finetune["tasks"] if t in chosen]
    ablation = finetune.get("ablation_tasks")
    if ablation and not spec.dynamic and cell not in table_cells(config, 1):
        return [t for t in finetune["tasks"] if t in ablation]
    return list(finetune["tasks"])


def cell_modes(config: dict, cell: str) -> list[str]:
    """The fine-tuning modes of a cell: finetune.modes; for a DS cut off Table 3's sparsity,
    pruning.dynamic.modes."""
    spec = parse_cell(cell)
    if spec.dynamic and not _table3_cut(config, spec):
        return [
            m for m in config["finetune"]["modes"] if m in config["pruning"]["dynamic"]["modes"]
        ]
    return list(config["finetune"]["modes"])


def finetune_seeds(config: dict, cell: str) -> list[int]:
    """The fine-tuning seeds of a cell: finetune.dense_seeds for the dense row if set, else
    finetune.seeds, else the run's seed."""
    finetune = config["finetune"]
    seeds = finetune.get("seeds") or [config["seed"]]
    return (finetune.get("dense_seeds") or seeds) if cell == DENSE else seeds


def language_rows(config: dict) -> list[dict]:
    """Table 4: each study language's code, name, family ("Missing" where its source has none,
    as in the paper) and corpus size with its unit."""
    if config["corpus"]["source"] == "synthetic":
        world = config["world"]["languages"]
        return [
            {
                "code": lang,
                "name": world[lang].get("name", lang),
                "family": world[lang].get("family") or "Missing",
                "corpus": world[lang].get("corpus_sentences"),
                "unit": "sentences",
            }
            for lang in study_languages(config)
        ]
    table = config["corpus"].get("languages_table")
    rows = _language_table(table) if table else {}
    column = config["corpus"].get("size_column", "gib")
    return [
        {
            "code": lang,
            "name": rows.get(lang, {}).get("name", lang),
            "family": rows.get(lang, {}).get("family") or "Missing",
            "corpus": rows.get(lang, {}).get(column),
            "unit": column,
        }
        for lang in study_languages(config)
    ]


def language_families(config: dict) -> dict[str, str]:
    """Each study language's family (Table 4): the demo world's, or the language table's
    `family` column."""
    if config["corpus"]["source"] == "synthetic":
        world = config["world"]["languages"]
        found = {lang: world[lang].get("family") for lang in study_languages(config)}
    else:
        table = config["corpus"].get("languages_table")
        rows = _language_table(table) if table else {}
        found = {lang: rows.get(lang, {}).get("family") for lang in study_languages(config)}
    missing = [lang for lang, family in found.items() if not family]
    if missing:
        raise ConfigError(
            f"config key pruning.l0.family_prior: no family for {missing} (world.languages or"
            " the language table's family column)"
        )
    return found


def objective_spec(config: dict, name: str) -> dict | None:
    """What a cell's continued pretraining minimises (pipeline.make_objective), from the keys
    its algorithm reads; None for MLM with the model's own gates (dense, gradient)."""
    cell = parse_cell(name)
    if cell.dynamic:  # a DS model's training; its cuts train nothing
        return dynamic_spec(config, cell) if cell.sparsity is None else None
    if cell.algorithm in (DENSE, GRADIENT):
        return None
    distillation = {k: v for k, v in config["distillation"].items() if k != "student_layers"}
    if cell.algorithm == DISTIL:
        layers = config["distillation"]["student_layers"]
        return {"kind": "distil", "layers": layers, "distillation": distillation}
    p, l0 = config["pruning"], config["pruning"]["l0"]
    hard_concrete = dict(l0["hard_concrete"])
    hard_concrete["beta"] = hard_concrete.pop("temperature")
    settings = {"alpha_lr": l0["alpha_lr"], "alpha_only_steps": l0["alpha_only_steps"]}
    spec = {
        "kind": "l0",
        "setting": cell.setting,
        "scope": p["scope"],
        "component_weights": p["component_weights"],
        "hard_concrete": hard_concrete,
        "l0": settings,
    }
    if cell.algorithm == VANILLA_L0:
        settings["lam"] = cell.lam
        return spec
    settings.update(
        target_sparsity=cell.sparsity,
        constraint=l0["constraint"],
        constraint_weight=l0["constraint_weight"],
    )
    if l0["constraint"] == "lagrangian":
        settings["lagrangian_lr"] = l0["lagrangian_lr"]
    if cell.algorithm in ("l0imp", "l0impkd"):
        settings["diversity"] = l0["diversity"]
        if l0["family_prior"]:
            spec["families"] = language_families(config)
    if cell.algorithm == "l0impkd":
        spec["distillation"] = distillation
    return spec


def dynamic_spec(config: dict, run: Cell) -> dict:
    """What a Dynamic Sparsification model's training minimises (pipeline.make_objective; the
    workflow adds the importance files, `scores`): gradient-based DS with frozen gates, or
    L0-based DS (l0imp) training them with the constraint weight, diversity and family prior."""
    p = config["pruning"]
    dynamic, l0 = p["dynamic"], p.get("l0") or {}
    hard_concrete = l0.get("hard_concrete", {"left": -0.1, "right": 1.1, "temperature": 2 / 3})
    trainable = run.algorithm != GRADIENT
    settings = {"constraint_weight": dynamic["constraint_weight"]}
    spec = {
        "kind": "dynamic",
        "setting": run.setting,
        "grid": dynamic["grid"],
        "trainable": trainable,
        "normalize": config["importance"]["normalize"],
        "rank_by": p["rank_by"],
        "component_weights": p["component_weights"],
        "hard_concrete": {k: hard_concrete[k] for k in ("left", "right", "temperature")},
        "dynamic": settings,
    }
    if trainable:
        settings.update(alpha_lr=l0["alpha_lr"], diversity=l0["diversity"])
        if run.setting == "nonshared" and l0["family_prior"]:
            spec["families"] = language_families(config)
    else:
        del settings["constraint_weight"]  # frozen gates: no loss on them
    return spec
