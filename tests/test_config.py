import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from polyprune import config as pc
from polyprune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
PAPER = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())


def test_shipped_configs_are_valid():
    pc.validate(copy.deepcopy(DEMO))
    pc.validate(copy.deepcopy(PAPER))
    assert len(pc.study_languages(PAPER)) == 100
    assert [c for c in pc.cells(DEMO) if not c.startswith("ds-")] == [
        "dense",
        "gradient-shared-s50",
        "gradient-nonshared-s50",
        "l0-shared-lam4",
        "l0con-nonshared-s50",
        "l0imp-nonshared-s50",
        "l0impkd-nonshared-s50",
        "distil",
    ]


def broken(edit):
    cfg = copy.deepcopy(DEMO)
    edit(cfg)
    return cfg


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["pruning"].update(algorithms=["magic"]), "pruning.algorithms[0]"),
        (lambda c: c.update(languages=["qaa", "xx"]), "languages"),
        (lambda c: c["world"]["languages"]["qab"].update(family="elvish"), "world"),
        (lambda c: c["pruning"].update(sparsities=[1.0]), "pruning.sparsities[0]"),
        (lambda c: c["pruning"].update(sparsities=[0.5, 0]), "pruning.sparsities[1]"),
        (lambda c: c["pretraining"].pop("lr"), "pretraining.lr"),
        (lambda c: c.pop("importance"), "importance"),
        (lambda c: c["pretraining"].update(steps="many"), "pretraining.steps"),
        (lambda c: c["data"].update(seq_len=64.5), "data.seq_len"),
        (lambda c: c.update(source_language="qzz"), "source_language"),
        (lambda c: c.update(source_language="qab"), "source_language"),
        (lambda c: c["pruning"].update(typo=1), "pruning"),
        (lambda c: c["pretraining"].update(micro_batch_size=5), "pretraining.batch_size"),
        (lambda c: c["finetune"]["max_length"].update(qa=128), "finetune.max_length.qa"),
        (lambda c: c["model"]["shape"].update(init_std=0), "model.shape.init_std"),
        (lambda c: c["finetune"].update(task_grid={"bucc": {}}), "finetune.task_grid"),
        (lambda c: c["pruning"].update(algorithms=["l0", "l0plus"]), "pruning.algorithms[1]"),
        (lambda c: c["pruning"]["l0"].update(lambdas=[0.5, -1]), "pruning.l0.lambdas[1]"),
        (
            lambda c: c["pruning"]["l0"]["hard_concrete"].update(temperature=0),
            "pruning.l0.hard_concrete.temperature",
        ),
        (
            lambda c: c["pruning"]["l0"]["hard_concrete"].update(left=0.1),
            "pruning.l0.hard_concrete.left",
        ),
        (lambda c: c["pruning"]["l0"].update(constraint="soft"), "pruning.l0.constraint"),
        (lambda c: c["distillation"].update(temperature=-2), "distillation.temperature"),
        (lambda c: c["distillation"].update(student_layers=[0, 9]), "distillation.student_layers"),
        (lambda c: c["pruning"].pop("l0"), "pruning.l0"),
        (lambda c: c.pop("distillation"), "distillation"),
        (
            lambda c: c["finetune"].update(ablation_tasks=["xnli", "ner"]),
            "finetune.ablation_tasks[1]",
        ),
        (
            lambda c: c["finetune"].update(task_grid={"xnli": {"zero-shot": {"epochs": [0]}}}),
            "finetune.task_grid.xnli.zero-shot.epochs[0]",
        ),
    ],
)
def test_invalid_config_names_the_key_in_one_line(edit, key):
    with pytest.raises(ConfigError) as info:
        pc.validate(broken(edit))
    message = str(info.value)
    assert message.startswith(f"config key {key}:")
    assert "\n" not in message


