"""Train a tokenizer on the corpus (demo), or save the base model's own."""

from polyprune.data import load_tokenizer, train_tokenizer
from polyprune.jobs import job

with job(snakemake) as settings:
    tok = settings["tokenizer"]
    if tok["source"] == "train":
        train_tokenizer(snakemake.input, tok["vocab_size"], snakemake.output[0])
    else:
        model = settings["model"]
        load_tokenizer(model["base"], model.get("revision")).save_pretrained(snakemake.output[0])
