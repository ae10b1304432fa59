"""Config validation, wildcard constraints and input functions. Every decision about which jobs exist and
what they read is made in `xstilts.grid`; this file only adapts it to Snakemake's wildcards."""

import os
import shlex
import signal
import sys
from pathlib import Path

from xstilts import grid, registry
from xstilts.errors import UserError


def fail(message):
    """Bad input found while Snakemake reads the workflow or builds the DAG: one line and exit 2, as the
    `xstilts` verbs do (a WorkflowError would print the file, line and a traceback frame around it)."""
    print(f"xstilts: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


try:
    grid.check_config(config, Path(workflow.current_basedir) / "../schemas/config.schema.yaml")
except UserError as e:
    fail(f"invalid config: {e}")

# Tokenised features are shared by every job that reads the same data with the same tokenizer, max length
# and stride (xstilts.features.cached_features); jobs inherit this from Snakemake's environment.
os.environ.setdefault("XSTILTS_CACHE_DIR", os.path.abspath(grid.FEATURE_CACHE))

# Inside a cluster job (`--mode remote`, e.g. the Snakemake that Slurm runs under srun): Slurm's
# `--signal=USR1@180` reaches every process of the job step. The training process saves its state and
# exits 75; this Snakemake must outlive it to report that exit (USR1's default action would kill it first,
# and the step's end would then kill the training process mid-save).
if workflow.remote_exec:
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)


def use_warm_worker():
    """The warm worker serves jobs this Snakemake runs itself, in its own environment."""
    return (config["warm_worker"] and workflow.local_exec and not workflow.remote_exec
            and not workflow.subprocess_exec and not workflow.deployment_settings.deployment_method)


onstart:
    if use_warm_worker():
        from xstilts import worker

        worker.start()


RESULTS = grid.results_dir(config)
ROW = grid.ROW_PATTERN
LOGS = grid.LOGS_ROOT


wildcard_constraints:
    **grid.wildcard_constraints(config),


GRID_ROWS = set(grid.rows(config))


def row_of(wildcards):
    """The row of a job's wildcards; a target path outside the grid ends the run naming the wildcard."""
    row = grid.Row(wildcards.backbone, wildcards.adaptation, int(wildcards.seed), wildcards.intermediate,
                   wildcards.variant)
    if row not in GRID_ROWS:
        try:
            grid.check_row(config, row)
        except UserError as e:
            fail(e)
    return row


def job_out(phase, name=None):
    """A job's output dir pattern under the results dir (wildcards left in)."""
    return f"{RESULTS}/{grid.job_dir(ROW, phase, name)}"


def job_log(phase, name=None, kind="logs"):
    return f"{RESULTS}/{grid.log_path(ROW, phase, name, kind)}"


def quoted(args):
    """Optional command-line arguments as one already shell-quoted string."""
    return shlex.join(str(a) for a in args)


def rule_resources(rule):
    """Resources of one rule (mem_mb and runtime grow with the attempt)."""
    return {
        "mem_mb": lambda wildcards, attempt: grid.rule_resources(config, rule, attempt)["mem_mb"],
        "runtime": lambda wildcards, attempt: grid.rule_resources(config, rule, attempt, wildcards)["runtime"],
        **{k: grid.rule_resources(config, rule)[k] for k in ("cpus_per_task", "gpu")},
    }


def rule_threads(rule):
    return grid.rule_resources(config, rule)["threads"]


def rule_retries(rule):
    """Retries are the submitting Snakemake's business: it resubmits a failed (e.g. preempted) job as a new
    cluster job with attempt-scaled resources. Inside that job, a retry would restart in the same allocation,
    minutes before the time limit that made the job stop."""
    return 0 if workflow.remote_exec else grid.rule_resources(config, rule)["retries"]


def get_encoder(wildcards):
    """The encoder directory a row's phase (iii) and retrieval read (the declared output that makes it)."""
    row = row_of(wildcards)
    if row.intermediate == grid.NONE:
        return grid.model_dir(row.backbone, config)
    return f"{grid.encoder_dir(config, row)}/encoder"


def get_encoder_dir(wildcards):
    """The model directory passed as --encoder: the pretrained model, or the intermediate output dir."""
    return grid.encoder_dir(config, row_of(wildcards))


def get_raw_input(wildcards):
    """The synthetic mirror when this workflow makes it; a user's mirror or the hub is not a workflow input."""
    return grid.SYNTH_DIR if config["data"]["synth"] else []


def prepare_options(output_dir):
    """The optional `xstilts prepare` arguments of the job writing `output_dir`, already quoted."""
    return quoted(grid.prepare_job(config, output_dir).options())


def get_intermediate_input(wildcards):
    row = row_of(wildcards)
    tasks = grid.tasks_of(config, row.intermediate)
    inputs = {"model": grid.model_dir(row.backbone, config), "data": [grid.prepared_dir(config, t) for t in tasks]}
    if row.variant == "mlm":
        inputs["corpus"] = grid.corpus_dir(config)
    if row.variant == "mt":
        inputs["translated"] = [grid.translated_dir(config, t) for t in tasks]
    return inputs


def variant_options(wildcards, input):
    """--corpus (variant mlm) or --translated (variant mt), already quoted."""
    if wildcards.variant == "mlm":
        return quoted(["--corpus", input.corpus])
    if wildcards.variant == "mt":
        return quoted(["--translated", ",".join(input.translated)])
    return ""


def get_final_output():
    return grid.final_outputs(config)