def test_workflow_stops_before_any_job_on_a_bad_config(tmp_path):
    bad = broken(lambda c: c["pruning"].update(algorithms=["magic"]))
    bad["run"] = "bad-config"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    snakemake = Path(sys.executable).with_name("snakemake")
    done = subprocess.run(
        [snakemake, "-n", "--cores", "1", "--configfile", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "polyprune: config key pruning.algorithms[0]: 'magic' is not one of"
        " ['gradient', 'l0', 'l0con', 'l0imp', 'l0impkd', 'distil']"
    ]
    assert not (ROOT / "results" / "bad-config").exists()


def broken_paper(edit):
    cfg = copy.deepcopy(PAPER)
    edit(cfg)
    return cfg


def text_corpus(cfg):
    """The paper's config on local text without a language table: any code is a language."""
    cfg["corpus"] = {"source": "text", "path": "/data/text/{lang}.txt"}
    cfg["languages"] = ["en", "de"]


INJECTION = "qzz$(touch PWNED)"


@pytest.mark.parametrize("code", [INJECTION, "en de", "en/../x", "en'", 'de"', "e", "EN"])
def test_language_codes_are_strict(code):
    def listed(c):
        text_corpus(c)
        c["languages"].append(code)

    def source(c):
        text_corpus(c)
        c["source_language"] = code

    for edit, key in [(listed, "languages"), (source, "source_language")]:
        with pytest.raises(ConfigError, match=f"^config key {key}: .* is not a language code"):
            pc.validate(broken_paper(edit))


def test_every_shipped_language_code_is_admitted():
    codes = [row.split("\t")[0] for row in (ROOT / "config" / "xlmr-languages.tsv").open()][1:]
    assert {"zh-Hans", "hi_rom", "my_zaw"} <= set(codes)
    assert all(pc.LANGUAGE_CODE.fullmatch(code) for code in codes)


def test_a_language_table_with_a_bad_code_is_named(tmp_path):
    table = tmp_path / "languages.tsv"
    table.write_text(f"code\tgib\ten\t1.0\n{INJECTION}\t1.0\n")
    cfg = broken_paper(lambda c: c["corpus"].update(languages_table=str(table)))
    with pytest.raises(ConfigError, match=r"^config key corpus\.languages_table: .*languages\.tsv"):
        pc.validate(cfg)


def test_a_world_language_code_must_be_private_use():
    cfg = broken(lambda c: c["world"]["languages"].update({INJECTION: {"family": "aldic"}}))
    with pytest.raises(ConfigError, match=r"^config key world: "):
        pc.validate(cfg)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["tasks"]["sizes"].update(xnlx={"train": 10}), "tasks.sizes.xnlx"),
        (lambda c: c["tasks"]["sizes"]["xquad"].update(train=10), "tasks.sizes.xquad.train"),
        (lambda c: c["tasks"]["sizes"]["xnli"].update(dev=10), "tasks.sizes.xnli.dev"),
        (lambda c: c["tasks"]["sizes"]["xnli"].update(train=-1), "tasks.sizes.xnli.train"),
        (lambda c: c["tasks"]["sizes"]["xnli"].update(train=2.5), "tasks.sizes.xnli.train"),
        (lambda c: c["tasks"]["sizes"]["xnli"].update(test="many"), "tasks.sizes.xnli.test"),
        (lambda c: c["tasks"]["sizes"].update(bucc=200), "tasks.sizes.bucc"),
        (lambda c: c["finetune"].update(retrieval_layer=5), "finetune.retrieval_layer"),
        (lambda c: c["model"]["shape"].update(heads=3), "model.shape.heads"),
        (lambda c: c["base_training"].update(warmup_steps=2401), "base_training.warmup_steps"),
        (lambda c: c["pretraining"].update(warmup_steps=201), "pretraining.warmup_steps"),
        (lambda c: c["pruning"]["dynamic"].update(grid=[0, 0.5, 0.3, 1]), "pruning.dynamic.grid"),
        (lambda c: c["pruning"]["dynamic"].update(grid=[0.1, 0.5, 1]), "pruning.dynamic.grid"),
        (
            lambda c: c["pruning"]["dynamic"].update(table_sparsity=0.4),
            "pruning.dynamic.table_sparsity",
        ),
        (lambda c: c["pruning"]["dynamic"].update(tasks=["xnlx"]), "pruning.dynamic.tasks"),
        (lambda c: c["throughput"].update(seq_len=65), "throughput.seq_len"),
        (
            lambda c: c["pruning"]["dynamic"].update(reference={"cell": "distill"}),
            "pruning.dynamic.reference.cell",
        ),
        (lambda c: c["pruning"]["dynamic"].update(runs=["l0-shared"]), "pruning.dynamic.runs[0]"),
    ],
)
def test_demo_config_checks_name_the_key(edit, key):
    with pytest.raises(ConfigError) as info:
        pc.validate(broken(edit))
    assert str(info.value).startswith(f"config key {key}:")


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["finetune"].update(retrieval_layer=13), "finetune.retrieval_layer"),
        (lambda c: c["corpus"].update(path="/data/cc100/all.txt.xz"), "corpus.path"),
        (lambda c: c["corpus"].update(path="/data/{{lang}}.txt.xz"), "corpus.path"),
        (lambda c: c["corpus"].update(path="/data/{language}.txt.xz"), "corpus.path"),
        (lambda c: c["corpus"].update(path="/data/{lang}-{0}.txt.xz"), "corpus.path"),
        (lambda c: c["corpus"].update(languages_table="/no/such.tsv"), "corpus.languages_table"),
    ],
)
def test_paper_config_checks_name_the_key(edit, key):
    with pytest.raises(ConfigError) as info:
        pc.validate(broken_paper(edit))
    assert str(info.value).startswith(f"config key {key}:")


