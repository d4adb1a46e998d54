"""The benchmark commands run and print their tables (figures are printed, never asserted)."""

from pathlib import Path

from polyprune.tasks import bench_finetune

REPO = Path(__file__).resolve().parents[1]


def test_bench_finetune_prints_work_and_start_up_per_task_type(capsys):
    bench_finetune.main(["--config", str(REPO / "config" / "config.yaml"), "--steps", "1"])
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line.split()}
    assert {"pair", "token", "qa"} <= rows
    assert "start-up of a job (seconds):" in out
    for lap in ("load_model", "load_tokenizer", "read task data (jsonl)"):
        assert lap in out
