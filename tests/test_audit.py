"""Auditing: reproducible provenance, `polyprune explain`, and the `audit` target's comparison
(unit tests here; end to end on the tiny run, marked slow)."""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from workflow_runs import ROOT, copy_run, snakemake, tail

from polyprune import audit
from polyprune.config import identity, step_settings
from polyprune.errors import DataError
from polyprune.provenance import provenance

CONFIG = {"run": "unit", "seed": 3, "data": {"seq_len": 32}, "finetune": {"batch_size": 4}}


# ---- provenance ---------------------------------------------------------------------------------


def test_provenance_is_a_pure_function_of_settings_inputs_and_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "in.txt").write_text("data")
    ident = step_settings(CONFIG, "data")["identity"]
    first = provenance(ident, ["results/in.txt", tmp_path / "results" / "in.txt"])
    time.sleep(1.1)
    second = provenance(ident, ["results/in.txt"])
    assert json.dumps(first) == json.dumps(second)  # no time, no host
    assert not {"created", "host"} & set(first)
    assert list(first["inputs"]) == ["results/in.txt"]  # relative to the working directory
    assert "provenance: written on" in capsys.readouterr().err  # the time goes to the log


def test_identity_holds_the_sections_read_and_their_digest():
    ident = step_settings(CONFIG, "data", "absent")["identity"]
    assert ident["config"] == {"data": {"seq_len": 32}}
    assert ident == identity(CONFIG, {"data": {"seq_len": 32}})
    other = step_settings({**CONFIG, "finetune": {"batch_size": 8}}, "data")["identity"]
    assert other["config_digest"] == ident["config_digest"]  # unread sections do not count


# ---- comparison ---------------------------------------------------------------------------------

RESULT = {
    "cell": "dense",
    "loss": {"qaa": {"before": 3.5, "after": 2.25}, "qba": {"before": 4.0, "after": 3}},
    "kept": [1, 2, True],
    "note": "text",
    "missing": None,
    "provenance": {"seed": 0, "inputs": {"x": "ab"}},
}


def test_json_leaves_skip_provenance_and_text():
    leaves = dict(audit.numeric_leaves(RESULT))
    assert leaves == {
        "loss.qaa.before": 3.5,
        "loss.qaa.after": 2.25,
        "loss.qba.before": 4.0,
        "loss.qba.after": 3,
        "kept[0]": 1,
        "kept[1]": 2,
        "kept[2]": 1,
    }


def test_json_comparison_reports_a_changed_number_and_a_missing_one():
    assert all(row[3] == 0 for row in audit.compare_json(RESULT, json.loads(json.dumps(RESULT))))
    changed = json.loads(json.dumps(RESULT))
    changed["loss"]["qba"]["after"] = 3.125
    del changed["loss"]["qaa"]["before"]
    changed["provenance"]["seed"] = 9  # not a result
    rows = {row[0]: row for row in audit.compare_json(RESULT, changed)}
    assert rows["loss.qba.after"][1:4] == (3, 3.125, 0.125)
    assert rows["loss.qaa.before"][3] == math.inf and rows["loss.qaa.before"][4]
    assert sum(row[3] != 0 for row in rows.values()) == 2


def test_number_delta_treats_nan_and_inf():
    assert audit.number_delta(math.nan, math.nan) == 0
    assert audit.number_delta(math.inf, math.inf) == 0
    assert audit.number_delta(1.0, math.nan) == math.inf
    assert audit.number_delta(1, 1.5) == 0.5


def write_tensors(path: Path, **tensors) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def test_tensor_comparison_per_tensor_max_abs_delta(tmp_path):
    a = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(3)}
    b = {"w": a["w"].clone(), "b": torch.tensor([0.0, -0.5, 0.25])}
    rows = {row[0]: row for row in audit.compare_tensors(a, b)}
    assert rows["w"][3] == 0 and rows["w"][1] == 15.0
    assert rows["b"][3] == 0.5
    nan = {"w": torch.tensor([math.nan, 1.0])}
    assert audit.compare_tensors(nan, {"w": nan["w"].clone()})[0][3] == 0
    shape = audit.compare_tensors(a, {"w": torch.zeros(3, 2), "b": a["b"]})
    assert shape[0][3] == math.inf and "[2, 3]" in shape[0][4]
    assert audit.compare_tensors(a, {"w": a["w"]})[1][3] == math.inf  # b is missing


