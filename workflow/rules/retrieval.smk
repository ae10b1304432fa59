"""BUCC and Tatoeba: no training set, so the row's encoder (phase ii, or the pretrained one for `none`)
is scored directly."""


if grid.retrieval_targets(config):

    rule retrieve:
        """Bitext retrieval / mining from a row's encoder, every retrieval target in one job (one encoder load)."""
        input:
            encoder=get_encoder,
            data=[grid.prepared_dir(config, t) for t in grid.retrieval_targets(config)],
        output:
            metrics=[f"{job_out('retrieval', t)}/metrics.json" for t in grid.retrieval_targets(config)],
            cost=[f"{job_out('retrieval', t)}/cost.json" for t in grid.retrieval_targets(config)],
        params:
            encoder=get_encoder_dir,
            targets=lambda wildcards: quoted(grid.retrieve_args(config, row_of(wildcards))),
            hparams=grid.hparams_json(config, "retrieval"),
        log:
            job_log("retrieval"),
        benchmark:
            job_log("retrieval", kind="benchmarks")
        threads: rule_threads("retrieve")
        resources:
            **rule_resources("retrieve"),
        retries: rule_retries("retrieve")
        conda:
            "../envs/xstilts.yaml"
        shell:
            "xstilts retrieve --encoder {params.encoder:q} {params.targets} --hparams {params.hparams:q}"
            " > {log:q} 2>&1"
