"""The whole DAG end to end on a tiny configuration (tests/configs/tiny.yaml)."""

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from workflow_runs import copy_run, snakemake

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
    selected = read(study / "finetune/dense/xnli/zero-shot/selected.json")
    assert {p["lr"] for p in selected["grid"]} == {0.001, 0.0003}
    paws = read(study / "finetune/dense/pawsx/zero-shot/selected.json")
    assert [p["lr"] for p in paws["grid"]] == [0.001]  # finetune.task_grid
    assert selected["selection"]["on"] == "source"


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
