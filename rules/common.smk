import json
import os
import re
import shlex
import sys
from types import SimpleNamespace

# polyprune runs from this checkout, whether or not it is installed in the job's environment
SRC = f"{workflow.basedir}/src"
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

from polyprune import config as polyconfig
from polyprune.tasks.spec import MODES, RETRIEVAL_TASKS, evaluated_by, training_sets

try:
    polyconfig.validate(config)
except polyconfig.ConfigError as error:
    sys.exit(f"polyprune: {error}")

RUN = config["run"]
OUT = f"results/{RUN}"
LOGS = f"logs/{RUN}"
LANGS = polyconfig.study_languages(config)
CELLS = polyconfig.cells(config)
DS_RUNS = polyconfig.dynamic_runs(config)
DS_CELLS = [c for c in CELLS if polyconfig.parse_cell(c).dynamic]  # cut from a DS model
MADE_CELLS = [c for c in CELLS if c not in DS_CELLS]  # made by pruning (and pretraining)
NONSHARED = [c for c in MADE_CELLS if polyconfig.parse_cell(c).setting == "nonshared"]
SCRATCH = config["model"]["base"] == "scratch"
SYNTHETIC = config["corpus"]["source"] == "synthetic"
SIZES = polyconfig.corpus_sizes(config)
ALL = "all"


