"""The expected-cell list and the summary (transfer matrix, deltas, efficiency, plots).

`aggregate` reads whatever cell outputs exist and lists the rest in missing.csv; it depends only on the
cell list, so a missing or failed cell never blocks it. Run it after the grid: `snakemake summary`.
"""


rule cells:
    """Write the expected cells and jobs of this config (xstilts.grid.cells) for aggregation."""
    output:
        f"{RESULTS}/cells.json",
    params:
        cells=grid.cells(config),
    log:
        f"{RESULTS}/logs/cells.log",
    run:
        from xstilts.io import write_json

        write_json(output[0], params.cells)


SUMMARY = f"{RESULTS}/summary"
# report labels of the dev-split tables (their captions render them: workflow/report/<name>_dev.rst)
DEV_LABELS = {"transfer_matrix": {"table": "transfer matrix", "statistic": "mean over seeds"},
              "transfer_matrix_std": {"table": "transfer matrix", "statistic": "std over seeds"},
              "transfer_delta": {"table": "difference to none", "statistic": "mean over seeds"}}


rule aggregate:
    """Summarise every cell that has finished; list the rest with the reason in missing.csv."""
    input:
        cells=f"{RESULTS}/cells.json",
    output:
        # In the HTML report (`snakemake --report report.html summary`): one caption per file, each table's
        # caption renders the table itself (docutils csv-table), grouped by category/subcategory/labels.
        scores=report(f"{SUMMARY}/scores.parquet", caption="../report/scores.rst", category="Scores",
                      subcategory="Data", labels={"file": "every score (long format)"}),
        matrix=report(f"{SUMMARY}/transfer_matrix.csv", caption="../report/transfer_matrix.rst",
                      category="Transfer", subcategory="Test (zero-shot)",
                      labels={"table": "transfer matrix", "statistic": "mean over seeds"}),
        matrix_md=f"{SUMMARY}/transfer_matrix.md",
        matrix_std=report(f"{SUMMARY}/transfer_matrix_std.csv", caption="../report/transfer_matrix_std.rst",
                          category="Transfer", subcategory="Test (zero-shot)",
                          labels={"table": "transfer matrix", "statistic": "std over seeds"}),
        delta=report(f"{SUMMARY}/transfer_delta.csv", caption="../report/transfer_delta.rst",
                     category="Transfer", subcategory="Test (zero-shot)",
                     labels={"table": "difference to none", "statistic": "mean over seeds"}),
        delta_md=f"{SUMMARY}/transfer_delta.md",
        # 95% intervals and row-vs-baseline tests (xstilts.uncertainty; docs/metrics.md, "Uncertainty")
        intervals=report(f"{SUMMARY}/intervals.csv", caption="../report/intervals.rst", category="Transfer",
                         subcategory="Uncertainty", labels={"table": "95% intervals", "per": "cell and language"}),
        significance=report(f"{SUMMARY}/significance.csv", caption="../report/significance.rst",
                            category="Transfer", subcategory="Uncertainty",
                            labels={"table": "difference to none, tested", "per": "row and target"}),
        # multilingual vs English-only, LoRA vs full, backbones (xstilts.tradeoff; docs/metrics.md, "Tradeoff")
        tradeoff=report(f"{SUMMARY}/tradeoff.csv", caption="../report/tradeoff.rst", category="Efficiency",
                        subcategory="Tradeoff", labels={"table": "score and cost deltas", "per": "comparison"}),
        tradeoff_md=f"{SUMMARY}/tradeoff.md",
        # per target the intermediate chosen on English dev; the paper's claims tested (docs/metrics.md)
        headline=report(f"{SUMMARY}/headline.csv", caption="../report/headline.rst", category="Transfer",
                        subcategory="Headline", labels={"table": "best intermediate per target",
                                                        "per": "target, chosen on English dev"}),
        headline_md=f"{SUMMARY}/headline.md",
        claims=report(f"{SUMMARY}/claims.csv", caption="../report/claims.rst", category="Paper claims",
                      subcategory="Phang et al. 2020", labels={"table": "claims tested on this run", "per": "claim"}),
        claims_md=f"{SUMMARY}/claims.md",
        # synthetic data only: every planted comparison of the generator's transfer plan, recovered or not
        # (xstilts.plan; docs/metrics.md, "Planted transfers")
        **({"planted": report(f"{SUMMARY}/planted.csv", caption="../report/planted.rst", category="Transfer",
                              subcategory="Planted (synthetic data)",
                              labels={"table": "planted transfers recovered", "per": "planted comparison"}),
            "planted_md": f"{SUMMARY}/planted.md"} if config["data"].get("synth") else {}),
        # one paragraph from the numbers (xstilts.findings); its caption shows it in the page
        findings=report(f"{SUMMARY}/findings.md", caption="../report/findings.rst", category="Findings",
                        subcategory="Summary", labels={"text": "what this run's numbers say"}),
        # the same tables on the dev split (xstilts.aggregate.SPLITS; docs/metrics.md)
        dev=[report(f"{SUMMARY}/{name}_dev.{ext}", caption=f"../report/{name}_dev.rst", category="Transfer",
                    subcategory="Dev", labels=DEV_LABELS[name]) if ext == "csv" else f"{SUMMARY}/{name}_dev.{ext}"
             for name, ext in (("transfer_matrix", "csv"), ("transfer_matrix", "md"),
             ("transfer_matrix_std", "csv"), ("transfer_delta", "csv"), ("transfer_delta", "md"))],
        efficiency=report(f"{SUMMARY}/efficiency.csv", caption="../report/efficiency.rst",
                          category="Efficiency", subcategory="Data", labels={"file": "cost of every job"}),
        missing=report(f"{SUMMARY}/missing.csv", caption="../report/missing.rst", category="Scores",
                       subcategory="Data", labels={"file": "cells without a score"}),
        delta_plot=report(f"{SUMMARY}/plots/transfer_delta.png", caption="../report/transfer_delta_plot.rst",
                          category="Transfer", subcategory="Plots", labels={"figure": "difference to none"}),
        efficiency_plot=report(f"{SUMMARY}/plots/efficiency_vs_gain.png",
                               caption="../report/efficiency_plot.rst", category="Efficiency",
                               subcategory="Plots", labels={"figure": "gain against cost"}),
    params:
        results=lambda wildcards, input: os.path.dirname(input.cells),
        out=lambda wildcards, output: os.path.dirname(output.scores),
        # a short digest, not the list: it shows in the report and in every "Params have changed" reason
        finished=lambda wildcards: grid.finished_digest(config),
    log:
        f"{RESULTS}/logs/aggregate.log",
    benchmark:
        f"{RESULTS}/benchmarks/aggregate.tsv"
    threads: rule_threads("aggregate")
    resources:
        **rule_resources("aggregate"),
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts aggregate --results {params.results:q} --cells {input.cells:q} --out {params.out:q}"
        " > {log:q} 2>&1"


rule summary:
    """Target: the summary of whatever cells exist (run after `all`, also after a partial failure)."""
    input:
        rules.aggregate.output,


localrules:
    all,
    data_all,
    pretrain_all,
    intermediate_all,
    finetune_all,
    cells,
    aggregate,
    summary,
    # Downloads run where the network is: the submitting Snakemake (on a cluster, the login node).
    fetch_model,


if config["data"]["source"] == "hub":

    localrules:
        prepare,
        prepare_translated,
        prepare_corpus,
