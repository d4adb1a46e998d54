"""The whole DAG end to end on a tiny configuration (tests/configs/tiny.yaml)."""

import csv
import json
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from workflow_runs import ROOT, TINY, copy_run, edited_config, jobs_run, rules_run, snakemake, tail

from polyprune.model import load_model

CELLS = ["dense", "gradient-shared-s50", "gradient-nonshared-s50"]
LANGS = ["qaa", "qba", "qca"]


@pytest.fixture(scope="module")
def study(tiny_run):
    return tiny_run / "results" / "tiny"


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.slow
def test_cells_are_pruned_to_the_target_and_load_back(study):
    for cell in CELLS[1:]:
        gates = read(study / "cells" / cell / "gates.json")
        for gate_set in gates["gate_sets"].values():
            assert gate_set["encoder_sparsity"] == 0.5
    assert set(read(study / "cells/gradient-nonshared-s50/gates.json")["gate_sets"]) == set(LANGS)
    models = {cell: load_model(study / "cells" / cell / "pruned") for cell in CELLS}
    count = {
        cell: read(study / "cells" / cell / "params.json")["stored"]["total"] for cell in CELLS
    }
    assert count["gradient-shared-s50"] < count["dense"] == count["gradient-nonshared-s50"]
    assert models["gradient-shared-s50"].gate_table is None  # physically pruned
    assert set(models["gradient-nonshared-s50"].gate_table.names) == set(LANGS)
    # each language ranks its own scores (the tiny model's gates may still coincide: with two
    # heads per layer, layer-normalised head scores outrank every FFN unit in all languages)
    scores = [load_file(study / "importance" / f"{lang}.safetensors") for lang in LANGS]
    assert any(not torch.equal(scores[0][k], other[k]) for other in scores[1:] for k in scores[0])


@pytest.mark.slow
def test_mlm_results_per_language_with_provenance(study):
    for cell in CELLS:
        result = read(study / "cells" / cell / "mlm.json")
        assert set(result["loss"]) == set(LANGS)
        for losses in result["loss"].values():
            assert 0 < losses["after"] < 20 and 0 < losses["before"] < 20
        prov = result["provenance"]
        assert prov["run"] == "tiny" and len(prov["config_digest"]) == 64
        assert prov["code_version"] and prov["packages"]["torch"]
        assert all(len(digest) == 64 for digest in prov["inputs"].values())


@pytest.mark.slow
def test_table1_has_every_cell_task_and_mode(study):
    with open(study / "tables" / "table1.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["mode"], r["model"]) for r in rows] == [
        (mode, cell) for mode in ("zero-shot", "translate-train-all") for cell in CELLS
    ]
    for row in rows:
        assert all(row[t] != "-" for t in ("XNLI", "NER", "XQuAD", "MLQA", "BUCC", "Tatoeba"))
    text = (study / "tables" / "table1.md").read_text()
    assert "Chance levels" in text and "gradient-nonshared-s50" in text
    selected = read(study / "finetune/dense/xnli/zero-shot/seed0/selected.json")
    assert {p["lr"] for p in selected["grid"]} == {0.001, 0.0003}
    paws = read(study / "finetune/dense/pawsx/zero-shot/seed0/selected.json")
    assert [p["lr"] for p in paws["grid"]] == [0.001]  # finetune.task_grid
    assert selected["selection"]["on"] == "source"
    assert set(selected["validation"]) == {LANGS[0], "avg"}  # only what selection reads
    tta = read(study / "finetune/dense/xnli/translate-train-all/seed0/selected.json")
    assert set(tta["validation"]) == {*LANGS, "avg"}


