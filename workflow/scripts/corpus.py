"""The synthetic world's corpus of one language, in CC-100's format."""

from polyprune.data import copy_lines
from polyprune.jobs import job
from polyprune.synth import World

with job(snakemake) as settings:
    world = World.from_config(settings["world"])
    chars = copy_lines(world.corpus_lines(snakemake.wildcards.lang), snakemake.output[0])
    print(f"{snakemake.wildcards.lang}: {chars} characters")
