rule importance:
    input:
        model=f"{OUT}/base",
        tokenizer=rules.tokenizer.output[0],
        shards=lambda wildcards: shards(score_langs(wildcards.scores)),
    output:
        f"{OUT}/importance/{{scores}}.safetensors",
    log:
        f"{LOGS}/importance/{{scores}}.log",
    conda:
        "../envs/train.yaml"
    threads: 1
    params:
        launch=launcher,
        settings=settings("importance.batch_size", "importance.granularity", "data.mlm_probability"),
    shell:
        "{params.launch} --threads {threads} importance --config {params.settings:q}"
        " --model {input.model:q} --tokenizer {input.tokenizer:q} --shards {input.shards:q}"
        " --out {output:q} > {log:q} 2>&1"
