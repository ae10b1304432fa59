"""Phase 0: the raw local mirror (synthetic, when configured) and the prepared, checksummed parquet caches."""


if config["data"]["synth"]:

    rule synth:
        """Generate the offline mini-XTREME in the hub datasets' schemas (a local mirror)."""
        output:
            directory(grid.SYNTH_DIR),
        params:
            size=config["data"]["synth"]["size"],
            seed=config["data"]["synth"]["seed"],
        log:
            f"{LOGS}/synth.log",
        benchmark:
            f"{LOGS}/benchmarks/synth.tsv"
        threads: rule_threads("synth")
        resources:
            **rule_resources("synth"),
        retries: rule_retries("synth")
        conda:
            "../envs/xstilts.yaml"
        shell:
            "xstilts synth --out {output:q} --seed {params.seed:q} --size {params.size:q} --workers {threads}"
            " > {log:q} 2>&1"


rule prepare:
    """Normalise one task into the internal schema (parquet + manifest)."""
    input:
        get_raw_input,
    output:
        directory(f"{grid.PREPARED_ROOT}/{{key}}/{{task}}"),
    params:
        source=lambda wildcards, output: grid.prepare_job(config, output[0]).source,
        options=lambda wildcards, output: prepare_options(output[0]),
        seed=config["data"]["seed"],
    log:
        f"{LOGS}/prepare/{{key}}/{{task}}.log",
    benchmark:
        f"{LOGS}/benchmarks/prepare/{{key}}/{{task}}.tsv"
    threads: rule_threads("prepare")
    resources:
        **rule_resources("prepare"),
    retries: rule_retries("prepare")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts prepare --task {wildcards.task:q} --source {params.source:q} {params.options}"
        " --seed {params.seed:q} --out {output:q} > {log:q} 2>&1"


rule prepare_translated:
    """Prepare the machine-translated training data of one intermediate task (variant mt): the local mirror's,
    or the hub translations (registry.TRANSLATED_HUB_SOURCES) at their locked commits."""
    input:
        get_raw_input,
    output:
        directory(f"{grid.PREPARED_ROOT}/{{key}}/{grid.TRANSLATED}/{{task}}"),
    params:
        source=lambda wildcards, output: grid.prepare_job(config, output[0]).source,
        options=lambda wildcards, output: prepare_options(output[0]),
        seed=config["data"]["seed"],
    log:
        f"{LOGS}/prepare_translated/{{key}}/{{task}}.log",
    benchmark:
        f"{LOGS}/benchmarks/prepare_translated/{{key}}/{{task}}.tsv"
    threads: rule_threads("prepare_translated")
    resources:
        **rule_resources("prepare_translated"),
    retries: rule_retries("prepare_translated")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts prepare --task {wildcards.task:q} --translated --source {params.source:q} {params.options}"
        " --seed {params.seed:q} --out {output:q} > {log:q} 2>&1"


rule prepare_corpus:
    """Prepare the unlabelled multilingual corpus (demo pretraining, variant mlm)."""
    input:
        get_raw_input,
    output:
        directory(f"{grid.PREPARED_ROOT}/{{key}}/{grid.CORPUS}"),
    params:
        source=lambda wildcards, output: grid.prepare_job(config, output[0]).source,
        options=lambda wildcards, output: prepare_options(output[0]),
        seed=config["data"]["seed"],
    log:
        f"{LOGS}/prepare_corpus/{{key}}.log",
    benchmark:
        f"{LOGS}/benchmarks/prepare_corpus/{{key}}.tsv"
    threads: rule_threads("prepare_corpus")
    resources:
        **rule_resources("prepare_corpus"),
    retries: rule_retries("prepare_corpus")
    conda:
        "../envs/xstilts.yaml"
    shell:
        "xstilts prepare --corpus --source {params.source:q} {params.options} --seed {params.seed:q} --out {output:q}"
        " > {log:q} 2>&1"


rule data_all:
    """Target: every prepared dataset the grid reads."""
    input:
        [job.out for job in grid.prepare_jobs(config)],
