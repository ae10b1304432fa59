"""Phase (ii): intermediate-task training of one row (one task or several jointly; English-only or with a
multilingual variant; full fine-tuning or LoRA). The `none` row has no job here."""


rule intermediate:
    """Train one intermediate setting; writes the merged encoder, its cost record and training log."""
    input:
        unpack(get_intermediate_input),
    output:
        encoder=directory(f"{job_out('intermediate')}/encoder"),
        cost=f"{job_out('intermediate')}/cost.json",
        train_log=f"{job_out('intermediate')}/train_log.json",
    wildcard_constraints:
        intermediate=grid.alternatives(s for s in config["intermediate"] if s != grid.NONE),
    params:
        out=job_out("intermediate"),
        tasks=lambda wildcards: ",".join(grid.tasks_of(config, wildcards.intermediate)),
        data=lambda wildcards, input: ",".join(input.data),
        variant_options=variant_options,
        hparams=lambda wildcards: grid.hparams_json(config, "intermediate", wildcards.intermediate),
        state=f"{RESULTS}/.state/{ROW}/intermediate",
        label=lambda wildcards: f"intermediate {row_of(wildcards).path}",
    log:
        job_log("intermediate"),
    benchmark:
        job_log("intermediate", kind="benchmarks")
    threads: rule_threads("intermediate")
    resources:
        **rule_resources("intermediate"),
    retries: rule_retries("intermediate")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts intermediate --model {input.model:q} --tasks {params.tasks:q} --data {params.data:q}"
        " --variant {wildcards.variant:q} {params.variant_options} --adaptation {wildcards.adaptation:q}"
        " --seed {wildcards.seed:q} --hparams {params.hparams:q} --state-dir {params.state:q}"
        " --label {params.label:q} --out {params.out:q} > {log:q} 2>&1"


rule intermediate_all:
    """Target: every phase-(ii) encoder of the grid."""
    input:
        [f"{grid.encoder_dir(config, row)}/cost.json" for row in grid.intermediate_jobs(config)],
