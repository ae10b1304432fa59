"""Phase (iii): fine-tune a row's encoder on each English training task, then evaluate zero-shot on every
language of each target trained on it (XQuAD and MLQA share the SQuAD v1.1 model), all targets of a row in one job."""


rule finetune:
    """Fine-tune a row's encoder on one English training task (fresh head)."""
    input:
        encoder=get_encoder,
        data=lambda wildcards: grid.prepared_dir(config, wildcards.train_task),
    output:
        model=directory(f"{job_out('finetune', '{train_task}')}/model"),
        cost=f"{job_out('finetune', '{train_task}')}/cost.json",
        dev=f"{job_out('finetune', '{train_task}')}/dev.json",
    params:
        encoder=get_encoder_dir,
        out=job_out("finetune", "{train_task}"),
        hparams=lambda wildcards: grid.hparams_json(config, "finetune", wildcards.train_task),
        state=f"{RESULTS}/.state/{ROW}/finetune/{{train_task}}",
        label=lambda wildcards: f"finetune {row_of(wildcards).path} {wildcards.train_task}",
    log:
        job_log("finetune", "{train_task}"),
    benchmark:
        job_log("finetune", "{train_task}", kind="benchmarks")
    threads: rule_threads("finetune")
    resources:
        **rule_resources("finetune"),
    retries: rule_retries("finetune")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts finetune --encoder {params.encoder:q} --train-task {wildcards.train_task:q}"
        " --data {input.data:q} --adaptation {wildcards.adaptation:q} --seed {wildcards.seed:q}"
        " --hparams {params.hparams:q} --state-dir {params.state:q} --label {params.label:q}"
        " --out {params.out:q} > {log:q} 2>&1"


if grid.eval_targets(config):

    rule evaluate:
        """Zero-shot evaluation of every target of a row, on every language, in one job: each target reads the
        model fine-tuned on its English training task (docs/workflow.md, "Why a row is evaluated in one job")."""
        input:
            models=lambda wildcards: grid.row_finetuned_models(config, row_of(wildcards)),
            data=[grid.prepared_dir(config, t) for t in grid.eval_targets(config)],
        output:
            metrics=[f"{job_out('evaluate', t)}/metrics.json" for t in grid.eval_targets(config)],
            cost=[f"{job_out('evaluate', t)}/cost.json" for t in grid.eval_targets(config)],
        params:
            targets=lambda wildcards: quoted(grid.evaluate_args(config, row_of(wildcards))),
        log:
            job_log("evaluate"),
        benchmark:
            job_log("evaluate", kind="benchmarks")
        threads: rule_threads("evaluate")
        resources:
            **rule_resources("evaluate"),
        retries: rule_retries("evaluate")
        conda:
            "../envs/xstilts.yaml"
        shell:
            "xstilts evaluate {params.targets} > {log:q} 2>&1"


rule finetune_all:
    """Target: every fine-tuned model of the grid."""
    input:
        [
            f"{RESULTS}/{grid.job_dir(row.path, 'finetune', task)}/cost.json"
            for row, task in grid.finetune_jobs(config)
        ],