@pytest.mark.slow
def test_table4_and_figures_2_3_7_come_with_their_data(study):
    with open(study / "tables" / "table4.csv") as fh:
        languages = list(csv.DictReader(fh))
    assert [r["code"] for r in languages] == LANGS
    assert [r["family"] for r in languages] == ["aldic", "vetric", "sunic"]
    with open(study / "tables" / "table4-prior.csv") as fh:
        prior = list(csv.reader(fh))
    assert prior[0] == ["language", *LANGS]
    assert [row[1:] for row in prior[1:]] == [["0", "1", "1"], ["1", "0", "1"], ["1", "1", "0"]]
    with open(study / "figures" / "figure7.csv") as fh:
        distances = list(csv.DictReader(fh))
    assert {r["cell"] for r in distances} == {"gradient-nonshared-s50"}
    assert len(distances) == len(LANGS) ** 2
    assert all(float(r["hamming"]) == 0 for r in distances if r["language_a"] == r["language_b"])
    for figure in ("figure2", "figure3", "figure7"):
        assert (study / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
        assert (study / "figures" / f"{figure}.pdf").read_bytes()[:4] == b"%PDF"
    with open(study / "figures" / "figure2.csv") as fh:
        losses = list(csv.DictReader(fh))
    assert {(r["cell"], r["language"]) for r in losses} == {
        (cell, lang) for cell in CELLS[1:] for lang in LANGS
    }
    with open(study / "figures" / "figure3.csv") as fh:
        layers = list(csv.DictReader(fh))
    assert len(layers) == len(CELLS[1:]) * 2 * 2  # cells x (heads, ffn) x layers


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure_with_labels(tiny_run, tmp_path):
    done = snakemake(tiny_run, "--report", str(tmp_path / "report.zip"))
    assert done.returncode == 0, tail(done)
    archive = zipfile.ZipFile(tmp_path / "report.zip")
    names = {Path(name).name for name in archive.namelist()}
    tables = {f"table{n}.{ext}" for n in (1, 4) for ext in ("md", "csv")}
    figures = {f"figure{n}.{ext}" for n in (2, 3, 7) for ext in ("png", "csv")}
    assert tables | figures | {"selected.json", "mlm.json", "params.json"} <= names
    html = archive.read(next(n for n in archive.namelist() if n.endswith("report.html"))).decode()
    for label in ("Table 1", "Table 4", "Figure 2", "Figure 3", "Figure 7", "algorithm", "setting"):
        assert label in html, label
    assert "gradient-nonshared-s50" in html and "translate-train-all" in html


@pytest.mark.slow
def test_nothing_left_to_do_and_a_damaged_shard_is_named(tiny_run, tmp_path):
    assert "Nothing to be done" in snakemake(tiny_run, "-n").stdout
    workdir = copy_run(tiny_run, tmp_path / "run")
    study = workdir / "results" / "tiny"
    shard = study / "shards" / "qba" / "train.npy"
    shard.write_bytes(shard.read_bytes()[:-64])
    model = study / "cells" / "dense" / "model"
    # --force reruns the target's own job and nothing else (`--forcerun RULE...` would swallow
    # the target as another rule name and rerun every cell's pretraining)
    done = snakemake(workdir, "--force", str(model.relative_to(workdir)))
    assert done.returncode != 0
    log = workdir / "logs" / "tiny" / "pretrain" / "dense.log"
    assert "shards/qba/train.npy" in log.read_text(), done.stdout[-3000:]
    assert not model.exists()  # no half-written output


def gates_match(model, gates: dict) -> bool:
    """The model's gate table keeps what gates.json says it keeps, per gate set and layer."""
    table = model.gate_table
    for name, kept in gates["gate_sets"].items():
        row = table.index(name)
        for i, (heads, ffn) in enumerate(zip(kept["heads_kept"], kept["ffn_kept"])):
            found = getattr(table, f"heads_{i}")[row], getattr(table, f"ffn_{i}")[row]
            if (int(found[0].count_nonzero()), int(found[1].count_nonzero())) != (heads, ffn):
                return False
    return True


@pytest.mark.slow
def test_an_edited_pruning_key_retrains_the_cells_from_scratch(tiny_run, tmp_path):
    workdir = copy_run(tiny_run, tmp_path / "run")
    config = edited_config(tmp_path / "edited.yaml", pruning={"rank_by": "score_per_weight"})
    models = [f"results/tiny/cells/{cell}/model" for cell in CELLS[1:]]
    done = snakemake(workdir, *models, configfile=config)
    assert done.returncode == 0, tail(done)
    assert sorted(rules_run(done)) == ["pretrain", "pretrain", "prune", "prune"]
    for cell in CELLS[1:]:
        assert "resumed" not in (workdir / "logs/tiny/pretrain" / f"{cell}.log").read_text()
        gates = read(workdir / "results/tiny/cells" / cell / "gates.json")
        assert gates["rank_by"] == "score_per_weight"
        assert gates_match(load_model(workdir / "results/tiny/cells" / cell / "model"), gates)


@pytest.mark.slow
def test_an_edited_data_key_retrains_the_base_and_dense_models(tiny_run, tmp_path):
    workdir = copy_run(tiny_run, tmp_path / "run")
    config = edited_config(tmp_path / "edited.yaml", data={"mlm_probability": 0.2})
    dense = "results/tiny/cells/dense/model"
    done = snakemake(workdir, dense, configfile=config)
    assert done.returncode == 0, tail(done)
    assert {"base_model", "pretrain"} <= set(rules_run(done))
    for log in ("base_model.log", "pretrain/dense.log"):
        assert "resumed" not in (workdir / "logs/tiny" / log).read_text()
    before, after = load_model(tiny_run / dense), load_model(workdir / dense)
    assert not torch.equal(before.embed.tokens.weight, after.embed.tokens.weight)


@pytest.mark.slow
def test_two_runs_of_one_config_give_the_same_bytes(tiny_run, tmp_path):
    """Another working directory and checkout path, the same config: every corpus, tokenizer,
    shard, model, gates file, score and table is byte for byte the same."""
    done = snakemake(tmp_path)
    assert done.returncode == 0, tail(done)
    runs = [tiny_run / "results" / "tiny", tmp_path / "results" / "tiny"]
    files = [sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()) for run in runs]
    assert files[0] == files[1]
    differ = [f for f in files[0] if (runs[0] / f).read_bytes() != (runs[1] / f).read_bytes()]
    assert not differ