def test_compare_files_and_model_directories(tmp_path):
    w = torch.randn(4, 4)
    a = write_tensors(tmp_path / "a" / "imp.safetensors", w=w)
    b = write_tensors(tmp_path / "b" / "imp.safetensors", w=w)
    assert [r.delta for r in audit.compare("importance", str(a), str(b))] == [0.0]
    for side, weights in [("orig", w), ("again", w + 1e-3)]:
        write_tensors(tmp_path / side / "model" / "model.safetensors", w=weights)
        (tmp_path / side / "model" / "config.json").write_text("{}")
    rows = audit.compare("pretrain", str(tmp_path / "orig/model"), str(tmp_path / "again/model"))
    assert len(rows) == 1 and 0 < rows[0].delta < 2e-3 and rows[0].field == "w"
    assert not audit.identical_bytes(tmp_path / "orig/model", tmp_path / "again/model")
    (tmp_path / "a" / "corpus.txt").write_text("text")
    with pytest.raises(DataError, match=r"corpus\.txt: cannot compare"):
        audit.compare("x", str(tmp_path / "a" / "corpus.txt"), str(tmp_path / "a" / "corpus.txt"))
    with pytest.raises(DataError, match=r"a/model\.safetensors: unreadable tensors"):
        audit.compare("x", str(tmp_path / "a"), str(tmp_path / "b"))


def test_audit_writes_every_number_and_the_differences(tmp_path):
    original = tmp_path / "orig.json"
    same, changed = tmp_path / "same.json", tmp_path / "changed.json"
    original.write_text(json.dumps(RESULT))
    same.write_text(json.dumps(RESULT))
    edited = json.loads(json.dumps(RESULT))
    edited["loss"]["qaa"]["after"] = 2.5
    changed.write_text(json.dumps(edited))
    pairs = [("mlm_eval", str(original), str(same)), ("finetune", str(original), str(changed))]
    csv_path, md_path = tmp_path / "audit.csv", tmp_path / "audit.md"
    audit.audit(pairs, csv_path, md_path, audit.settings(None), "unit")
    rows = audit.read_csv(csv_path)
    assert len(rows) == 14 and list(rows[0]) == audit.COLUMNS
    (diff,) = [r for r in rows if r["delta"] != 0]
    assert (diff["stage"], diff["field"], diff["delta"]) == ("finetune", "loss.qaa.after", 0.25)
    assert (diff["original"], diff["rederived"]) == ("2.25", "2.5")
    md = md_path.read_text()
    assert "**1 differ**" in md and "`loss.qaa.after`" in md and "| mlm_eval |" in md


def test_sample_is_seeded_per_stage():
    jobs = {"a": [(f"a{i}",) for i in range(10)], "b": [("b0",)], "c": []}
    drawn = audit.sample(jobs, seed=0, per_stage=3)
    assert drawn == audit.sample(jobs, seed=0, per_stage=3)
    assert len(drawn["a"]) == 3 and drawn["b"] == [("b0",)] and drawn["c"] == []
    assert audit.sample({"a": jobs["a"]}, 0, 3)["a"] == drawn["a"]  # other stages do not matter
    assert any(audit.sample(jobs, seed, 3)["a"] != drawn["a"] for seed in range(1, 5))
    assert audit.settings({"samples": 5}) == {**audit.DEFAULTS, "samples": 5}


def test_pairs_of_the_audited_stages_under_the_audit_folder():
    jobs = {
        "prune": [("r/t/cells/c/gates.json", "r/t/cells/c/init")],
        "pretrain": [("r/t/cells/c/model",)],
    }
    chosen = audit.settings({"stages": ["prune"]})
    assert audit.pairs(jobs, chosen, "r/t", "r/t/audit") == [
        ("prune", "r/t/cells/c/gates.json", "r/t/audit/cells/c/gates.json"),
        ("prune", "r/t/cells/c/init", "r/t/audit/cells/c/init"),
    ]
    with pytest.raises(ValueError, match="not under"):
        audit.moved("r/t", "r/t/audit", "elsewhere/x.json")


# ---- polyprune explain --------------------------------------------------------------------------


