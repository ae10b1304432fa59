# Snakemake's own CPU per job, by scheduler (docs/workflow.md): 300 x 2 chained one-core jobs of `sleep 0.2`.
#   /usr/bin/time snakemake -s bench/scheduler.smk -d /tmp/sched --cores 2 -q --scheduler greedy   (then ilp)
N = 300


rule all:
    input:
        expand("out/b{i}.txt", i=range(N)),


rule a:
    output:
        "out/a{i}.txt",
    shell:
        "sleep 0.2; echo {wildcards.i} > {output}"


rule b:
    input:
        "out/a{i}.txt",
    output:
        "out/b{i}.txt",
    shell:
        "sleep 0.2; cat {input} > {output}"
