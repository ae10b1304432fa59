"""Phase (iii): fine-tune a row's encoder on each English training task, then evaluate zero-shot on every
language of each target trained on it (XQuAD and MLQA share the SQuAD v1.1 model)."""


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


rule evaluate:
    """Zero-shot evaluation of the fine-tuned model on every language of one target."""
    input:
        model=get_finetuned_model,
        data=lambda wildcards: grid.prepared_dir(config, wildcards.target),
    output:
        metrics=f"{job_out('evaluate', '{target}')}/metrics.json",
        cost=f"{job_out('evaluate', '{target}')}/cost.json",
    wildcard_constraints:
        target=grid.alternatives(grid.eval_targets(config)),
    params:
        out=job_out("evaluate", "{target}"),
        languages=lambda wildcards: languages_args(wildcards.target),
        hparams=lambda wildcards: grid.hparams_json(config, "evaluate", wildcards.target),
    log:
        job_log("evaluate", "{target}"),
    benchmark:
        job_log("evaluate", "{target}", kind="benchmarks")
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    retries: rule_retries("evaluate")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts evaluate --model {input.model:q} --target {wildcards.target:q} --data {input.data:q}"
        " {params.languages} --hparams {params.hparams:q} --out {params.out:q} > {log:q} 2>&1"


rule finetune_all:
    """Target: every fine-tuned model of the grid."""
    input:
        [
            f"{RESULTS}/{grid.job_dir(row.path, 'finetune', task)}/cost.json"
            for row, task in grid.finetune_jobs(config)
        ],
