"""Parameter counts and speed measurements (benchmarks print figures; tests never time)."""

from __future__ import annotations

import statistics
import time

import torch

from polyprune.gates import Gates
from polyprune.model import MaskedLM, ModelConfig

COUNTING = (
    "total = embeddings + encoder + pooler, the parameters of transformers' XLMRobertaModel "
    "(the pooler, a d x d dense layer, is counted although MLM checkpoints do not use it); "
    "mlm_head (dense, LayerNorm, output bias; the decoder is tied to the word embeddings) "
    "is reported separately and not included in total"
)


def param_counts(cfg: ModelConfig, gates: Gates | None = None) -> dict:
    """Parameter counts of a model shape, or of what one (single-row) gate set keeps of it."""
    d, dh = cfg.hidden, cfg.head_dim
    heads = [int(g.count_nonzero()) for g in gates.heads] if gates else list(cfg.heads)
    ffn = [int(g.count_nonzero()) for g in gates.ffn] if gates else list(cfg.ffn)
    rank = cfg.emb_rank
    if gates is not None and gates.emb is not None:
        rank = int(gates.emb.count_nonzero())
    word = cfg.vocab_size * rank + rank * d if rank is not None else cfg.vocab_size * d
    embeddings = word + (cfg.max_positions + cfg.type_vocab) * d + 2 * d
    layers = [
        4 * d * h * dh + 3 * h * dh + d + 2 * d + 2 * d * f + f + d + 2 * d
        for h, f in zip(heads, ffn)
    ]
    pooler = d * d + d
    return {
        "total": embeddings + sum(layers) + pooler,
        "embeddings": embeddings,
        "word_embeddings": word,
        "encoder": sum(layers),
        "encoder_layers": layers,
        "pooler": pooler,
        "mlm_head": d * d + d + 2 * d + cfg.vocab_size,
        "heads": heads,
        "ffn": ffn,
        "embedding_rank": rank,
        "head_dim": dh,
        "counting": COUNTING,
    }


def model_counts(model: MaskedLM) -> dict:
    """Counts of a checkpoint: its stored shape, plus what every gate set keeps."""
    out = {"stored": param_counts(model.cfg)}
    if model.gate_table is not None:
        out["gate_sets"] = {
            name: param_counts(model.cfg, model.gate_table.select(i))
            for i, name in enumerate(model.gate_table.names)
        }
    return out