def test_checks_admit_the_edge_values():
    pc.validate(broken(lambda c: c["finetune"].update(retrieval_layer=4)))
    pc.validate(broken(lambda c: c["pretraining"].update(warmup_steps=100)))
    pc.validate(broken(lambda c: c["tasks"]["sizes"]["xnli"].update(validation=0)))
    pc.validate(broken_paper(lambda c: c["finetune"].update(retrieval_layer=12)))
    pc.validate(broken_paper(lambda c: c["model"].update(base="/models/my-xlmr")))


def test_an_injected_language_code_stops_the_workflow_before_any_job(tmp_path):
    from workflow_runs import TINY, snakemake

    bad = yaml.safe_load(TINY.read_text())
    bad["languages"] = ["qaa", INJECTION]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    workdir = tmp_path / "work"
    workdir.mkdir()
    done = snakemake(workdir, "-n", configfile=path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"polyprune: config key languages: {INJECTION!r} is not a language code (e.g. en, zh-Hans,"
        " hi_rom)"
    ]
    assert not list(tmp_path.rglob("PWNED"))
    assert not (workdir / "results").exists()


def test_task_grid_replaces_the_lists_it_sets():
    finetune = {
        "grid": {"zero-shot": {"lr": [1e-5, 2e-5], "epochs": [5, 10]}},
        "task_grid": {"xnli": {"zero-shot": {"epochs": [2]}}},
    }
    assert pc.grid_points(finetune, "xnli", "zero-shot") == [(1e-5, 2), (2e-5, 2)]
    assert pc.grid_points(finetune, "udpos", "zero-shot") == [
        (1e-5, 5),
        (1e-5, 10),
        (2e-5, 5),
        (2e-5, 10),
    ]


def test_cell_names_round_trip():
    cells = [pc.Cell("gradient", "nonshared", x) for x in (0.5, 0.7, 0.125)]
    cells += [
        pc.Cell("l0imp", "nonshared", dynamic=True),
        pc.Cell("gradient", "shared", 0.3, dynamic=True),
    ]
    cells += [pc.Cell("l0", "shared", lam=lam) for lam in (0.5, 2, 1e-5)]
    cells += [pc.Cell("l0imp", "nonshared", 0.5), pc.Cell("dense"), pc.Cell("distil")]
    for cell in cells:
        assert pc.parse_cell(cell.name) == cell
    assert pc.Cell("gradient", "shared", 0.5).name == "gradient-shared-s50"
    assert pc.Cell("l0", "shared", lam=0.25).name == "l0-shared-lam0p25"
    assert pc.Cell("gradient", "shared", 0.7, dynamic=True).name == "ds-gradient-shared-s70"
    assert pc.Cell("gradient", "shared", dynamic=True).name == "ds-gradient-shared"
    for name in ("gradient-shared-50", "gradient-shared", "ds-dense"):
        with pytest.raises(ValueError):
            pc.parse_cell(name)