def _choice(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    lang=_choice(LANGS),
    scores=_choice([*LANGS, ALL]),
    cell=_choice(CELLS),
    dsrun=_choice(DS_RUNS or ["-"]),


def settings(*keys, **derived):
    """The config keys a step reads (`section` or `section.key`), what the workflow derived
    for the job (None: nothing), plus run, seed and their digest, as JSON. Passed as a param,
    so that a step reruns when (and only when) a key it reads changes; what is particular to
    one job (a cell's sparsity, a grid point) comes from its wildcards."""
    derived = {k: v for k, v in derived.items() if v is not None}
    return json.dumps(polyconfig.step_settings(config, *keys, **derived), sort_keys=True)


PYTHON = (
    "python"  # the rule's conda environment
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else sys.executable
)


LAUNCH = f"{workflow.basedir}/workflow/scripts/launch.sh"
CLI = ["-m", "polyprune.cli"]


def launcher(wildcards, resources):
    """How a training step starts (workflow/scripts/launch.sh): one process, torchrun over the
    GPUs of the allocation, or, on several nodes, one torchrun per node under `resources.mpi`."""
    if int(resources.get("nodes", 1)) > 1:
        if "mpi" not in resources.keys():
            raise WorkflowError("a multi-node training job needs the `mpi` resource (srun ...)")
        return f"{resources.mpi} {shlex.join(['bash', LAUNCH, 'gpu', PYTHON, *CLI])}"
    processes = str(max(1, int(resources.get("gpu", 0))))
    return shlex.join(["bash", LAUNCH, processes, PYTHON, *CLI])


def all_cores():
    """Every core of a local run, so that a timing job runs alone; 1 where the executor sets no
    total (Slurm: the profile gives such a job a whole node)."""
    try:
        return workflow.cores or 1
    except WorkflowError:
        return 1


def corpus_location(lang):
    if SYNTHETIC:
        return f"{OUT}/corpus/{lang}.txt"
    return config["corpus"]["path"].format(lang=lang)


def corpus_input(wildcards):
    """The corpus file as a workflow input when it is a file (so that a missing one is named
    before any job runs); URLs are read by the job itself."""
    location = corpus_location(wildcards.lang)
    return [] if location.startswith(("http://", "https://")) else [location]


def shards(langs):
    return [f"{OUT}/shards/{lang}" for lang in langs]


def score_langs(scores):
    return LANGS if scores == ALL else [scores]


def is_gradient(cell):
    """Whether a cell is made by gradient pruning (importance -> prune -> pretraining)."""
    spec = polyconfig.parse_cell(cell)
    return spec.algorithm == polyconfig.GRADIENT and not spec.dynamic


def cell_init(wildcards):
    """What a cell's continued pretraining starts from: the gradient-pruned model, or the base
    model (dense; learned gates and distillation start from it)."""
    if is_gradient(wildcards.cell):
        return f"{OUT}/cells/{wildcards.cell}/init"
    return f"{OUT}/base"


def cell_model(wildcards):
    """A cell's model before export: its continued pretraining's, or the base model as it is
    for a dense row without continued pretraining (`dense.continued_pretraining`)."""
    if wildcards.cell == polyconfig.DENSE and not polyconfig.dense_pretraining(config):
        return f"{OUT}/base"
    if wildcards.cell in DS_CELLS:
        return f"{OUT}/cells/{wildcards.cell}/cut"
    return f"{OUT}/cells/{wildcards.cell}/model"


def study_outputs():
    per_cell = ["pruned", "mlm.json", "params.json"]
    outputs = [f"{OUT}/cells/{cell}/{name}" for cell in CELLS for name in per_cell]
    if config.get("finetune"):
        outputs += [f"{OUT}/tables/table{n}.md" for n in (1, 2) if TABLE_CELLS[n]]
        outputs += [f"{OUT}/tables/table3.md"] if set(TABLE_CELLS[3]) & set(DS_CELLS) else []
        outputs += [f"{OUT}/tables/table5.md"] if FIGURE_CELLS[4] and "reference" in DYNAMIC else []
    outputs.append(f"{OUT}/tables/table4.md")
    outputs += [f"{OUT}/tables/throughput.csv"] if config.get("throughput") else []
    outputs += [f"{OUT}/figures/figure{n}.png" for n, cells in FIGURE_CELLS.items() if cells]
    return outputs + (SPARSE_OUTPUTS if SPARSE else [])


def cell_scores(wildcards):
    """Importance files a cell's gates come from: all languages together (shared) or one per
    language (non-shared)."""
    spec = polyconfig.parse_cell(wildcards.cell)
    if spec.setting == "shared":
        return {"shared": f"{OUT}/importance/{ALL}.safetensors"}
    return {lang: f"{OUT}/importance/{lang}.safetensors" for lang in LANGS}


def ds_scores(wildcards):
    """The importance files of a Dynamic Sparsification run's gates (as a cell's)."""
    return cell_scores(SimpleNamespace(cell=wildcards.dsrun))


def ds_run(cell):
    """The DS model that a DS cell is cut from."""
    spec = polyconfig.parse_cell(cell)
    return f"ds-{spec.algorithm}-{spec.setting}"


# ---- fine-tuning and Table 1 ----
FINETUNE = config.get("finetune")
TASKS = FINETUNE["tasks"] if FINETUNE else []
TRAIN_SETS = training_sets(TASKS)
CELL_TASKS = {cell: polyconfig.cell_tasks(config, cell) if FINETUNE else [] for cell in CELLS}
TABLE_CELLS = {n: polyconfig.table_cells(config, n) for n in (1, 2, 3)}
# the cells each figure draws: Figure 2 the pruned cells with XNLI translate-train-all scores,
# Figure 3 the pruned cells of the base model's depth, Figures 4-6 the cuts of the Dynamic
# Sparsification models (4: with their XNLI scores and throughput), Figure 7 the non-shared cells
PRUNED_CELLS = [c for c in MADE_CELLS if polyconfig.parse_cell(c).algorithm in polyconfig.PRUNING]
DYNAMIC = config["pruning"].get("dynamic") or {}
DS_MODE = DYNAMIC["modes"][0] if DYNAMIC else None  # the mode of Figure 4's XNLI scores
# Table 5's reference: a cell of the run (its scores and counts are inputs), or published numbers
TABLE5_REFERENCE = [r["cell"] for r in [DYNAMIC.get("reference") or {}] if "cell" in r]
FIGURE_CELLS = {
    2: [
        c
        for c in PRUNED_CELLS
        if "xnli" in CELL_TASKS[c] and "translate-train-all" in (FINETUNE or {}).get("modes", [])
    ],
    3: PRUNED_CELLS,
    4: (
        DS_CELLS
        if FINETUNE and "xnli" in DYNAMIC.get("tasks", []) and config.get("throughput")
        else []
    ),
    5: DS_CELLS,
    6: DS_CELLS,
    7: NONSHARED,
}
# the keys that the language table (Table 4, Figure 2) reads
LANGUAGE_KEYS = [
    "languages",
    "corpus.source",
    *(["world.languages"] if SYNTHETIC else ["corpus.languages_table", "corpus.size_column"]),
]
NEEDED_TASKS = list(dict.fromkeys([*TRAIN_SETS, *TASKS]))


wildcard_constraints:
    task=_choice(NEEDED_TASKS),
    train_set=_choice(TRAIN_SETS),
    mode=_choice(MODES),
    lr="[0-9.e+-]+",
    epochs="[0-9]+",
    seed="[0-9]+",


def grid(train_set, mode):
    return [(f"{lr:g}", ep) for lr, ep in polyconfig.grid_points(FINETUNE, train_set, mode)]


def finetune_tasks(wildcards):
    """The task folders a fine-tuning job reads: its training set and the tasks it serves."""
    served = evaluated_by(wildcards.train_set, CELL_TASKS[wildcards.cell])
    return list(dict.fromkeys([wildcards.train_set, *served]))


def cell_results(cell):
    """A cell's scores: one selected grid point per training set and mode, and retrieval."""
    tasks = CELL_TASKS[cell]
    selected = [
        f"{OUT}/finetune/{cell}/{train_set}/{mode}/seed{seed}/selected.json"
        for train_set in training_sets(tasks)
        for mode in polyconfig.cell_modes(config, cell)
        for seed in polyconfig.finetune_seeds(config, cell)
    ]
    retrieval = [
        f"{OUT}/finetune/{cell}/{task}/retrieval.json" for task in tasks if task in RETRIEVAL_TASKS
    ]
    return selected + retrieval


def table_inputs(n):
    """Table n's scores and the parameter counts of its cells and of the dense model."""
    cells = TABLE_CELLS[n]
    return {
        "results": [path for cell in cells for path in cell_results(cell)],
        "params": [
            f"{OUT}/cells/{cell}/params.json" for cell in dict.fromkeys([polyconfig.DENSE, *cells])
        ],
    }


# ---- the report (`snakemake --report results/<run>/report.zip`) ----
CAPTIONS = f"{workflow.basedir}/workflow/report"


def cell_labels(cell):
    spec = polyconfig.parse_cell(cell)
    target = "" if spec.sparsity is None else f"{spec.sparsity:.0%}"
    return {
        "cell": cell,
        "algorithm": spec.algorithm,
        "setting": spec.setting or "",
        "sparsity": target if spec.lam is None else f"λ {spec.lam:g}",
    }


def in_report(path, item, caption, **labels):
    """An output that the report shows, under `item` (Table n, Figure n, or a result kind)."""
    category = "Tables" if item.startswith("Table") else "Figures"
    return report(
        path,
        caption=f"{CAPTIONS}/{caption}.rst",
        category=category,
        subcategory=item,
        labels={"item": item, **labels},
    )


def result_in_report(path, caption, category, **extra):
    """A per-cell result in the report, labelled by cell, algorithm, setting and sparsity (and
    `extra` labels, wildcards filled in)."""
    return report(
        path,
        caption=f"{CAPTIONS}/{caption}.rst",
        category=category,
        subcategory="{cell}",
        labels=lambda w: {
            **cell_labels(w.cell),
            **{k: v.format(**dict(w.items())) for k, v in extra.items()},
        },
    )


# ---- the second study: sparsification during fine-tuning (docs/second-study.md) ----
SPARSE = config.get("sparse_finetuning")
SPARSE_LANGS = polyconfig.sparse_languages(config) if SPARSE else []
SPARSE_VARIANTS = polyconfig.sparse_variants(config) if SPARSE else []
SPARSE_TESTS = polyconfig.sparse_test_sets(config) if SPARSE else []
SPARSE_OWN_MODEL = bool(SPARSE) and SPARSE["model"] != "base"  # a hub or local checkpoint
SPARSE_MODEL = f"{OUT}/sparse/base" if SPARSE_OWN_MODEL else f"{OUT}/base"
SPARSE_TOKENIZER = f"{OUT}/sparse/tokenizer" if SPARSE_OWN_MODEL else f"{OUT}/tokenizer"
SPARSE_RUN = f"{OUT}/sparse/{{regime}}/{{variant}}/seed{{seed}}"


wildcard_constraints:
    regime=_choice(SPARSE["regimes"] if SPARSE else ["-"]),
    variant=_choice(SPARSE_VARIANTS or ["-"]),


def sparse_runs(name):
    """`name` (a file of SPARSE_RUN) of every regime, model variant and seed (none without
    the second study)."""
    if not SPARSE:
        return []
    return [
        f"{OUT}/sparse/{regime}/{variant}/seed{seed}/{name}"
        for regime in SPARSE["regimes"]
        for variant in SPARSE_VARIANTS
        for seed in SPARSE["seeds"]
    ]


def sparse_train_settings(wildcards):
    """A second-study model reads the schedule and scope only when it is pruned."""
    keys = ["lr", f"epochs.{wildcards.regime}", "batch_size", "max_length"]
    if wildcards.variant != polyconfig.DENSE:
        keys += ["schedule", "scope"]
    return settings(*[f"sparse_finetuning.{key}" for key in keys])


# the keys that the second study's analysis reads (language groups and resource sizes)
SPARSE_ANALYSIS_KEYS = [
    "sparse_finetuning.groups",
    "sparse_finetuning.resources",
    "sparse_finetuning.model",
    *LANGUAGE_KEYS,
]
SPARSE_OUTPUTS = [
    f"{OUT}/tables/sparse-f1.md",
    f"{OUT}/figures/sparse-f1.png",
    f"{OUT}/figures/sparse-resources.png",
    f"{OUT}/tables/sparse-deltas.md",
    f"{OUT}/tables/sparse-robustness.md",
    f"{OUT}/tables/sparse-exemplars.md",
]