def interleaved_medians(fns: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved so that they share the
    machine's noise (ratios between them are what to report)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def train_step(model: MaskedLM, ids, labels, gate_set=None):
    """One forward + backward + SGD update, as a callable."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        model(ids, labels=labels, gate_set=gate_set).backward()
        opt.step()

    return step


def inference(model: MaskedLM, ids, gate_set=None):
    """One encoder forward pass (what a fine-tuned model runs; no MLM head), as a callable."""
    model.eval()

    @torch.no_grad()
    def forward():
        model.encode(ids, gate_set=gate_set)

    return forward


def resolve_shape(shape: str) -> ModelConfig:
    """A known shape name, or a config file's scratch model shape."""
    from polyprune.model import SHAPES

    if shape in SHAPES:
        return ModelConfig.from_shape(shape, dropout=0.0, attention_dropout=0.0)
    from polyprune.config import load

    config = load(shape)
    return ModelConfig.from_config_shape(
        config["model"]["shape"],
        config["tokenizer"]["vocab_size"],
        dropout=0.0,
        attention_dropout=0.0,
    )


def gates_benchmark(shape: str, batch: int, seq_len: int, repeats: int, sparsity: float) -> dict:
    """Training step time of a gated model vs the same shape ungated, and CPU batch-1 latency of
    a model pruned to `sparsity` kept gated vs physically pruned."""
    from polyprune.config import component_weights
    from polyprune.prune import gated_model, physically_prune, select_components

    cfg = resolve_shape(shape)
    torch.manual_seed(0)
    plain = MaskedLM(cfg)
    ids = torch.randint(4, cfg.vocab_size - 1, (batch, seq_len))
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    ones = Gates.ones(cfg.heads, cfg.ffn, None)
    gated = gated_model(plain, {"shared": ones})
    steps = interleaved_medians(
        {"ungated": train_step(plain, ids, labels), "gated": train_step(gated, ids, labels)},
        repeats,
    )
    scores = Gates(heads=[torch.rand(h) for h in cfg.heads], ffn=[torch.rand(f) for f in cfg.ffn])
    unit = component_weights(cfg.head_dim, {})
    pruned_gated = gated_model(plain, {"shared": select_components(scores, unit, sparsity)})
    small = physically_prune(pruned_gated)
    one = ids[:1]
    lat = interleaved_medians(
        {"gated": inference(pruned_gated, one), "pruned": inference(small, one)}, repeats
    )
    return {
        "shape": shape,
        "threads": torch.get_num_threads(),
        "train_step_s": steps,
        "gate_overhead": steps["gated"] / steps["ungated"] - 1,
        "train_batch": [batch, seq_len],
        "sparsity": sparsity,
        "cpu_batch1_latency_s": lat,
        "pruned_speedup": lat["gated"] / lat["pruned"],
        "params": {
            "gated": param_counts(cfg)["total"],
            "pruned": param_counts(small.cfg)["total"],
        },
    }


def objectives_benchmark(config_path: str, batch: int, seq_len: int, repeats: int) -> dict:
    """Training step time (forward, backward, AdamW) of each algorithm's objective in a config
    (its first cell's: learned gates and their loss terms, a teacher) against plain MLM training
    of the config's model shape, interleaved in one run."""
    from polyprune.config import (
        GRADIENT,
        algorithm_cells,
        load,
        objective_spec,
        study_languages,
    )
    from polyprune.pipeline import make_objective

    config = load(config_path)
    cfg = resolve_shape(config_path)
    langs = study_languages(config)
    ids = torch.randint(4, cfg.vocab_size - 1, (batch, seq_len))
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    specs = {"mlm": None}
    for algorithm in config["pruning"]["algorithms"]:
        if algorithm != GRADIENT:
            cell = algorithm_cells(config, algorithm)[0].name
            specs[cell] = objective_spec(config, cell)
    steps = {}
    for name, spec in specs.items():
        torch.manual_seed(0)
        objective = make_objective(MaskedLM(cfg), spec, langs, 0)
        steps[name] = objective_step(objective, ids, labels, langs[0])
    times = interleaved_medians(steps, repeats)
    return {
        "config": config_path,
        "threads": torch.get_num_threads(),
        "train_batch": [batch, seq_len],
        "step_s": times,
        "vs_mlm": {name: t / times["mlm"] for name, t in times.items()},
    }


def objective_step(objective, ids, labels, lang: str):
    """One training step of an objective on a batch in `lang`, as a callable."""
    objective.train()
    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = objective(ids, labels, lang)
        loss.backward()
        opt.step()

    return step


def encoder_flops(cfg: ModelConfig, seq_len: int) -> int:
    """Multiply-adds x 2 of one sequence through the encoder: per layer the Q, K, V and output
    projections (4 d h dh per token), attention scores and their weighted sum (2 seq h dh per
    token) and the FFN (2 d f per token). Embedding lookups and LayerNorms are left out."""
    d, dh = cfg.hidden, cfg.head_dim
    per_token = sum(
        4 * d * h * dh + 2 * seq_len * h * dh + 2 * d * f for h, f in zip(cfg.heads, cfg.ffn)
    )
    return 2 * seq_len * per_token


def cut_speed_benchmark(
    shapes: list[str],
    sparsities: list[float],
    seq_len: int,
    repeats: int,
    heads_multiple: int,
    ffn_multiple: int,
    vocab_size: int = 1000,
) -> dict:
    """CPU batch-1 latency (`seq_len` tokens, or as many as the shape's positions allow) of
    models cut to each encoder sparsity (random importance, global
    ranking) against the dense model of each shape, beside the FLOP ratio: as cut, and with
    hardware-friendly widths (prune.round_widths to the given multiples, empty layers dropped).
    All models of a shape are timed interleaved in one run, so their ratios share the noise.
    The vocabulary is cut to `vocab_size`: the embedding is one lookup per token, and the full
    one would hold gigabytes for nothing."""
    from dataclasses import replace

    from polyprune.config import component_weights
    from polyprune.prune import (
        drop_empty_layers,
        gated_model,
        physically_prune,
        round_widths,
        select_components,
    )

    rows = []
    for shape in shapes:
        cfg = replace(resolve_shape(shape), vocab_size=vocab_size)
        torch.manual_seed(0)
        dense = MaskedLM(cfg).eval()
        scores = Gates(
            heads=[torch.rand(h) for h in cfg.heads], ffn=[torch.rand(f) for f in cfg.ffn]
        )
        unit = component_weights(cfg.head_dim, {})
        models = {"dense": dense}
        for s in sparsities:
            gates = select_components(scores, unit, s)
            models[f"s{s:g}"] = physically_prune(gated_model(dense, {"shared": gates}))
            friendly = round_widths(gates, scores, heads_multiple, ffn_multiple)
            models[f"s{s:g}-friendly"] = drop_empty_layers(
                physically_prune(gated_model(dense, {"shared": friendly}))
            )
        length = min(seq_len, cfg.max_positions - cfg.pad_id - 1)  # what positions allow
        ids = torch.randint(4, vocab_size - 1, (1, length))
        times = interleaved_medians({k: inference(m, ids) for k, m in models.items()}, repeats)
        base_flops = encoder_flops(cfg, length)
        for name, model in models.items():
            rows.append(
                {
                    "shape": shape,
                    "model": name,
                    "seq_len": length,
                    "encoder_sparsity": 1
                    - _encoder_weight(model.cfg, unit) / _encoder_weight(cfg, unit),
                    "layers": model.cfg.layers,
                    "latency_ms": 1000 * times[name],
                    "speedup": times["dense"] / times[name],
                    "flop_ratio": base_flops / encoder_flops(model.cfg, length),
                }
            )
    return {
        "threads": torch.get_num_threads(),
        "batch": 1,
        "seq_len": seq_len,
        "repeats": repeats,
        "multiples": {"heads": heads_multiple, "ffn": ffn_multiple},
        "rows": rows,
    }


def _encoder_weight(cfg: ModelConfig, unit: dict) -> float:
    return sum(unit["heads"] * h + unit["ffn"] * f for h, f in zip(cfg.heads, cfg.ffn))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_calls(fns: dict, device: torch.device, warmup: int, repeats: int) -> dict[str, list]:
    """Seconds of each call of each function, `repeats` rounds interleaved after `warmup`."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _sync(device)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _summary(seconds: list[float], batch: int) -> dict:
    q1, median, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else seconds * 3
    return {
        "batch": batch,
        "seconds_median": median,
        "seconds_q1": q1,
        "seconds_q3": q3,
        "sequences_per_s": batch / median,
    }


def peak_memory(model: MaskedLM, batch: int, seq_len: int, device: torch.device) -> int:
    """Peak CUDA memory (bytes) of one encoder forward at (batch, seq_len)."""
    ids = torch.randint(4, model.cfg.vocab_size - 1, (batch, seq_len), device=device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    inference(model, ids)()
    _sync(device)
    return torch.cuda.max_memory_allocated(device)


def largest_batch(model, seq_len: int, budget: int, start: int, device, limit: int = 64) -> int:
    """The largest batch start * 2^k (k < log2 limit) whose forward fits in `budget` bytes."""
    batch = start
    while batch * 2 <= start * limit:
        try:
            if peak_memory(model, batch * 2, seq_len, device) > budget:
                break
        except torch.cuda.OutOfMemoryError:
            break
        batch *= 2
    return batch


def throughput_table(models: dict[str, MaskedLM], spec: dict, reference: str) -> list[dict]:
    """Encoder forward throughput of every model, timed interleaved so that their ratios share
    the machine's noise: on CPU at batch `cpu_batch` with `cpu_threads` threads; on CUDA when
    there is one, at `gpu_batch` and at the largest doubling of it whose peak memory stays
    within the `reference` model's at `gpu_batch` (the batch its smaller size allows)."""
    seq_len, warmup, repeats = spec["seq_len"], spec["warmup"], spec["repeats"]
    rows = {name: {"model": name, "seq_len": seq_len} for name in models}
    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(spec["cpu_threads"])
    try:
        vocab = models[reference].cfg.vocab_size
        ids = torch.randint(4, vocab - 1, (spec["cpu_batch"], seq_len))
        fns = {k: inference(m.to(cpu), ids) for k, m in models.items()}
        for name, seconds in timed_calls(fns, cpu, warmup, repeats).items():
            rows[name]["cpu"] = {
                "threads": spec["cpu_threads"],
                **_summary(seconds, spec["cpu_batch"]),
            }
    finally:
        torch.set_num_threads(before)
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for model in models.values():
            model.to(gpu)
        batch = spec["gpu_batch"]
        budget = peak_memory(models[reference], batch, seq_len, gpu)
        sizes = {k: largest_batch(m, seq_len, budget, batch, gpu) for k, m in models.items()}
        for label, batches in (("gpu", dict.fromkeys(models, batch)), ("gpu_larger", sizes)):
            fns = {
                k: inference(m, torch.randint(4, vocab - 1, (batches[k], seq_len), device=gpu))
                for k, m in models.items()
            }
            for name, seconds in timed_calls(fns, gpu, warmup, repeats).items():
                rows[name][label] = {
                    "device": torch.cuda.get_device_name(gpu),
                    **_summary(seconds, batches[name]),
                }
        for model in models.values():
            model.to(cpu)
    return list(rows.values())
