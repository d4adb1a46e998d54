"""`polyprune cost`: per-rule job-seconds and start-up share from a run's job logs."""

import io
import subprocess
import sys

import pytest

from polyprune.cost import job_costs, process_age, report_cost
from polyprune.errors import DataError


def test_cost_lines_are_summed_per_rule(tmp_path):
    logs = {
        "tokenizer.log": "trained\npolyprune: cost 10.00 s, start-up 2.00 s\n",
        "finetune/dense/xnli/lr0.001-ep1.log": "polyprune: cost 6.00 s, start-up 3.00 s\n",
        "finetune/dense/xnli/lr0.0003-ep1.log": "polyprune: cost 4.00 s, start-up 3.00 s\n",
        "shard/qaa.log": "no cost line: a job that was killed\n",
    }
    for name, text in logs.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    rows = {row["rule"]: row for row in job_costs(tmp_path)}
    assert rows["finetune"] == {
        "rule": "finetune",
        "jobs": 2,
        "job_seconds": 10.0,
        "mean_seconds": 5.0,
        "startup_share": 0.6,
    }
    assert rows["tokenizer"]["startup_share"] == 0.2
    assert rows["all"]["jobs"] == 3 and rows["all"]["job_seconds"] == 20.0
    assert rows["all"]["startup_share"] == 0.4
    assert "shard" not in rows


def test_no_logs_is_named(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        job_costs(tmp_path)


def test_a_block_reports_its_cost_with_the_process_start_up():
    out = io.StringIO()
    with report_cost(out):
        pass
    total, startup = (float(x) for x in out.getvalue().split()[2:6:3])
    assert 0 < startup <= total <= startup + 1
    assert process_age() >= startup - 0.01  # printed to 1/100 s, counted in 1/100 s ticks


def test_the_command_prints_a_table(tmp_path):
    (tmp_path / "base_model.log").write_text("polyprune: cost 8.00 s, start-up 4.00 s\n")
    done = subprocess.run(
        [sys.executable, "-m", "polyprune.cli", "cost", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[1].split() == ["base_model", "1", "8.0", "8.00", "50.0%"]
