"""BUCC and Tatoeba: no training set, so the row's encoder (phase ii, or the pretrained one for `none`)
is scored directly."""


rule retrieve:
    """Bitext retrieval / mining from a row's encoder for one target."""
    input:
        encoder=get_encoder,
        data=lambda wildcards: grid.prepared_dir(config, wildcards.target),
    output:
        metrics=f"{job_out('retrieval', '{target}')}/metrics.json",
        cost=f"{job_out('retrieval', '{target}')}/cost.json",
    wildcard_constraints:
        target=grid.alternatives(grid.retrieval_targets(config)),
    params:
        encoder=get_encoder_dir,
        out=job_out("retrieval", "{target}"),
        languages=lambda wildcards: languages_args(wildcards.target),
        hparams=grid.hparams_json(config, "retrieval"),
    log:
        job_log("retrieval", "{target}"),
    benchmark:
        job_log("retrieval", "{target}", kind="benchmarks")
    threads: rule_threads("retrieve")
    resources:
        **rule_resources("retrieve"),
    retries: rule_retries("retrieve")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts retrieve --encoder {params.encoder:q} --target {wildcards.target:q} --data {input.data:q}"
        " {params.languages} --hparams {params.hparams:q} --out {params.out:q} > {log:q} 2>&1"