def planned(workdir, tmp_path, **sections) -> list[tuple[str, dict]]:
    done = snakemake(workdir, "-n", configfile=edited_config(tmp_path / "edited.yaml", **sections))
    assert done.returncode == 0, tail(done)
    return jobs_run(done)


@pytest.mark.slow
def test_a_new_sparsity_plans_only_its_own_cells(tiny_run, tmp_path):
    jobs = planned(tiny_run, tmp_path, pruning={"sparsities": [0.5, 0.7]})
    cells = {wildcards.get("cell") for _, wildcards in jobs}
    assert cells == {"gradient-shared-s70", "gradient-nonshared-s70", None}
    assert {rule for rule, w in jobs if "cell" not in w} == {
        "table1",
        "subnetworks",  # Figure 7 takes the new non-shared cell
        "figure7",
        "figure2",  # and Figures 2 and 3 every pruned cell
        "figure3",
        "all",
    }
    assert {"prune", "pretrain", "finetune", "select", "retrieval"} <= {rule for rule, _ in jobs}


@pytest.mark.slow
def test_a_new_learning_rate_plans_only_its_grid_points(tiny_run, tmp_path):
    grid = yaml.safe_load(TINY.read_text())["finetune"]["grid"]
    lrs = grid["translate-train-all"]["lr"]
    grid = {**grid, "translate-train-all": {**grid["translate-train-all"], "lr": [*lrs, 0.01]}}
    jobs = planned(tiny_run, tmp_path, finetune={"grid": grid})
    finetuned = {(w["mode"], w["lr"]) for rule, w in jobs if rule == "finetune"}
    assert finetuned == {("translate-train-all", "0.01")}
    assert {rule for rule, _ in jobs} == {"finetune", "select", "table1", "figure2", "all"}
    assert all(w["mode"] == "translate-train-all" for rule, w in jobs if rule == "select")


@pytest.mark.slow
def test_a_second_seed_for_the_dense_row_plans_only_its_runs(tiny_run, tmp_path):
    jobs = planned(tiny_run, tmp_path, finetune={"dense_seeds": [0, 1]})
    trained = {(rule, w["cell"], w["seed"]) for rule, w in jobs if rule in ("finetune", "select")}
    assert {cell for _, cell, _ in trained} == {"dense"}
    assert {seed for _, _, seed in trained} == {"1"}
    assert {rule for rule, _ in jobs} == {"finetune", "select", "table1", "figure2", "all"}


@pytest.mark.slow
def test_a_key_that_no_step_reads_plans_nothing(tiny_run, tmp_path):
    assert planned(tiny_run, tmp_path, corpus={"size_column": "tokens_m"}) == []


LEARNED = ["l0-shared-lam1", "l0con-nonshared-s50", "l0imp-nonshared-s50", "l0impkd-nonshared-s50"]