def test_explain_names_settings_inputs_and_the_rebuild_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "in.txt").write_text("data")
    ident = step_settings(CONFIG, "data")["identity"]
    result = tmp_path / "results" / "r.json"
    result.write_text(json.dumps({"x": 1, "provenance": provenance(ident, ["results/in.txt"])}))
    text = audit.explain("results/r.json", verify=True)
    assert "run:      unit" in text and "seed:     3" in text
    assert 'data: {"seq_len": 32}' in text and "(matches the sections below)" in text
    assert "results/in.txt  sha256 " in text and "(unchanged)" in text
    assert "--configfile CONFIG --force results/r.json" in text
    assert f"--snakefile {ROOT / 'Snakefile'}" in text  # run outside the checkout
    (tmp_path / "results" / "in.txt").write_text("other")
    assert "(CHANGED since)" in audit.explain(result, verify=True)
    older = {k: v for k, v in provenance(ident).items() if k != "config"}
    result.write_text(json.dumps({"x": 1, "provenance": {**older, "config_digest": "abc"}}))
    assert "sha256 abc (sections not recorded (an older result))" in audit.explain(result)


def test_explain_a_demo_model_directory_from_the_checkout(tmp_path, monkeypatch):
    from polyprune.model import MaskedLM, ModelConfig, save_model

    monkeypatch.chdir(ROOT)
    config = {"run": "demo", "seed": 0}
    model = MaskedLM(ModelConfig(vocab_size=20, hidden=8, layers=1, heads=2, ffn=8, head_dim=4))
    save_model(model, tmp_path / "pruned", extra={"provenance": provenance(identity(config, {}))})
    text = audit.explain(tmp_path / "pruned")
    assert f"rebuild:  snakemake --cores 2 --force {tmp_path / 'pruned'}" in text
    assert "(none: the step reads no configuration section)" in text
    save_model(model, tmp_path / "init")
    (tmp_path / "gates.json").write_text("{}")
    with pytest.raises(DataError, match=r"init/config\.json: no provenance record.*gates\.json"):
        audit.explain(tmp_path / "init")


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "unreadable result"), ('{"x": 1}', "no provenance record"), ("[1]", "no prov")],
)
def test_explain_rejects_other_files_in_one_line(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as e:
        audit.explain(path)
    assert str(path) in str(e.value)
    done = subprocess.run(
        [sys.executable, "-m", "polyprune.cli", "explain", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and str(path) in done.stderr


# ---- end to end ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_audit_rederives_the_sample_and_reports_a_changed_result(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    done = snakemake(run, "audit")
    assert done.returncode == 0, tail(done)
    report = run / "results" / "tiny" / "audit" / "audit.csv"
    rows = audit.read_csv(report)
    assert {r["stage"] for r in rows} == set(audit.DEFAULTS["stages"])
    assert rows and all(r["delta"] == 0 for r in rows), [r for r in rows if r["delta"]]
    assert "every number equals the original" in report.with_suffix(".md").read_text()
    # the JSON results are the same byte for byte, provenance included (up to the code version,
    # in case the checkout changed since the tiny run)
    for name, again in {(r["file"], r["audit_file"]) for r in rows if r["file"].endswith(".json")}:
        original, rederived = (run / name).read_text(), (run / again).read_text()
        versions = [json.loads(t)["provenance"]["code_version"] for t in (original, rederived)]
        assert original.replace(*versions) == rederived

    point = next(r for r in rows if r["stage"] == "finetune")
    stored = run / point["file"]
    result = json.loads(stored.read_text())
    result["validation"]["avg"] = {k: v + 1 for k, v in result["validation"]["avg"].items()}
    stored.write_text(json.dumps(result))
    done = snakemake(run, "--force", str(report.relative_to(run)))
    assert done.returncode == 0, tail(done)
    differ = [r for r in audit.read_csv(report) if r["delta"] != 0]
    assert differ and all(r["file"] == point["file"] for r in differ)
    assert {r["field"].split(".")[:2] == ["validation", "avg"] for r in differ} == {True}
    assert all(abs(r["delta"] - 1) < 1e-9 for r in differ)
    assert "differ**" in report.with_suffix(".md").read_text()


@pytest.mark.slow
def test_explain_a_result_of_the_tiny_run(tiny_run, monkeypatch):
    monkeypatch.chdir(tiny_run)
    path = "results/tiny/cells/gradient-nonshared-s50/mlm.json"
    done = subprocess.run(
        [sys.executable, "-m", "polyprune.cli", "explain", "--verify", path],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "run:      tiny" in text and "seed:     0" in text
    assert "(matches the sections below)" in text and "    data: {" in text
    assert "results/tiny/cells/gradient-nonshared-s50/pruned  sha256 " in text
    assert text.count("(unchanged)") == 2
    tiny = ROOT / "tests" / "configs" / "tiny.yaml"
    assert f"--configfile {tiny} --force {path}" in text
    assert "its sections still equal the recorded ones" in text
