"""Table 4: the study's languages with their families and corpus sizes, and the family prior of
improved L0's diversity loss (Eq 12: P_ij = 0 for two languages of one family, else 1)."""

from polyprune.config import language_rows
from polyprune.io import atomic_file
from polyprune.jobs import job
from polyprune.report import markdown, write_csv

with job(snakemake) as settings:
    rows = language_rows(settings)
    header = ["code", "name", "family", "corpus", "unit"]
    table = [[r[k] for k in header] for r in rows]
    write_csv(snakemake.output.csv, header, table)
    prior_on = settings["pruning"].get("l0", {}).get("family_prior", False)
    codes = [r["code"] for r in rows]
    family = {r["code"]: r["family"] for r in rows}
    prior = [[a, *(int(not prior_on or family[a] != family[b]) for b in codes)] for a in codes]
    write_csv(snakemake.output.prior, ["language", *codes], prior)
    families = sorted({r["family"] for r in rows})
    state = "on" if prior_on else "off (all ones)"
    with atomic_file(snakemake.output.md) as tmp:
        tmp.write_text(
            f"# Table 4 ({settings['identity']['run']})\n\n"
            f"{len(rows)} languages in {len(families)} families. The family prior of the"
            f" diversity loss (Eq 12) is {state}: P_ij = 0 for two languages of one family, else"
            " 1 (the matrix: table4-prior.csv).\n\n" + markdown(header, table)
        )
