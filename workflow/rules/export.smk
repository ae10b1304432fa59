"""The XTREME submission folder of a row: its 9 targets' test predictions and gold labels in one tree
(`xstilts export`, docs/metrics.md "Submission folder"). Not part of `all`; ask for it per row or for
every row:

    snakemake --profile profiles/local results/demo/tiny/full/seed0/mnli/en/submission
    snakemake --profile profiles/local export_all
"""


rule export:
    """One row's test predictions and labels as one XTREME submission folder."""
    input:
        # every cell of this row (its targets' metrics.json): the export needs them all finished
        lambda wildcards: [
            p for p in grid.final_outputs(config) if p.startswith(f"{RESULTS}/{row_of(wildcards).path}/")
        ],
    output:
        directory(f"{RESULTS}/{ROW}/submission"),
    params:
        row=f"{RESULTS}/{ROW}",
    log:
        job_log("export"),
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts export --row {params.row:q} --out {output:q} > {log:q} 2>&1"


rule export_all:
    """Target: the submission folder of every row of the grid."""
    input:
        [f"{RESULTS}/{row.path}/submission" for row in grid.rows(config)],


localrules:
    export,
    export_all,
