"""xstilts: X-STILTs on XTREME. The grid (backbone x adaptation x seed x intermediate setting x variant,
times each target) comes from `xstilts.grid`; every rule calls one `xstilts` verb (docs/workflow.md).

    snakemake --profile profiles/local              # every cell (the default target `all`)
    snakemake --profile profiles/local summary      # then the summary tables and plots
"""

from snakemake.utils import min_version

min_version("9.0")


# The demo config, unless --configfile names another: Snakemake would otherwise MERGE the two files.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"



report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


rule all:
    """Every cell of the grid: each row's metrics for each target, and the expected-cell list.

    The summary is a separate target (`summary`) so that a failed cell never blocks aggregation.
    """
    default_target: True
    input:
        get_final_output(),


include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/intermediate.smk"
include: "workflow/rules/target.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/export.smk"
