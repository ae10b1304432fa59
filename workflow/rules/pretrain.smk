"""Phase (i): the pretrained multilingual encoder, fetched from the hub at a pinned revision or, for the
demo, trained here on the prepared corpus."""


rule fetch_model:
    """Snapshot a hub model at its pinned commit (a branch through the lock) into resources/models/<backbone>."""
    output:
        directory(f"{grid.MODELS_ROOT}/{{backbone}}"),
    wildcard_constraints:
        backbone=grid.alternatives(grid.hub_backbones(config)),
    params:
        model=lambda wildcards: config["backbones"][wildcards.backbone]["model"],
        revision=lambda wildcards: grid.backbone_commit(config, wildcards.backbone),
    log:
        f"{LOGS}/fetch_model/{{backbone}}.log",
    benchmark:
        f"{LOGS}/benchmarks/fetch_model/{{backbone}}.tsv"
    threads: rule_threads("fetch_model")
    resources:
        **rule_resources("fetch_model"),
    retries: rule_retries("fetch_model")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts fetch-model --model {params.model:q} --revision {params.revision:q} --out {output:q}"
        " > {log:q} 2>&1"


rule pretrain:
    """Train the demo's tokenizer (deterministic) and tiny MLM on the prepared corpus; the tokenizer is kept
    in the state dir with the checkpoints, so a killed job resumes on the same ids."""
    input:
        corpus=grid.corpus_dir(config),
    output:
        directory(f"{grid.MODELS_ROOT}/{{backbone}}"),
    wildcard_constraints:
        backbone=grid.alternatives(grid.pretrained_backbones(config)),
    params:
        seed=lambda wildcards: config["backbones"][wildcards.backbone]["seed"],
        hparams=grid.hparams_json(config, "pretrain"),
        state=f"{grid.MODELS_ROOT}/.state/{{backbone}}",
    log:
        f"{LOGS}/pretrain/{{backbone}}.log",
    benchmark:
        f"{LOGS}/benchmarks/pretrain/{{backbone}}.tsv"
    threads: rule_threads("pretrain")
    resources:
        **rule_resources("pretrain"),
    retries: rule_retries("pretrain")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts pretrain --corpus {input.corpus:q} --out {output:q} --seed {params.seed:q}"
        " --hparams {params.hparams:q} --state-dir {params.state:q} > {log:q} 2>&1"


rule pretrain_all:
    """Target: every backbone of the config."""
    input:
        [grid.model_dir(b, config) for b in config["backbones"]],
