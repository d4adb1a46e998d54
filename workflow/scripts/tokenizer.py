"""Train a tokenizer on the corpus (demo), or save the base model's own."""

from polyprune.data import load_tokenizer, train_tokenizer
from polyprune.fast_tokenizer import save_tokenizer
from polyprune.jobs import job

with job(snakemake) as settings:
    tok = settings["tokenizer"]
    if tok["source"] == "train":
        train_tokenizer(snakemake.input, tok["vocab_size"], snakemake.output[0])
    else:
        model = settings["model"]
        save_tokenizer(load_tokenizer(model["base"], model.get("revision")), snakemake.output[0])
