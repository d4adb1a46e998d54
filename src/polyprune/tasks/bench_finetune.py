"""Fine-tuning speed per task type on CPU, and how much of a job's wall time is start-up.

    python -m polyprune.tasks.bench_finetune [--config config/config.yaml] [--steps 20]

One run, timed in the order a fine-tuning job meets it: imports, then loading the checkpoint,
tokenizer and data (start-up), then training steps per task type (work). The model has the
config's `model.shape` and tokenizer vocabulary, randomly initialised; the task data are random
words in the shapes of the demo's tasks. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import tempfile
import time
from pathlib import Path

_STARTED = time.perf_counter()  # before any heavy import (interpreter start-up not included)

KINDS = {"pair": "pawsx", "token": "panx", "qa": "squad"}
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


class Stopwatch:
    def __init__(self):
        self.last, self.laps = _STARTED, {}

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now
        return self.laps[name]

    def skip(self) -> None:
        """Leave out what happened since the last lap (the benchmark's own preparation)."""
        self.last = time.perf_counter()


def random_records(kind: str, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    lexicon = ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(4000)]

    def words(lo, hi):
        return rng.choices(lexicon, k=rng.randint(lo, hi))

    records = []
    for i in range(n):
        if kind == "pair":
            record = {"sentence1": " ".join(words(8, 20)), "sentence2": " ".join(words(8, 20))}
            record["label"] = rng.choice(["different", "paraphrase"])
        elif kind == "token":
            tokens = words(6, 25)
            tags = rng.choices(["O", "O", "O", "B-PER", "I-PER", "B-LOC"], k=len(tokens))
            record = {"tokens": tokens, "tags": tags}
        else:
            before, answer, after = words(20, 60), words(1, 3), words(20, 60)
            prefix = " ".join(before) + " "
            record = {
                "context": prefix + " ".join(answer + after),
                "question": " ".join(words(4, 10)),
                "answers": {"text": [" ".join(answer)], "answer_start": [len(prefix)]},
            }
        records.append({"id": str(i), "lang": "qal", **record})
    return records


def prepare(workdir: Path, shape: dict, vocab_size: int, n_records: int) -> None:
    """What a job finds on disk: a checkpoint, a tokenizer and task data."""
    from polyprune.data import train_tokenizer
    from polyprune.model import MaskedLM, ModelConfig, save_model

    corpus = workdir / "corpus.txt"
    lines = (" ".join(r["tokens"]) for r in random_records("token", 3000, seed=1))
    corpus.write_text("\n".join(lines) + "\n")
    train_tokenizer([corpus], vocab_size, workdir / "tokenizer")
    save_model(MaskedLM(ModelConfig.from_config_shape(shape, vocab_size)), workdir / "model")
    for kind in KINDS:
        with open(workdir / f"{kind}.jsonl", "w") as out:
            out.writelines(json.dumps(r) + "\n" for r in random_records(kind, n_records))


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as lines:
        return [json.loads(line) for line in lines]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--steps", type=int, default=10, help="batches of examples per type")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    clock = Stopwatch()

    import torch

    clock.lap("import torch")
    from polyprune.data import load_tokenizer
    from polyprune.model import load_model
    from polyprune.tasks.finetune import FinetuneSettings, finetune, make_rows
    from polyprune.tasks.heads import Lengths, TaskModel
    from polyprune.tasks.spec import LABELS

    clock.lap("import polyprune")
    torch.set_num_threads(args.threads)
    import yaml

    config = yaml.safe_load(Path(args.config).read_text())
    shape, vocab_size = config["model"]["shape"], config["tokenizer"]["vocab_size"]
    batch_size = 32
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare(workdir, shape, vocab_size, args.steps * batch_size)
        clock.skip()
        base = load_model(workdir / "model")
        clock.lap("load_model")
        tokenizer = load_tokenizer(str(workdir / "tokenizer"))
        clock.lap("load_tokenizer")
        data = {kind: read_jsonl(workdir / f"{kind}.jsonl") for kind in KINDS}
        clock.lap("read task data (jsonl)")
        startup = sum(clock.laps.values())

        limit = base.cfg.max_tokens
        lengths = Lengths(pair=limit, token=limit, qa=limit, qa_stride=limit // 4)
        rows_per_kind, work = {}, {}
        for kind, task in KINDS.items():
            model = copy.deepcopy(base)
            probe = TaskModel(model, task, kind, LABELS.get(task, ()), lengths, seed=0)
            rows = make_rows(probe, tokenizer, data[kind], train=False)
            clock.skip()
            settings = FinetuneSettings(lr=2e-5, epochs=1, batch_size=batch_size, lengths=lengths)
            finetune(model, tokenizer, task, data[kind], settings)
            work[kind] = clock.lap(f"fine-tune {kind}")
            rows_per_kind[kind] = rows
    report(args, shape, vocab_size, batch_size, data, rows_per_kind, work, clock, startup)


def report(args, shape, vocab_size, batch_size, data, rows, work, clock, startup) -> None:
    print(
        f"fine-tuning on CPU, {args.threads} thread(s); model {shape}, vocab {vocab_size}, "
        f"batch {batch_size}, random init, random-word data; load average "
        + " ".join(f"{load:.1f}" for load in os.getloadavg())
    )
    print(f"{'type':6} {'examples':>8} {'rows':>6} {'tokens/row':>10} {'steps':>6} "
          f"{'seconds':>8} {'examples/s':>10} {'rows/s':>7}")  # fmt: skip
    for kind, seconds in work.items():
        n_rows = len(rows[kind].input_ids)
        tokens = sum(map(len, rows[kind].input_ids)) / n_rows
        steps = -(-n_rows // batch_size)
        print(
            f"{kind:6} {len(data[kind]):8d} {n_rows:6d} {tokens:10.1f} {steps:6d} "
            f"{seconds:8.2f} {len(data[kind]) / seconds:10.1f} {n_rows / seconds:7.1f}"
        )
    print("start-up of a job (seconds):")
    for name, seconds in clock.laps.items():
        if not name.startswith("fine-tune"):
            print(f"  {name:42} {seconds:6.2f}")
    total_work = sum(work.values())
    print(
        f"start-up {startup:.2f} s, work {total_work:.2f} s: start-up is "
        f"{100 * startup / (startup + total_work):.0f}% of this run's wall time"
    )
    for kind, seconds in work.items():
        per_step = seconds / -(-len(rows[kind].input_ids) // batch_size)
        print(f"  start-up = {startup / per_step:.0f} {kind} steps ({per_step * 1e3:.0f} ms/step)")


if __name__ == "__main__":
    main()
