if SYNTHETIC:

    rule corpus:
        output:
            f"{OUT}/corpus/{{lang}}.txt",
        log:
            f"{LOGS}/corpus/{{lang}}.log",
        conda:
            "../envs/data.yaml"
        params:
            settings=settings("world"),
        script:
            "../workflow/scripts/corpus.py"


rule tokenizer:
    input:
        [corpus_location(lang) for lang in LANGS]
        if config["tokenizer"]["source"] == "train"
        else [],
    output:
        directory(f"{OUT}/tokenizer"),
    log:
        f"{LOGS}/tokenizer.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=settings("tokenizer", "model.base", "model.revision"),
    script:
        "../workflow/scripts/tokenizer.py"


rule shard:
    input:
        corpus_input,
        tokenizer=rules.tokenizer.output[0],
    output:
        directory(f"{OUT}/shards/{{lang}}"),
    log:
        f"{LOGS}/shard/{{lang}}.log",
    conda:
        "../envs/data.yaml"
    params:
        settings=settings("data.seq_len", "data.eval_sequences", "data.importance_sequences"),
        location=lambda wildcards: corpus_location(wildcards.lang),
        size=lambda wildcards: SIZES[wildcards.lang] if SIZES else None,
        max_train=lambda wildcards: polyconfig.train_sequences(config, wildcards.lang),
    script:
        "../workflow/scripts/shard.py"


if SCRATCH:

    rule base_model:
        input:
            tokenizer=rules.tokenizer.output[0],
            shards=shards(LANGS),
        output:
            directory(f"{OUT}/base"),
        log:
            f"{LOGS}/base_model.log",
        conda:
            "../envs/train.yaml"
        threads: 2  # the demo trains its base model alone: all its cores
        params:
            launch=launcher,
            settings=settings(
                "base_training", "data.mlm_probability", "data.sampling_alpha", "model.shape"
            ),
            checkpoints=f"{OUT}/checkpoints/base",
        shell:
            "{params.launch} --threads {threads} train --section base_training --init scratch"
            " --config {params.settings:q} --tokenizer {input.tokenizer:q}"
            " --shards {input.shards:q} --out {output:q} --checkpoints {params.checkpoints:q}"
            " > {log:q} 2>&1"

else:

    rule base_model:
        output:
            directory(f"{OUT}/base"),
        log:
            f"{LOGS}/base_model.log",
        conda:
            "../envs/train.yaml"
        params:
            settings=settings("model.base", "model.revision"),
        shell:
            "{PYTHON:q} -m polyprune.cli convert --config {params.settings:q} --out {output:q}"
            " > {log:q} 2>&1"