def test_dynamic_sparsification_cells_tasks_and_tables():
    assert pc.dynamic_runs(DEMO) == ["ds-gradient-shared", "ds-l0imp-nonshared"]
    cuts = [c for c in pc.cells(DEMO) if c.startswith("ds-")]
    assert cuts == [f"ds-gradient-shared-s{s}" for s in (50, 70, 90)] + [
        f"ds-l0imp-nonshared-s{s}" for s in (50, 70, 90)
    ]
    assert pc.cell_tasks(DEMO, "ds-gradient-shared-s70") == ["xnli"]
    assert pc.cell_modes(DEMO, "ds-gradient-shared-s70") == ["zero-shot"]
    assert pc.cell_tasks(DEMO, "ds-l0imp-nonshared-s50") == ["xnli", "panx"]  # table_tasks
    assert pc.cell_tasks(PAPER, "ds-l0imp-nonshared-s50") == PAPER["finetune"]["tasks"]
    assert pc.cell_modes(DEMO, "ds-l0imp-nonshared-s50") == DEMO["finetune"]["modes"]
    assert pc.table_cells(DEMO, 3) == [
        *pc.table_cells(DEMO, 1),
        "ds-gradient-shared-s50",
        "ds-l0imp-nonshared-s50",
    ]
    assert not any(c.startswith("ds-") for n in (1, 2) for c in pc.table_cells(DEMO, n))


def test_a_ds_run_reads_its_own_keys():
    gradient, l0 = (pc.objective_spec(DEMO, run) for run in pc.dynamic_runs(DEMO))
    assert (gradient["kind"], gradient["trainable"], gradient["dynamic"]) == ("dynamic", False, {})
    assert l0["trainable"] and l0["dynamic"]["constraint_weight"] == 128
    assert l0["families"]["qab"] == "aldic" and l0["grid"] == DEMO["pruning"]["dynamic"]["grid"]
    assert pc.objective_spec(DEMO, "ds-l0imp-nonshared-s50") is None  # a cut trains nothing
    edited = copy.deepcopy(DEMO)
    edited["pruning"]["dynamic"]["constraint_weight"] = 64
    assert pc.objective_spec(edited, "ds-gradient-shared") == gradient
    assert pc.objective_spec(edited, "ds-l0imp-nonshared") != l0


def test_each_algorithm_reads_its_own_keys():
    spec = {cell: pc.objective_spec(DEMO, cell) for cell in pc.cells(DEMO)}
    assert spec["dense"] is None and spec["gradient-shared-s50"] is None
    assert spec["distil"]["kind"] == "distil" and spec["distil"]["layers"] == "every_other"
    vanilla = spec["l0-shared-lam4"]
    assert (vanilla["setting"], vanilla["l0"]["lam"]) == ("shared", 4)
    assert "target_sparsity" not in vanilla["l0"] and "families" not in vanilla
    assert vanilla["hard_concrete"]["beta"] == DEMO["pruning"]["l0"]["hard_concrete"]["temperature"]
    con, imp, kd = (spec[f"{a}-nonshared-s50"] for a in ("l0con", "l0imp", "l0impkd"))
    assert con["l0"]["target_sparsity"] == 0.5 and "diversity" not in con["l0"]
    assert imp["l0"]["diversity"] == 1 and imp["families"]["qab"] == "aldic"
    assert "distillation" not in imp and kd["distillation"]["alpha_ce"] == 5.0
    # a key one algorithm reads changes no other cell's objective
    edited = copy.deepcopy(DEMO)
    edited["pruning"]["l0"]["diversity"] = 2
    changed = [c for c in pc.cells(DEMO) if pc.objective_spec(edited, c) != spec[c]]
    assert changed == ["l0imp-nonshared-s50", "l0impkd-nonshared-s50"]


def test_the_family_prior_needs_every_languages_family():
    cfg = copy.deepcopy(PAPER)
    cfg["pruning"]["algorithms"] = ["l0imp"]
    assert pc.language_families(cfg)["af"] == "Indo-European"
    cfg["corpus"].update(source="text", path="corpus/{lang}.txt", languages_table=None)
    cfg["languages"] = ["en", "sw"]
    cfg["source_language"] = "en"
    with pytest.raises(ConfigError, match=r"^config key pruning.l0.family_prior: no family"):
        pc.validate(cfg)


def test_fine_tuning_seeds_of_the_dense_row_and_of_the_others():
    cfg = copy.deepcopy(DEMO)
    cfg["finetune"].update(seeds=None, dense_seeds=None)
    assert pc.finetune_seeds(cfg, "dense") == pc.finetune_seeds(cfg, "distil") == [cfg["seed"]]
    cfg["finetune"].update(seeds=[3], dense_seeds=[3, 4])
    assert pc.finetune_seeds(cfg, "dense") == [3, 4]
    assert pc.finetune_seeds(cfg, "gradient-shared-s50") == [3]


