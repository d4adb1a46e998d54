"""The `polyprune` command: the study's steps outside Snakemake, and the training steps that the
workflow launches (one process, torchrun, or the DeepSpeed launcher).

`--config` takes a config file, or an inline JSON object with the sections a step reads (what the
workflow passes, so that editing unrelated keys does not rerun a step).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from polyprune.jobs import exit_on_sigterm

JOBS = ("train", "importance", "convert")  # the commands that workflow rules run


def _config(value: str) -> dict:
    from polyprune import config as cfg

    if value.lstrip().startswith("{"):
        return json.loads(value)
    loaded = cfg.load(value)
    return {**loaded, "identity": cfg.identity(loaded)}


def cmd_params(args) -> dict:
    from polyprune.bench import model_counts, param_counts
    from polyprune.model import SHAPES, ModelConfig, load_model

    target = args.target
    if target in SHAPES:
        return {"shape": target, **param_counts(ModelConfig.from_shape(target))}
    path = Path(target)
    if path.is_dir():
        return {"checkpoint": target, **model_counts(load_model(path))}
    if path.is_file():
        config = _config(target)
        shape = config["model"].get("shape")
        if config["model"]["base"] in SHAPES:
            return cmd_params(argparse.Namespace(target=config["model"]["base"]))
        if shape is None:
            raise SystemExit(f"{target}: model.base {config['model']['base']!r} has no known shape")
        cfg = ModelConfig.from_config_shape(shape, config["tokenizer"]["vocab_size"])
        return {"config": target, **param_counts(cfg)}
    raise SystemExit(f"{target}: not a known shape ({', '.join(SHAPES)}), checkpoint or config")


def cmd_train(args) -> None:
    from polyprune.pipeline import train_model

    config = _config(args.config)
    train_model(
        init=None if args.init == "scratch" else args.init,
        tokenizer_dir=args.tokenizer,
        shard_dirs=args.shards,
        out_dir=args.out,
        checkpoint_dir=args.checkpoints,
        training=config[args.section],
        data_cfg=config["data"],
        identity=config["identity"],
        shape=config["model"].get("shape") if args.init == "scratch" else None,
        objective=config.get("objective"),
    )


def cmd_importance(args) -> None:
    import torch

    from polyprune.pipeline import score_importance

    config = _config(args.config)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    score_importance(
        args.model,
        args.tokenizer,
        args.shards,
        args.out,
        config["importance"],
        config["data"],
        config["identity"],
        device=device,
    )


def cmd_convert(args) -> None:
    from polyprune.model import convert_hf
    from polyprune.provenance import provenance

    config = _config(args.config)
    name, revision = config["model"]["base"], config["model"].get("revision")
    convert_hf(name, revision, args.out, {"provenance": provenance(config["identity"])})


def cmd_cut(args) -> dict:
    from polyprune.config import identity as run_identity
    from polyprune.pipeline import cut_dynamic

    asked = {"run": "polyprune cut", "seed": None, "sparsity": args.sparsity}
    identity = run_identity({**asked, "language": args.language})
    info = cut_dynamic(args.checkpoint, args.out, args.sparsity, identity, args.language)
    return {k: info[k] for k in ("sparsity", "language", "gate_sets")} | {
        "params": info["params"]["stored"]["total"]
    }


def cmd_bench_gates(args) -> dict:
    from polyprune.bench import gates_benchmark

    return gates_benchmark(args.shape, args.batch, args.seq_len, args.repeats, args.sparsity)


def cmd_bench_cut(args) -> None:
    from polyprune.bench import cut_speed_benchmark

    result = cut_speed_benchmark(
        args.shapes, args.sparsities, args.seq_len, args.repeats, args.heads_multiple,
        args.ffn_multiple,
    )  # fmt: skip
    print(
        f"CPU batch 1, sequence {result['seq_len']} (at most), {result['threads']} threads, "
        f"median of {result['repeats']}; speedup and FLOP ratio against each shape's dense model"
    )
    header = ("shape", "model", "enc. sparsity", "layers", "ms", "speedup", "FLOP ratio")
    print("".join(f"{h:<22}" if i < 2 else f"{h:>14}" for i, h in enumerate(header)))
    for r in result["rows"]:
        print(
            f"{r['shape']:<22}{r['model']:<22}{r['encoder_sparsity']:>14.1%}{r['layers']:>14}"
            f"{r['latency_ms']:>14.2f}{r['speedup']:>14.2f}{r['flop_ratio']:>14.2f}"
        )


def cmd_bench_objectives(args) -> dict:
    from polyprune.bench import objectives_benchmark

    return objectives_benchmark(args.config, args.batch, args.seq_len, args.repeats)


def cmd_cost(args) -> None:
    from polyprune.cost import cost_table, job_costs

    rows = job_costs(args.logs)
    print(json.dumps(rows, indent=1) if args.json else cost_table(rows))


def cmd_explain(args) -> None:
    from polyprune.audit import explain

    print(explain(args.result, verify=args.verify), end="")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyprune", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("params", help="parameter counts (JSON) of a shape, checkpoint or config")
    s.add_argument("target", help="xlm-roberta-base | checkpoint directory | config file")
    s.set_defaults(run=cmd_params)

    s = sub.add_parser("train", help="MLM training (base model or a cell), resumable")
    s.add_argument("--config", required=True)
    s.add_argument("--section", default="pretraining", choices=["pretraining", "base_training"])
    s.add_argument("--init", required=True, help="checkpoint directory, or 'scratch'")
    s.add_argument("--tokenizer", required=True)
    s.add_argument("--shards", nargs="+", required=True, help="one shard directory per language")
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoints", required=True)
    s.set_defaults(run=cmd_train)

    s = sub.add_parser("importance", help="gradient importance (Eq 4) over held-out shards")
    s.add_argument("--config", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--tokenizer", required=True)
    s.add_argument("--shards", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--device", default="auto", help="auto: cuda if available, else cpu")
    s.set_defaults(run=cmd_importance)

    s = sub.add_parser(
        "convert", help="model.base (hub id or path, at model.revision) as a polyprune model"
    )
    s.add_argument("--config", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(run=cmd_convert)

    s = sub.add_parser(
        "cut", help="a Dynamic Sparsification checkpoint at one sparsity, as a smaller model"
    )
    s.add_argument("checkpoint", help="a DS checkpoint directory")
    s.add_argument("--sparsity", type=float, required=True, help="within the DS grid's range")
    s.add_argument(
        "--language", default=None, help="non-shared DS: one language's subnetwork, physically cut"
    )
    s.add_argument("--out", required=True, help="the directory to write (load_model reads it)")
    s.set_defaults(run=cmd_cut)

    s = sub.add_parser("bench-gates", help="gated vs ungated step time; pruned vs gated latency")
    s.add_argument("--shape", default="xlm-roberta-base", help="a known shape or a config file")
    s.add_argument("--batch", type=int, default=8)
    s.add_argument("--seq-len", type=int, default=128)
    s.add_argument("--repeats", type=int, default=10)
    s.add_argument("--sparsity", type=float, default=0.5)
    s.set_defaults(run=cmd_bench_gates)

    s = sub.add_parser("bench-cut", help="CPU batch-1 speedup of cut models against the FLOP ratio")
    s.add_argument(
        "--shapes", nargs="+", default=["config/config.yaml", "xlm-roberta-base"],
        help="known shapes or config files",
    )  # fmt: skip
    s.add_argument("--sparsities", nargs="+", type=float, default=[0.3, 0.5, 0.7, 0.9])
    s.add_argument("--seq-len", type=int, default=128)
    s.add_argument("--repeats", type=int, default=20)
    s.add_argument("--heads-multiple", type=int, default=2, help="hardware-friendly head counts")
    s.add_argument("--ffn-multiple", type=int, default=64, help="hardware-friendly FFN widths")
    s.set_defaults(run=cmd_bench_cut)

    s = sub.add_parser(
        "bench-objectives", help="step time of L0 and distillation training vs plain MLM"
    )
    s.add_argument("--config", default="config/config.yaml", help="its model shape and algorithms")
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--seq-len", type=int, default=32)
    s.add_argument("--repeats", type=int, default=10)
    s.set_defaults(run=cmd_bench_objectives)

    s = sub.add_parser(
        "cost", help="what a finished run's jobs cost, per rule (job-seconds, start-up share)"
    )
    s.add_argument("logs", help="the run's log folder, e.g. logs/demo")
    s.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    s.set_defaults(run=cmd_cost)

    s = sub.add_parser(
        "explain", help="what produced a result: settings, inputs, code, the command to rebuild it"
    )
    s.add_argument("result", help="a result JSON, a model directory or an importance file")
    s.add_argument(
        "--verify", action="store_true", help="also check the inputs here against their digests"
    )
    s.set_defaults(run=cmd_explain)
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    exit_on_sigterm()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from polyprune.cost import report_cost
    from polyprune.errors import PolypruneError

    if args.command in JOBS:
        import polyprune.pipeline  # noqa: F401 (the imports a job pays count as its start-up)
    try:
        with report_cost(sys.stdout) if args.command in JOBS else nullcontext():
            result = args.run(args)
    except PolypruneError as e:
        sys.exit(f"polyprune: {e}")
    if result is not None:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
