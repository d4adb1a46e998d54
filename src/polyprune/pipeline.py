"""The study's steps, each from files to files: what the Snakemake scripts and the CLI call."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import torch

from polyprune import data
from polyprune.bench import model_counts
from polyprune.config import component_weights, parse_cell
from polyprune.gates import per_language
from polyprune.importance import (
    factorize_embeddings,
    gradient_importance,
    load_scores,
    normalize,
    save_scores,
)
from polyprune.io import file_digest, read_json, write_json
from polyprune.model import MaskedLM, ModelConfig, load_model, save_model
from polyprune.provenance import FULL_DIGEST_LIMIT, provenance
from polyprune.prune import achieved_sparsity, gated_model, physically_prune, select_components
from polyprune.train import TrainSettings, close_distributed, mlm_loss, train_mlm


def shard_size(shard_dir) -> float:
    return float(read_json(Path(shard_dir) / "meta.json", "shard meta")["size"])


def open_shards(shard_dirs: list, split: str, tokenizer_dir, data_cfg: dict) -> data.ShardSet:
    dirs = {Path(d).name: Path(d) for d in shard_dirs}
    tok = data.load_tokenizer(str(tokenizer_dir))
    masking = data.masking_for(tok, data_cfg["mlm_probability"])
    sizes = {lang: shard_size(d) for lang, d in dirs.items()}
    return data.ShardSet(dirs, split, data_cfg["sampling_alpha"], masking, sizes)


def scratch_model(shape: dict, tokenizer_dir, seed: int) -> MaskedLM:
    """A freshly initialised model of `shape`, the same for the same seed."""
    tok = data.load_tokenizer(str(tokenizer_dir))
    cfg = ModelConfig.from_config_shape(shape, len(tok), pad_id=tok.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MaskedLM(cfg)


def train_model(
    init,
    tokenizer_dir,
    shard_dirs: list,
    out_dir,
    checkpoint_dir,
    training: dict,
    data_cfg: dict,
    identity: dict,
    shape: dict | None = None,
    objective: dict | None = None,
    log=print,
) -> None:
    """Training of `init` (a checkpoint, or a scratch model of `shape`) with `objective` (MLM
    by default; see make_objective), resumable while nothing it reads changes; its checkpoints
    are removed once the model is written."""
    seed = identity["seed"]
    model = scratch_model(shape, tokenizer_dir, seed) if init is None else load_model(init)
    # learned gates train alone first (Appendix A), before the weights' `steps`
    alone = (objective or {}).get("l0", {}).get("alpha_only_steps", 0)
    settings = TrainSettings(**{**training, "steps": training["steps"] + alone, "seed": seed})
    shards = open_shards(shard_dirs, "train", tokenizer_dir, data_cfg)
    log(f"languages and sampling probabilities: {dict(zip(shards.langs, shards.probs.round(4)))}")
    trained = make_objective(model, objective, shards.langs, seed)
    scores = list((objective or {}).get("scores", {}).values())  # DS's rankings
    inputs = [tokenizer_dir, *shard_dirs, *scores] + ([init] if init else [])
    digests = {str(p): file_digest(p, FULL_DIGEST_LIMIT) for p in inputs}
    job = {
        "inputs": digests,
        "data": data_cfg,
        "shape": shape if init is None else None,
        "objective": objective,
    }
    records = train_mlm(trained, shards, settings, Path(checkpoint_dir), job, log=log)
    if int(torch.distributed.get_rank() if torch.distributed.is_initialized() else 0) == 0:
        log_keys = ("step", "loss", "lr")  # throughput stays in the job's log: not reproducible
        trained.save(
            out_dir,
            {
                "training": training,
                "log": [{k: r[k] for k in log_keys} for r in records],
                "provenance": provenance(
                    identity, [tokenizer_dir, *scores] + ([init] if init else [])
                ),
            },
        )
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    close_distributed()


def make_objective(model: MaskedLM, spec: dict | None, langs: list[str], seed: int):
    """What a training job optimises (`spec`, built by the workflow from the cell's algorithm):
    - None or {"kind": "mlm"}: MLM with the model's own gates;
    - {"kind": "distil", "layers", "distillation"}: DistilXLM-R, a student of the model's
      layers `layers` (default every other one) distilled from the model;
    - {"kind": "l0", "setting", "scope", "l0", "hard_concrete", "families"?, "distillation"?}:
      hard-concrete gates learned with the weights, one set ("shared") or one per language
      (L0Settings in `l0`; the family prior of the diversity loss from `families`), with
      distillation from the dense model if `distillation` is given;
    - {"kind": "dynamic", "scores", "normalize", "rank_by", "grid", "trainable", "dynamic",
      "component_weights", "hard_concrete", "families"?}: Dynamic Sparsification of the model
      with embeddings factorised, its gates from the importance files `scores` ({"shared": path}
      or one per language; DynamicSettings in `dynamic`)."""
    from polyprune import objectives

    spec = spec or {"kind": "mlm"}
    distil = spec.get("distillation")
    distil = objectives.DistilSettings(**distil) if distil else None
    if spec["kind"] == "mlm":
        return objectives.MLM(model)
    if spec["kind"] == "distil":
        from polyprune.distil import student_from_teacher

        student = student_from_teacher(model, spec.get("layers", "every_other"))
        return objectives.MLM(student, model, distil)
    if spec["kind"] == "dynamic":
        return dynamic_objective(model, spec)
    from polyprune.l0 import HardConcreteGates, family_prior

    teacher = copy.deepcopy(model) if distil else None
    if spec["scope"] == "all":
        model = factorize_embeddings(model)
    names = list(langs) if spec["setting"] == "nonshared" else ["shared"]
    cfg = model.cfg
    unit = component_weights(cfg.head_dim, spec["component_weights"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        gates = HardConcreteGates(
            names, cfg.heads, cfg.ffn, cfg.emb_rank, unit, **spec["hard_concrete"]
        )
    families = spec.get("families")
    prior = family_prior(names, families or {}, enabled=families is not None)
    settings = objectives.L0Settings(**spec["l0"], scope=spec["scope"])
    return objectives.L0(model, gates, settings, prior, teacher, distil)


def dynamic_objective(model: MaskedLM, spec: dict):
    from polyprune import ds, objectives
    from polyprune.l0 import family_prior

    model = factorize_embeddings(model)
    unit = component_weights(model.cfg.head_dim, spec["component_weights"])
    scores = {
        name: normalize(load_scores(p)[0], spec["normalize"]) for name, p in spec["scores"].items()
    }
    gates = ds.from_scores(
        scores, unit, spec["grid"], spec["trainable"], spec["rank_by"], spec["hard_concrete"]
    )
    families = spec.get("families")
    prior = family_prior(gates.names, families or {}, enabled=families is not None)
    return objectives.Dynamic(model, gates, objectives.DynamicSettings(**spec["dynamic"]), prior)


def cut_dynamic(ds_dir, out_dir, sparsity: float, identity: dict, language=None) -> dict:
    """The model of a DS checkpoint at `sparsity` (ds.cut), written with what it reached."""
    from polyprune import ds
    from polyprune.bench import model_counts

    model, gates = ds.load_dynamic(ds_dir)
    small, info = ds.cut(model, gates, sparsity, language)
    info = {**info, "params": model_counts(small), "provenance": provenance(identity, [ds_dir])}
    save_model(small, out_dir, extra={"dynamic_cut": info})
    return info


def score_importance(
    model_dir,
    tokenizer_dir,
    shard_dirs: list,
    out_path,
    options: dict,
    data_cfg: dict,
    identity: dict,
    device: str = "cpu",
) -> None:
    """Eq 4 over the importance split of the given languages (one, or all of them)."""
    model = factorize_embeddings(load_model(model_dir)).to(device)
    tok = data.load_tokenizer(str(tokenizer_dir))
    masking = data.masking_for(tok, data_cfg["mlm_probability"])

    def batches():
        for d in shard_dirs:
            split = data.load_shard(d, "importance")
            yield from data.fixed_batches(split, masking, options["batch_size"], identity["seed"])

    scores, n = gradient_importance(model, batches(), options["granularity"])
    meta = {
        "languages": [Path(d).name for d in shard_dirs],
        "batches": n,
        "granularity": options["granularity"],
        "normalized": "none",
        "note": "raw Eq 4 scores; layer normalisation, if any, is applied when pruning",
        "provenance": provenance(identity, [model_dir]),
    }
    save_scores(out_path, scores, meta)


def make_cell(base_dir, cell: str, score_paths: dict, pruning: dict, importance: dict, identity):
    """The gated model of a cell, before continued pretraining, and a summary of its gates.

    `score_paths` maps gate-set names to importance files: {"shared": all.safetensors} or one
    entry per language."""
    spec = parse_cell(cell)
    base = load_model(base_dir)
    if pruning["scope"] == "all":
        base = factorize_embeddings(base)
    unit = component_weights(base.cfg.head_dim, pruning["component_weights"])
    gate_sets, summary = {}, {}
    for name, path in score_paths.items():
        scores, meta = load_scores(path)
        if base.cfg.emb_rank is None:
            scores.emb = None
        gates = select_components(
            normalize(scores, importance["normalize"]),
            unit,
            spec.sparsity,
            pruning["scope"],
            pruning["rank_by"],
        )
        gate_sets[name] = gates
        summary[name] = {
            "target_sparsity": spec.sparsity,
            "encoder_sparsity": achieved_sparsity(gates, unit, "encoder"),
            "heads_kept": [int(t.count_nonzero()) for t in gates.heads],
            "ffn_kept": [int(t.count_nonzero()) for t in gates.ffn],
            "emb_ranks_kept": None if gates.emb is None else int(gates.emb.count_nonzero()),
            "scores": meta["languages"],
        }
    model = gated_model(base, gate_sets)
    info = {
        "cell": cell,
        "algorithm": spec.algorithm,
        "setting": spec.setting,
        "normalize": importance["normalize"],
        "rank_by": pruning["rank_by"],
        "scope": pruning["scope"],
        "component_weights": unit,
        "gate_sets": summary,
        "provenance": provenance(identity, [base_dir, *score_paths.values()]),
    }
    return model, info


def export_cell(model_dir, out_dir, params_path, cell: str, identity: dict) -> dict:
    """The final checkpoint: physically smaller for a shared gate set, else as trained; and its
    parameter counts (`params_path`: stored, and what every gate set keeps)."""
    model = load_model(model_dir)
    shared = model.gate_table is not None and not per_language(model.gate_table.names)
    final = physically_prune(model) if shared else model
    info = {"physically_pruned": shared, "provenance": provenance(identity, [model_dir])}
    save_model(final, out_dir, extra=info)
    counts = {"cell": cell, **model_counts(final), "provenance": provenance(identity, [out_dir])}
    write_json(params_path, counts)
    return info


def evaluate_mlm(
    before_dir,
    after_dir,
    tokenizer_dir,
    shard_dirs: list,
    data_cfg: dict,
    identity: dict,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict:
    """MLM loss per language before and after continued pretraining, each language with its
    own gate set in the non-shared setting."""
    tok = data.load_tokenizer(str(tokenizer_dir))
    masking = data.masking_for(tok, data_cfg["mlm_probability"])
    models = {"before": load_model(before_dir), "after": load_model(after_dir)}
    models = {stage: model.to(device) for stage, model in models.items()}
    losses = {}
    for d in shard_dirs:
        lang = Path(d).name
        split = data.load_shard(d, "eval")
        losses[lang] = {
            stage: mlm_loss(m, split, masking, batch_size, identity["seed"], m.gate_set_of(lang))
            for stage, m in models.items()
        }
    return {"loss": losses, "provenance": provenance(identity, [before_dir, after_dir])}


def write_cell(model, info, out_dir, info_path) -> None:
    save_model(model, out_dir, extra={"cell": info["cell"]})
    write_json(info_path, info)