def test_cells_of_table2_alone_take_the_ablation_tasks():
    cfg = copy.deepcopy(DEMO)
    cfg["finetune"]["ablation_tasks"] = ["panx", "xnli"]
    assert pc.cell_tasks(cfg, "l0con-nonshared-s50") == ["xnli", "panx"]
    assert pc.cell_tasks(cfg, "l0imp-nonshared-s50") == cfg["finetune"]["tasks"]  # in Table 1
    assert pc.table_cells(cfg, 2) == [
        "l0-shared-lam4",
        "l0con-nonshared-s50",
        "l0imp-nonshared-s50",
        "l0impkd-nonshared-s50",
    ]


def test_language_sampling_follows_xlmr():
    probs = pc.sampling_probs({"hi": 100.0, "lo": 1.0}, alpha=0.3)
    assert sum(probs.values()) == pytest.approx(1.0)
    # q = 100/101 and 1/101; p_hi / p_lo = 100 ** 0.3
    assert probs["hi"] / probs["lo"] == pytest.approx(100**0.3)
    assert pc.sampling_probs({"a": 3.0, "b": 1.0}, alpha=1.0) == {"a": 0.75, "b": 0.25}


def test_paper_shards_are_sized_to_what_training_draws():
    sizes = pc.corpus_sizes(PAPER)
    probs = pc.sampling_probs(sizes, 0.3)
    drawn = 150_000 * 2048
    assert pc.train_sequences(PAPER, "en") == pytest.approx(1.1 * probs["en"] * drawn, abs=1)
    assert pc.train_sequences(PAPER, "en") > pc.train_sequences(PAPER, "as")


def sparse(**changes):
    return lambda c: c["sparse_finetuning"].update(changes)


@pytest.mark.parametrize(
    ("config", "edit", "key"),
    [
        (DEMO, sparse(regimes=["zero-shot", "translate-train"]), "sparse_finetuning.regimes[1]"),
        (
            DEMO,
            sparse(schedule={"start": 0.6, "end": 0.1, "every": 5}),
            "sparse_finetuning.schedule.end",
        ),
        (DEMO, sparse(sparsities=[0, 1.0]), "sparse_finetuning.sparsities[1]"),
        (DEMO, sparse(sparsities=[-0.1, 0]), "sparse_finetuning.sparsities[0]"),
        (DEMO, sparse(sparsities=[0.5, 0.7]), "sparse_finetuning.sparsities"),
        (DEMO, sparse(languages=["qaa", "qzz"]), "sparse_finetuning.languages"),
        (DEMO, sparse(languages=["qab"]), "sparse_finetuning.languages"),  # zero-shot needs qaa
        (DEMO, sparse(kinds=["random"]), "sparse_finetuning.kinds[0]"),
        (DEMO, sparse(epochs={"zero-shot": 3}), "sparse_finetuning.epochs.multilingual"),
        (PAPER, sparse(languages=["en", "sw", "xh"]), "sparse_finetuning.languages"),
        (PAPER, sparse(resources="/no/such.tsv"), "sparse_finetuning.resources"),
    ],
)
def test_second_study_checks_name_the_key_in_one_line(config, edit, key):
    cfg = copy.deepcopy(config)
    edit(cfg)
    with pytest.raises(ConfigError) as info:
        pc.validate(cfg)
    message = str(info.value)
    assert message.startswith(f"config key {key}:") and "\n" not in message


def test_second_study_models_test_sets_and_languages():
    assert pc.sparse_variants(DEMO) == ["dense", "unstructured-s70", "structured-s70"]
    assert pc.parse_sparse_variant("structured-s70") == ("structured", 0.7)
    assert pc.parse_sparse_variant("dense") == (None, 0.0)
    assert pc.sparse_test_sets(DEMO) == [
        "clean",
        "char_noise-0p1",
        "casing-upper",
        "unseen_entities",
    ]
    paper = pc.sparse_languages(PAPER)
    assert len(paper) == 40 and "yo" in paper and "en" in paper
    assert "yo" not in pc.study_languages(PAPER)  # the first study's table lacks it


def test_a_resources_table_reads_code_and_size(tmp_path):
    table = tmp_path / "sizes.tsv"
    table.write_text("# source: a test\ncode\tsize\tunit\nqaa\t40000\tsentences\n")
    assert pc.sparse_resources_table(str(table)) == {"qaa": 40000.0}
    table.write_text("code\tgib\nqaa\t1\n")
    with pytest.raises(
        ConfigError, match=r"sparse_finetuning\.resources: .* no table of code and size"
    ):
        pc.sparse_resources_table(str(table))
