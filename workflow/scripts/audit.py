"""Hold the re-derived results of the audit's sample against the originals, number by number."""

from polyprune.audit import audit
from polyprune.audit import settings as audit_settings
from polyprune.jobs import job

with job(snakemake) as settings:
    rows = audit(
        [tuple(pair) for pair in snakemake.params.pairs],
        snakemake.output.csv,
        snakemake.output.md,
        audit_settings(settings.get("audit")),
        settings["identity"]["run"],
    )
    differ = sum(row.delta != 0 for row in rows)
    print(f"{len(rows)} numbers compared, {differ} differ (see {snakemake.output.md})")