@pytest.mark.slow
def test_learned_and_distilled_cells_fill_tables_1_and_2(tiny_run, tmp_path):
    """The other algorithms on a copy of the tiny run: planned alone (nothing finished reruns),
    then every row of Tables 1 and 2 with the sparsity and parameters it reached."""
    algorithms = ["gradient", "l0", "l0con", "l0imp", "l0impkd", "distil"]
    config = edited_config(
        tmp_path / "algorithms.yaml",
        pruning={"algorithms": algorithms},
        finetune={"tasks": ["xnli", "tatoeba"], "ablation_tasks": ["xnli"]},
    )
    workdir = copy_run(tiny_run, tmp_path / "run")
    tables = ["results/tiny/tables/table1.md", "results/tiny/tables/table2.md"]
    done = snakemake(workdir, "-n", *tables, configfile=config)
    assert done.returncode == 0, tail(done)
    planned = {w.get("cell") for rule, w in jobs_run(done) if rule == "pretrain"}
    assert planned == {*LEARNED, "distil"}
    done = snakemake(workdir, *tables, configfile=config)
    assert done.returncode == 0, tail(done)
    study = workdir / "results" / "tiny"
    with open(study / "tables" / "table1.csv") as fh:
        table1 = {(r["mode"], r["model"]): r for r in csv.DictReader(fh)}
    with open(study / "tables" / "table2.csv") as fh:
        table2 = {(r["mode"], r["model"]): r for r in csv.DictReader(fh)}
    rows1 = [*CELLS, "l0-shared-lam1", "l0imp-nonshared-s50", "distil"]
    assert sorted(table1) == sorted(
        (m, c) for m in ("zero-shot", "translate-train-all") for c in rows1
    )
    assert sorted(table2) == sorted(
        (m, c) for m in ("zero-shot", "translate-train-all") for c in LEARNED
    )
    assert table1[("zero-shot", "dense")]["Sparsity %"] == "0.0"
    assert table1[("zero-shot", "gradient-shared-s50")]["Sparsity %"] == "50.0"
    assert table1[("zero-shot", "distil")]["Sparsity %"] == "50.0"  # half of the layers
    assert all(row["XNLI"] != "-" for row in [*table1.values(), *table2.values()])
    assert "Tatoeba" not in table2[("zero-shot", "l0con-nonshared-s50")]  # ablation tasks only
    distil = load_model(study / "cells/distil/pruned")
    assert distil.cfg.layers == 1 and distil.gate_table is None
    shared = load_model(study / "cells/l0-shared-lam1/pruned")
    assert shared.gate_table is None  # physically pruned to its learned gates
    for cell in LEARNED[1:]:
        model = load_model(study / "cells" / cell / "pruned")
        assert set(model.gate_table.names) == set(LANGS)
        values = torch.cat([t.flatten() for t in model.gate_table.buffers()])
        assert set(values.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.slow
def test_dynamic_sparsification_fills_table3_figures_4_to_6_and_throughput(tiny_run, tmp_path):
    """Two DS models on a copy of the tiny run, cut at two sparsities: planned alone (nothing
    finished reruns), then Table 3's DS rows, Figures 4-6 and the throughput table."""
    dynamic = {
        "runs": ["gradient-shared", "l0imp-nonshared"], "grid": [0, 0.5, 0.75, 1],
        "constraint_weight": 128, "table_sparsity": 0.5, "tasks": ["xnli"], "modes": ["zero-shot"],
        "reference": {"name": "a published model", "params": 60000, "xnli": 40.0, "source": "x"},
    }  # fmt: skip
    tiny = yaml.safe_load(TINY.read_text())
    config = edited_config(
        tmp_path / "ds.yaml",
        pruning={**tiny["pruning"], "dynamic": dynamic},
        finetune={"tasks": ["xnli", "tatoeba"]},
        throughput=dict(seq_len=16, cpu_batch=1, cpu_threads=1, gpu_batch=8, warmup=1, repeats=3),
    )
    workdir = copy_run(tiny_run, tmp_path / "run")
    tables = ("tables/table3.md", "tables/table5.md", "tables/throughput.csv")
    targets = [f"results/tiny/{t}" for t in tables]
    targets += [f"results/tiny/figures/figure{n}.png" for n in (4, 5, 6)]
    done = snakemake(workdir, "-n", *targets, configfile=config)
    assert done.returncode == 0, tail(done)
    planned = rules_run(done)
    assert "pretrain" not in planned and "prune" not in planned
    assert planned.count("ds_train") == 2 and planned.count("ds_cut") == 4
    done = snakemake(workdir, *targets, configfile=config)
    assert done.returncode == 0, tail(done)
    study = workdir / "results" / "tiny"
    with open(study / "tables" / "table3.csv") as fh:
        table3 = {(r["mode"], r["model"]) for r in csv.DictReader(fh)}
    ds_rows = {"ds-gradient-shared-s50", "ds-l0imp-nonshared-s50"}
    assert table3 == {
        (m, c) for m in ("zero-shot", "translate-train-all") for c in [*CELLS, *ds_rows]
    }
    ranks = []
    for cell in ("ds-gradient-shared-s50", "ds-gradient-shared-s75"):
        ranks.append(read(study / "cells" / cell / "params.json")["stored"]["embedding_rank"])
        assert load_model(study / "cells" / cell / "pruned").gate_table is None
    assert ranks[1] <= ranks[0] <= 32  # the embedding is factorised, its ranks pruned by rank
    nonshared = load_model(study / "cells/ds-l0imp-nonshared-s75/pruned")
    assert set(nonshared.gate_table.names) == set(LANGS)
    with open(study / "figures" / "figure5.csv") as fh:
        shares = list(csv.DictReader(fh))
    assert {(r["run"], float(r["sparsity"])) for r in shares} == {
        (run, s) for run in dynamic["runs"] for s in (0.5, 0.75)
    }
    with open(study / "tables" / "throughput.csv") as fh:
        speed = list(csv.DictReader(fh))
    assert {r["cell"] for r in speed} >= {"dense", *ds_rows}
    assert all(r["setting"] == "cpu" and float(r["sequences_per_s"]) > 0 for r in speed)
    measured = {r["cell"]: r["measured"] for r in speed}
    assert measured["ds-l0imp-nonshared-s50"] == "qaa subnetwork"
    with open(study / "figures" / "figure4.csv") as fh:
        curves = list(csv.DictReader(fh))
    assert {r["measure"] for r in curves} == {"XNLI accuracy", "parameters (M)", "CPU sequences/s"}
    for n in (4, 5, 6):
        assert (study / "figures" / f"figure{n}.pdf").read_bytes()[:4] == b"%PDF"
    with open(study / "tables" / "table5.csv") as fh:
        table5 = list(csv.DictReader(fh))
    assert table5[0]["model"] == "a published model" and table5[0]["XNLI (zero-shot)"] == "40.0"
    assert [r["model"].rsplit("-s", 1)[0] for r in table5[1:]] == sorted(
        f"ds-{run}" for run in dynamic["runs"]
    )


@pytest.mark.slow
def test_the_paper_config_plans_every_row_of_tables_1_and_2(tmp_path):
    paper = ROOT / "config" / "paper.yaml"
    done = snakemake(tmp_path, "-n", configfile=paper)
    assert done.returncode == 0, tail(done)
    jobs = jobs_run(done)
    pretrained = {w["cell"] for rule, w in jobs if rule == "pretrain"}
    assert pretrained == {
        "gradient-shared-s50",
        "gradient-nonshared-s50",
        "l0-shared-lam1",
        "l0con-nonshared-s50",
        "l0imp-nonshared-s50",
        "l0impkd-nonshared-s50",
        "distil",
    }  # the dense row is the public checkpoint
    assert {"table1", "table2"} <= {rule for rule, _ in jobs}
    runs = {"ds-gradient-shared", "ds-l0imp-nonshared"}
    assert {w["dsrun"] for rule, w in jobs if rule == "ds_train"} == runs
    cuts = {w["cell"] for rule, w in jobs if rule == "ds_cut"}
    assert cuts == {f"{run}-s{10 * k}" for run in runs for k in range(1, 10)}
    assert {w["cell"] for rule, w in jobs if rule == "select"} == {"dense", *pretrained, *cuts}
    planned = {rule for rule, _ in jobs}
    assert {"table3", "table5", "bench_throughput", "figure4", "figure5", "figure6"} <= planned
    # the second study: every (regime, variant, seed) model of mBERT, scored, in 40 languages
    sparse = yaml.safe_load(paper.read_text())["sparse_finetuning"]
    expected = {
        (regime, variant, seed)
        for regime in sparse["regimes"]
        for variant in ["dense", *(f"{k}-s{10 * n}" for k in sparse["kinds"] for n in range(1, 10))]
        for seed in map(str, sparse["seeds"])
    }
    for rule in ("sparse_finetune", "sparse_eval"):
        found = {(w["regime"], w["variant"], w["seed"]) for r, w in jobs if r == rule}
        assert found == expected and len(found) == 114, rule
    assert {"sparse_base", "sparse_task", "sparse_tests", "sparse_f1"} <= planned
    assert {"sparse_resources", "sparse_robustness", "sparse_exemplars"} <= planned


@pytest.mark.slow
def test_the_second_study_sparsifies_while_fine_tuning_and_writes_its_tables(tiny_run, tmp_path):
    """The second study on a copy of the tiny run: planned alone (nothing of the first study
    reruns), then every model, test set, table and figure, with measured sparsities."""
    sparse = {
        "model": "base", "revision": None, "languages": "all",
        "regimes": ["zero-shot", "multilingual"], "kinds": ["unstructured", "structured"],
        "scope": "layer", "sparsities": [0, 0.5], "seeds": [0, 1], "lr": 0.002,
        "epochs": {"zero-shot": 2, "multilingual": 1}, "batch_size": 8, "eval_batch_size": 16,
        "max_length": 32, "schedule": {"start": 0.0, "end": 0.5, "every": 1},
        "perturbations": {
            "seed": 0, "char_noise": [0.2], "casing": ["lower"], "unseen_entities": True,
        },
        "groups": 2, "resources": None,
    }  # fmt: skip
    config = edited_config(tmp_path / "sparse.yaml", sparse_finetuning=sparse)
    workdir = copy_run(tiny_run, tmp_path / "run")
    done = snakemake(workdir, "-n", configfile=config)
    assert done.returncode == 0, tail(done)
    planned = rules_run(done)
    assert {rule for rule in planned if rule != "all"} == {
        "sparse_task", "sparse_tests", "sparse_finetune", "sparse_eval", "sparse_f1",
        "sparse_resources", "sparse_robustness", "sparse_exemplars",
    }  # fmt: skip
    assert planned.count("sparse_finetune") == 2 * 3 * 2
    done = snakemake(workdir, configfile=config)
    assert done.returncode == 0, tail(done)
    study = workdir / "results" / "tiny"
    for seed in (0, 1):
        for variant, target in (("dense", 0.0), ("unstructured-s50", 0.5), ("structured-s50", 0.5)):
            run = study / "sparse" / "multilingual" / variant / f"seed{seed}"
            scores = read(run / "scores.json")
            assert scores["target"] == target and abs(scores["sparsity"] - target) < 0.05
            assert set(scores["test"]) == {
                "clean",
                "char_noise-0p2",
                "casing-lower",
                "unseen_entities",
            }
            assert set(scores["test"]["clean"]) == {*LANGS, "avg"}
    masks = study / "sparse/zero-shot/unstructured-s50/seed0/model/masks.safetensors"
    assert len(load_file(masks)) == 2 * 6  # six matrices per layer
    gated = load_model(study / "sparse/zero-shot/structured-s50/seed0/model")
    assert gated.gate_table.names == ["shared"]
    with open(study / "tables" / "sparse-f1.csv") as fh:
        f1 = list(csv.DictReader(fh))
    assert {(r["regime"], r["kind"], float(r["sparsity"])) for r in f1} == {
        (regime, kind, s)
        for regime in ("zero-shot", "multilingual")
        for kind in ("unstructured", "structured")
        for s in (0.0, 0.5)
    }
    assert {r["group"] for r in f1} == {"low", "high"}
    with open(study / "tables" / "sparse-deltas.csv") as fh:
        deltas = list(csv.DictReader(fh))
    assert len(deltas) == 4 and "r_pretraining" in deltas[0] and "r_ner_train" in deltas[0]
    with open(study / "tables" / "sparse-exemplars.csv") as fh:
        exemplars = list(csv.DictReader(fh))
    assert len(exemplars) == 2 * 2 * 4 * len(LANGS)  # regimes x sparse variants x sets x langs
    for name in ("sparse-f1", "sparse-resources"):
        assert (study / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert (study / "tables" / "sparse-robustness.md").read_text().count("unseen_entities") == 6
    done = snakemake(workdir, "--report", str(tmp_path / "report.zip"), configfile=config)
    assert done.returncode == 0, tail(done)
    archive = zipfile.ZipFile(tmp_path / "report.zip")
    names = [Path(name).name for name in archive.namelist()]
    assert names.count("scores.json") == 12
    for name in ("sparse-f1.md", "sparse-f1.png", "sparse-resources.png", "sparse-deltas.md"):
        assert name in names, name
    assert {"sparse-robustness.md", "sparse-exemplars.md", "table1.md", "figure7.png"} <= set(names)
