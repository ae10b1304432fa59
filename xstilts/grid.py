"""Expand a workflow config into the grid of jobs: the one place that knows which jobs and cells exist.

`workflow/rules/common.smk` builds rule inputs, wildcard constraints and targets from these functions, the
tests compute expected job counts from them, and `cells()` is the list aggregation reads, so a cell is
defined once. Task names come from `xstilts.registry`, hyperparameter defaults stay in `xstilts.recipes`;
this module only checks names against them and merges the config's overrides.

A row is (backbone, adaptation, seed, intermediate, variant); a cell is a row and one target.
Paths follow docs/design.md "Results layout"; job paths in `cells()` are relative to the results dir.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from xstilts import recipes, registry
from xstilts.errors import UserError

NONE = "none"  # the baseline row: the pretrained encoder, no intermediate phase
MULTITASK = "multitask"  # every configured intermediate task trained jointly
VARIANTS = ("en", "mlm", "mt")
ADAPTATIONS = ("full", "lora")
# Rules that take resources from config; `default` applies where a rule has no entry.
RESOURCE_RULES = ("synth", "prepare", "prepare_translated", "prepare_corpus", "fetch_model", "pretrain",
                  "intermediate", "finetune", "evaluate", "retrieve", "aggregate")
DEFAULT_RESOURCES = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpu": 0, "retries": 0}

RAW_ROOT = "resources/data/raw"
SYNTH_DIR = f"{RAW_ROOT}/synth"
PREPARED_ROOT = "resources/data/prepared"
FEATURE_CACHE = "resources/cache/features"
MODELS_ROOT = "resources/models"
LOGS_ROOT = "resources/logs"  # logs and benchmarks of the data and model jobs (shared by experiments)
# A row's directory under results/<experiment>/ (also the rules' wildcard pattern).
ROW_PATTERN = "{backbone}/{adaptation}/seed{seed}/{intermediate}/{variant}"
PHASE_DIRS = {"intermediate": "intermediate", "finetune": "finetune", "evaluate": "eval", "retrieval": "retrieval"}
CORPUS = "corpus"  # name of the prepared MLM corpus beside the task directories
TRANSLATED = "translated"  # prepared machine-translated training data: <prepared key>/translated/<task>


@dataclass(frozen=True)
class Row:
    """One intermediate setting of one backbone, adaptation and seed: everything one encoder is shared by."""

    backbone: str
    adaptation: str
    seed: int
    intermediate: str
    variant: str

    @property
    def path(self) -> str:
        return ROW_PATTERN.format(**asdict(self))

    @property
    def label(self) -> str:
        """How the transfer matrix names the row: `mnli`, `mnli [+mlm]`."""
        return self.intermediate if self.variant == "en" else f"{self.intermediate} [+{self.variant}]"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Prepare:
    """One `xstilts prepare` job: `kind` is `task`, `translated` (of an intermediate task) or `corpus`."""

    kind: str
    task: str | None
    source: str
    local_dir: str | None
    revisions: tuple[tuple[str, str], ...]  # (hub repository, commit) of every repository read; () = local
    languages: list[str] | None
    max_examples: int | None  # tasks only: the corpus and translated data are sized by their mirror
    out: str
    missing_dev: str = "carve"  # config data.missing_dev, for a task without a dev split (TyDiQA)

    def options(self) -> list[str]:
        """The optional `xstilts prepare` arguments of this job."""
        args = []
        for repo, commit in self.revisions:
            args += ["--revision", f"{repo}={commit}"]
        for flag, value in (("--local-dir", self.local_dir),
                            ("--languages", ",".join(self.languages or [])), ("--max-examples", self.max_examples),
                            ("--missing-dev", self.missing_dev if self.missing_dev != "carve" else None)):
            if value:
                args += [flag, str(value)]
        return args


# ------------------------------------------------------------------------------------------- config
def load_config(path: str | Path, schema: str | Path, *, locked: bool = True) -> dict:
    """Read a config YAML file and `check_config` it (what the tests use; Snakemake reads the file itself)."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"config {path}: cannot read it as YAML ({e})") from None
    if not isinstance(config, dict):
        raise UserError(f"config {path}: expected a mapping at the top level, got {type(config).__name__}")
    return check_config(config, schema, locked=locked)


def check_config(config: dict, schema: str | Path, *, locked: bool = True) -> dict:
    """Validate `config` against the JSON schema and the registry, fill schema defaults in place, return it.

    Every violation raises one `UserError` naming the config key, the value and what was expected.
    `locked=False` skips resolving hub branches through the lock file (what `xstilts lock` itself needs).
    """
    import jsonschema
    from snakemake.utils import validate

    schema_doc = yaml.safe_load(Path(schema).read_text(encoding="utf-8"))
    schema_doc["$defs"]["hparams"]["properties"] = recipes.HPARAM_RULES  # the one statement of the value rules
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema_doc).iter_errors(config))
    if error is not None:
        raise UserError(_schema_message(error))
    validate(config, str(Path(schema).resolve()), set_default=True)  # fills the schema's defaults
    _select_backbones(config)
    _check_names(config)
    if locked:
        _check_pins(config)
    return config


def _schema_message(error) -> str:
    """One line for a schema violation; an unknown key gets the closest valid one (a typo, usually)."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        if unknown and known:
            return (f"config key {where}: unknown key {unknown[0]!r}{_did_you_mean(unknown[0], known)}; "
                    f"valid keys: {', '.join(known)}")
    hint = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f"config key {where}: {error.message}" + (f" (expected: {hint})" if hint else "")


def _did_you_mean(value, allowed) -> str:
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fail(key: str, value, expected: str) -> UserError:
    return UserError(f"config key {key}: {value!r} is not valid; expected {expected}")


def _check_subset(key: str, values, allowed, what: str) -> None:
    for v in values or ():
        if v not in allowed:
            raise _fail(key, v, f"{what}{_did_you_mean(v, allowed)}: {', '.join(map(str, allowed))}")


def _select_backbones(config: dict) -> None:
    """`backbone: NAME` (or a list) keeps only those entries of `backbones`, in place: every other part of
    the workflow then sees the selected backbones alone. This is how one config lists several backbones and
    a run picks one (`--config backbone=NAME`); `--config backbones=...` would MERGE into the file's."""
    selected = config.get("backbone")
    if selected is not None:
        names = [selected] if isinstance(selected, str) else list(selected)
        _check_subset("backbone", names, list(config["backbones"]), "a name listed under `backbones`")
        config["backbones"] = {name: config["backbones"][name] for name in names}
    for name, spec in config["backbones"].items():
        if spec["kind"] == "local" and not (Path(spec["path"]) / "config.json").is_file():
            raise UserError(f"config key backbones.{name}.path: {spec['path']!r} has no config.json; expected a "
                            "directory written by save_pretrained (model and tokenizer files)")


def _check_names(config: dict) -> None:
    """The checks a static schema cannot do: names against the registry, recipes and each other."""
    inter = registry.intermediate_tasks()
    _check_subset("intermediate", config["intermediate"], [NONE, *inter, MULTITASK],
                  "an intermediate setting")
    _check_subset("multitask", config["multitask"], inter, "an intermediate task")
    if MULTITASK in config["intermediate"] and len(multitask_tasks(config)) < 2:
        raise UserError("config key multitask: the multitask setting needs at least 2 tasks; list them in "
                        f"`multitask` or in `intermediate` (got {multitask_tasks(config)})")
    settings = [s for s in config["intermediate"] if s != NONE]
    for variant, names in config["variants"].items():
        _check_subset(f"variants.{variant}", names, settings, "an intermediate setting listed in `intermediate`")
    _check_subset("benchmark", [config["benchmark"]], list(registry.BENCHMARKS), "a benchmark of the registry")
    _check_subset("targets", config["targets"], registry.target_tasks(), "a target task")
    for adaptation, selector in config["adaptations"].items():
        if selector:
            _check_subset(f"adaptations.{adaptation}.intermediate", selector.get("intermediate"),
                          config["intermediate"], "a setting listed in `intermediate`")
        if not [r for r in rows(config) if r.adaptation == adaptation]:
            raise UserError(f"config key adaptations.{adaptation}: selects no row; remove it or widen it")
    _check_languages(config)
    _check_data(config)
    _check_hparams(config)


def _check_languages(config: dict) -> None:
    langs = config["languages"]
    if isinstance(langs, dict):
        _check_subset("languages", list(langs), targets(config), "a configured target")
        for target, values in langs.items():
            _check_subset(f"languages.{target}", values, registry.get_task(target).languages,
                          f"a language of {target} (source {registry.sources_label(registry.get_task(target))})")
    elif langs is not None:
        for target in targets(config):
            if not languages(config, target):
                raise UserError(f"config key languages: none of {langs} is a language of target {target!r} "
                                f"(its languages: {', '.join(registry.get_task(target).languages)})")


def _check_data(config: dict) -> None:
    data = config["data"]
    if data["synth"] and data["local_dir"]:
        raise UserError("config key data.local_dir: not allowed together with data.synth (the synthetic data is "
                        f"written to {SYNTH_DIR}); remove one of them")
    _check_subset("data.revisions", list(data["revisions"]), list(registry.REPOS_BY_ID), "a registry.REPOS id")
    if data["source"] == "hub":
        for task in translated_tasks(config):
            try:
                source = registry.translated_source(task, hub=True)
            except UserError as e:
                raise UserError(f"config key variants.mt: {e}") from None
            if _translated_languages(config, source) == []:
                raise UserError(f"config key languages: variant mt of task {task!r}: source {source.path!r} has "
                                f"none of {config['languages']} (it has: {', '.join(source.languages or ())})")
    if raw_dir(config) is None:
        needs_local = [f"data.source {data['source']!r}"] if data["source"] == "local" else _local_only_needs(config)
        if needs_local:
            raise UserError(f"config key data.local_dir: missing; {', '.join(needs_local)} read a local mirror, "
                            "so set data.local_dir or data.synth")


def _local_only_needs(config: dict) -> list[str]:
    """What in a hub config still reads the local mirror (licensed data, script-only repositories)."""
    return [f"task {t!r}" for t in prepared_tasks(config) if _local_only(t)]


def _check_pins(config: dict) -> None:
    """Every hub repository and backbone resolves to a commit (pinned, or through the lock): one line if not."""
    prepare_jobs(config)
    for backbone in hub_backbones(config):
        backbone_commit(config, backbone)


def _check_hparams(config: dict) -> None:
    """Per-name blocks name a known task/target; every key is a hyperparameter of its phase (recipes)."""
    named = {
        "intermediate": [*registry.intermediate_tasks(), MULTITASK],
        "finetune": sorted({t.train_on for t in registry.TASKS.values() if t.train_on}),
        "evaluate": [t for t in registry.target_tasks() if not registry.get_task(t).retrieval],
    }
    for phase, block in config["hparams"].items():
        if phase in named:
            _check_subset(f"hparams.{phase}", list(block), ["default", *named[phase]], "`default` or a task name")
            sets = {f"hparams.{phase}.{name}": values for name, values in block.items()}
        else:
            sets = {f"hparams.{phase}": block}
        for key, values in sets.items():
            _check_subset(key, list(values), list(recipes.PHASE_DEFAULTS[phase]), f"a {phase} hyperparameter")


# ------------------------------------------------------------------------------------------- grid
def targets(config: dict) -> list[str]:
    """The configured targets; none configured: the tasks of the config's benchmark (not every registry target,
    so that registering a target changes no existing config's grid)."""
    return list(config["targets"] or registry.get_benchmark(config["benchmark"]).tasks)


def eval_targets(config: dict) -> list[str]:
    return [t for t in targets(config) if not registry.get_task(t).retrieval]


def retrieval_targets(config: dict) -> list[str]:
    return [t for t in targets(config) if registry.get_task(t).retrieval]


def training_tasks(config: dict) -> list[str]:
    return registry.training_tasks_for(targets(config))


def multitask_tasks(config: dict) -> list[str]:
    return list(config["multitask"] or [s for s in config["intermediate"] if s not in (NONE, MULTITASK)])


def tasks_of(config: dict, setting: str) -> list[str]:
    """The registry tasks one intermediate setting trains on."""
    return multitask_tasks(config) if setting == MULTITASK else [setting]


def variants_of(config: dict, setting: str) -> list[str]:
    return ["en"] + [v for v in VARIANTS[1:] if setting in config["variants"].get(v, ())]


def rows(config: dict) -> list[Row]:
    """Every row, in config order: backbones, adaptations, seeds, intermediate settings, variants."""
    out = []
    for backbone in config["backbones"]:
        for adaptation in (a for a in ADAPTATIONS if a in config["adaptations"]):
            selector = config["adaptations"][adaptation] or {}
            for seed in config["seeds"]:
                for setting in config["intermediate"]:
                    if selector.get("intermediate") and setting not in selector["intermediate"]:
                        continue
                    for variant in variants_of(config, setting):
                        if selector.get("variants") and variant not in selector["variants"]:
                            continue
                        out.append(Row(backbone, adaptation, seed, setting, variant))
    return out


def check_row(config: dict, row: Row) -> None:
    """A UserError naming the wildcard whose value is outside this config's grid (a target path asked for
    by hand: `seed7` when `seeds: [0]`, a LoRA row the adaptation selector leaves out)."""
    adaptations = [a for a in ADAPTATIONS if a in config["adaptations"]]
    for wildcard, value, allowed in (
            ("backbone", row.backbone, list(config["backbones"])), ("adaptation", row.adaptation, adaptations),
            ("seed", row.seed, config["seeds"]), ("intermediate", row.intermediate, config["intermediate"]),
            ("variant", row.variant, variants_of(config, row.intermediate))):
        if value not in allowed:
            raise UserError(f"target {row.path}: wildcard {wildcard}={value!r} is outside this config's grid; "
                            f"allowed: {', '.join(map(str, allowed))}")
    if row not in rows(config):
        selector = config["adaptations"][row.adaptation] or {}
        raise UserError(f"target {row.path}: wildcard adaptation={row.adaptation!r} does not cover intermediate "
                        f"{row.intermediate!r} variant {row.variant!r}; config key adaptations.{row.adaptation} "
                        f"selects intermediate: {', '.join(selector.get('intermediate') or ['all'])}, variants: "
                        f"{', '.join(selector.get('variants') or ['all'])}")


def intermediate_jobs(config: dict) -> list[Row]:
    return [r for r in rows(config) if r.intermediate != NONE]


def finetune_jobs(config: dict) -> list[tuple[Row, str]]:
    """One per (row, English training task): XQuAD and MLQA share the SQuAD-trained model."""
    return [(r, t) for r in rows(config) for t in training_tasks(config)]


def pretrained_backbones(config: dict) -> list[str]:
    return [b for b, spec in config["backbones"].items() if spec["kind"] == "pretrain"]


def hub_backbones(config: dict) -> list[str]:
    return [b for b, spec in config["backbones"].items() if spec["kind"] == "hub"]


def languages(config: dict, target: str) -> list[str] | None:
    """A target's evaluation languages; None = the task's registered list (the verbs' default). The config's
    benchmark keeps its own list of a task that has more languages registered (XTREME's 40 PAN-X languages,
    not XTREME-R's 48), so that a run of one benchmark never scores another's languages."""
    langs, task = config["languages"], registry.get_task(target)
    official = [x for x in registry.get_benchmark(config["benchmark"]).languages_of(target) if x in task.languages]
    if langs is None:
        return None if official == list(task.languages) else official
    if isinstance(langs, dict):
        return langs.get(target)
    return [x for x in official if x in langs]


def _all_languages(config: dict) -> list[str]:
    """Every evaluation language of the configured targets (the corpus and translated data cover these): with
    `languages: null` their benchmark's lists, never every registered target's, so that registering a target
    (XCOPA's Haitian, Mewsli-X's Ukrainian) does not change an XTREME run's MLM corpus."""
    return list(dict.fromkeys(x for t in targets(config) for x in languages(config, t) or
                              registry.get_task(t).languages))


# ------------------------------------------------------------------------------------------- data
def raw_dir(config: dict) -> str | None:
    """The local mirror: the synthetic data, the configured one, or None (hub only)."""
    return SYNTH_DIR if config["data"]["synth"] else config["data"]["local_dir"]


def _local_only(task: str) -> bool:
    """Whether a task read from the hub still reads something from the local mirror (a manual source)."""
    return any(s.local_only for srcs in registry.task_sources(registry.get_task(task), hub=True).values()
               for s in srcs)


def _hub_sources(config: dict, kind: str, task: str | None) -> list:
    """The sources one prepare job (`kind` task|translated|corpus) reads from the hub; [] = the local mirror.
    Local-only sources (licensed, script-only) always read the mirror."""
    if config["data"]["source"] == "local":
        return []
    if kind == "corpus":
        return [registry.CORPUS_HUB_SOURCE]
    if kind == "translated":
        return [registry.translated_source(task, hub=True)]
    # a source of some languages only (PAN-X's WikiANN: XTREME-R's 8) is read when the job asks for one of them
    wanted = set(languages(config, task) or registry.get_task(task).languages) | {"en"}
    return [s for srcs in registry.task_sources(registry.get_task(task), hub=True).values() for s in srcs
            if not s.local_only and (s.languages is None or wanted.intersection(s.languages))]


def hub_revision(config: dict, repo: str) -> str:
    """The revision a config asks for a hub dataset repository: `data.revisions`, else the registry's pin."""
    return config["data"]["revisions"].get(repo) or registry.REPOS_BY_ID[repo].revision


def _locked(config: dict, section: str, repo: str, revision: str, key: str) -> str:
    """`revision` itself when it is a commit, else the commit the lock file (`data.lock`) holds for it."""
    from xstilts.data.lock import locked_commit  # lazily: only configs with branches need it

    return locked_commit(config["data"].get("lock"), section, repo, revision, key)


def _commits(config: dict, sources: list) -> dict[str, str]:
    """{hub repository: commit} for the sources of one prepare job."""
    repos = dict.fromkeys(registry.hub_repo(s).id for s in sources)
    return {r: _locked(config, "datasets", r, hub_revision(config, r), f"data.revisions.{r}") for r in repos}


def backbone_commit(config: dict, backbone: str) -> str:
    """The commit a hub backbone is fetched at (its `revision`, through the lock when that is a branch)."""
    spec = config["backbones"][backbone]
    return _locked(config, "models", spec["model"], spec["revision"], f"backbones.{backbone}.revision")


def _prepared_root(config: dict, commits: dict[str, str]) -> str:
    from xstilts.data.prepare import cache_key  # lazily: pyarrow is only needed when the DAG is built

    # The experiment name is part of the directory: configs choose different languages and caps, so two
    # experiments never overwrite each other's prepared data.
    key = cache_key("hub", commits) if commits else cache_key("local")
    return f"{PREPARED_ROOT}/{config['experiment']}-{key}"


def hub_repos(config: dict) -> dict[str, dict[str, str]]:
    """Everything a config reads from the hub, as asked (before the lock): {"datasets"|"models": {id: revision}}."""
    sources = [s for job in _prepare_specs(config) for s in _hub_sources(config, job[0], job[1])]
    datasets = {registry.hub_repo(s).id: None for s in sources}
    return {"datasets": {r: hub_revision(config, r) for r in datasets},
            "models": {config["backbones"][b]["model"]: config["backbones"][b]["revision"]
                       for b in hub_backbones(config)}}


def prepared_tasks(config: dict) -> list[str]:
    """Every task whose prepared data some job reads, in order: intermediate, training, then targets."""
    needed = [t for s in config["intermediate"] if s != NONE for t in tasks_of(config, s)]
    needed += training_tasks(config) + targets(config)
    return list(dict.fromkeys(needed))


def translated_tasks(config: dict) -> list[str]:
    return list(dict.fromkeys(t for s in config["variants"].get("mt", ()) for t in tasks_of(config, s)))


def needs_corpus(config: dict) -> bool:
    return bool(config["variants"].get("mlm") or pretrained_backbones(config))


def _job_root(config: dict, kind: str, task: str | None) -> tuple[str, dict[str, str]]:
    commits = _commits(config, _hub_sources(config, kind, task))
    return _prepared_root(config, commits), commits


def prepared_dir(config: dict, task: str) -> str:
    return f"{_job_root(config, 'task', task)[0]}/{task}"


def translated_dir(config: dict, task: str) -> str:
    return f"{_job_root(config, 'translated', task)[0]}/{TRANSLATED}/{task}"


def corpus_dir(config: dict) -> str:
    return f"{_job_root(config, 'corpus', None)[0]}/{CORPUS}"


def _prepare_specs(config: dict) -> list[tuple[str, str | None]]:
    """(kind, task) of every prepare job: tasks, translated training data (variant mt), the corpus."""
    return ([("task", t) for t in prepared_tasks(config)] + [("translated", t) for t in translated_tasks(config)]
            + ([("corpus", None)] if needs_corpus(config) else []))


def _translated_languages(config: dict, source) -> list[str] | None:
    """The configured non-English languages a translated source has (None: the source's own default)."""
    if config["languages"] is None:
        return None
    return [x for x in _all_languages(config) if x != "en" and source.has_language(x)]


def prepare_jobs(config: dict) -> list[Prepare]:
    """Every prepare job the grid needs: tasks, translated training data (variant mt), the corpus."""
    local = raw_dir(config)
    jobs = []
    for kind, task in _prepare_specs(config):
        root, commits = _job_root(config, kind, task)
        source, local_dir, pins = ("hub", None, tuple(commits.items())) if commits else ("local", local, ())
        if commits and kind == "task" and _local_only(task):
            local_dir = local  # its manual splits (BUCC's sample set) still read the local mirror
        if kind == "task":
            langs = languages(config, task) if registry.get_task(task).role == "target" else None
            splits = registry.get_task(task).sources
            no_dev = "train" in splits and "dev" not in splits
            jobs.append(Prepare("task", task, source, local_dir, pins, langs, config["data"]["max_examples"],
                                f"{root}/{task}", config["data"]["missing_dev"] if no_dev else "carve"))
        elif kind == "translated":
            if commits:
                langs = _translated_languages(config, registry.translated_source(task, hub=True))
            else:
                langs = [x for x in _all_languages(config) or () if x != "en"] or None
            jobs.append(Prepare("translated", task, source, local_dir, pins, langs, None,
                                f"{root}/{TRANSLATED}/{task}"))
        else:
            jobs.append(Prepare("corpus", None, source, local_dir, pins, _all_languages(config), None,
                                f"{root}/{CORPUS}"))
    return jobs


def prepare_job(config: dict, out: str) -> Prepare:
    """The prepare job writing `out` (a rule's output path); a path no job writes is a UserError."""
    for job in prepare_jobs(config):
        if job.out == out:
            return job
    raise UserError(f"no prepare job of this config writes {out!r}; expected one of "
                    f"{', '.join(j.out for j in prepare_jobs(config))}")


# ------------------------------------------------------------------------------------------- paths
def results_dir(config: dict) -> str:
    return f"results/{config['experiment']}"


def model_dir(backbone: str, config: dict | None = None) -> str:
    """Where a backbone's pretrained model directory is: resources/models/<backbone> (fetched or pretrained
    there), or, given the config, the `path` of a `kind: local` backbone (already on disk)."""
    if config is not None and config["backbones"][backbone]["kind"] == "local":
        return config["backbones"][backbone]["path"]
    return f"{MODELS_ROOT}/{backbone}"


def job_dir(row_path: str, phase: str, name: str | None = None) -> str:
    """A job's output dir relative to the results dir: `<row>/intermediate`, `<row>/eval/<target>`.

    `row_path` is `Row.path` or, in rules, `ROW_PATTERN` (and `name` a wildcard pattern)."""
    return f"{row_path}/{PHASE_DIRS[phase]}" + (f"/{name}" if name else "")


def log_path(row_path: str, phase: str, name: str | None = None, kind: str = "logs") -> str:
    """A job's log (stdout and stderr of its verb; kind `benchmarks`: its benchmark) relative to the results dir."""
    return f"{kind}/{phase}/{row_path}" + (f"/{name}" if name else "") + (".log" if kind == "logs" else ".tsv")


def encoder_dir(config: dict, row: Row) -> str:
    """The encoder phase (iii) and retrieval start from: the pretrained model for `none`, else phase (ii)'s."""
    if row.intermediate == NONE:
        return model_dir(row.backbone, config)
    return f"{results_dir(config)}/{job_dir(row.path, 'intermediate')}"


def finetuned_model(config: dict, row: Row, train_task: str) -> str:
    """The model dir a row's fine-tuning on `train_task` writes."""
    return f"{results_dir(config)}/{job_dir(row.path, 'finetune', train_task)}/model"


def row_finetuned_models(config: dict, row: Row) -> list[str]:
    """The model dirs a row's evaluation job reads: one per training task of its targets."""
    return [finetuned_model(config, row, t) for t in training_tasks(config)]


def _target_args(config: dict, row: Row, phase: str, target: str) -> list[str]:
    """--target, --data, --languages (empty: the target's own) and --out of one target of a multi-target verb."""
    return ["--target", target, "--data", prepared_dir(config, target),
            "--languages", ",".join(languages(config, target) or []),
            "--out", f"{results_dir(config)}/{job_dir(row.path, phase, target)}"]


def evaluate_args(config: dict, row: Row) -> list[str]:
    """`xstilts evaluate` arguments of a row's evaluation job: every target with its fine-tuned model."""
    return [arg for t in eval_targets(config) for arg in [
        "--model", finetuned_model(config, row, registry.get_task(t).train_on),
        *_target_args(config, row, "evaluate", t), "--hparams", hparams_json(config, "evaluate", t)]]


def retrieve_args(config: dict, row: Row) -> list[str]:
    """`xstilts retrieve` arguments of a row's retrieval job (its --encoder and --hparams are the row's)."""
    return [arg for t in retrieval_targets(config) for arg in _target_args(config, row, "retrieval", t)]


def hparams(config: dict, phase: str, name: str | None = None) -> dict:
    """The config's overrides for one job: the phase's `default`, then `name`'s (pretrain/retrieval are flat)."""
    block = config["hparams"].get(phase, {})
    if phase in ("pretrain", "retrieval"):
        return dict(block)
    return {**block.get("default", {}), **block.get(name, {})}


def hparams_json(config: dict, phase: str, name: str | None = None) -> str:
    return json.dumps(hparams(config, phase, name), sort_keys=True)


def rule_resources(config: dict, rule: str, attempt: int = 1, wildcards=None) -> dict:
    """threads, cpus_per_task, mem_mb, runtime (minutes), gpu, retries of one rule.

    mem_mb and runtime grow linearly with the attempt, so a job killed for memory or time gets more when
    Snakemake retries it (a preempted training job resumes from its state on the retry). With the config key
    `resources_from_estimate` and a job's `wildcards`, the runtime of a training, evaluation or retrieval job
    is its projected device time x `safety` (xstilts.estimate.runtime_minutes) instead of the rule's flat value."""
    if rule not in RESOURCE_RULES:
        raise UserError(f"unknown rule {rule!r} for resources; expected one of {', '.join(RESOURCE_RULES)}")
    res = config["resources"]
    out = {**DEFAULT_RESOURCES, **res.get("default", {}), **res.get(rule, {})}
    out.setdefault("cpus_per_task", out["threads"])
    if config.get("resources_from_estimate") and wildcards is not None:
        from xstilts.estimate import runtime_minutes  # lazily: only configs that ask for it pay for the estimate

        out["runtime"] = runtime_minutes(config, rule, wildcards) or out["runtime"]
    out["mem_mb"] *= attempt
    out["runtime"] *= attempt
    return out


# ------------------------------------------------------------------------------------------- cells
def cells(config: dict) -> dict:
    """The expected cells and jobs, written to `cells.json` for `xstilts aggregate`.

    `jobs` lists every output dir with a cost record: each intermediate and finetune job, and each target of a
    row's evaluate / retrieval job (phase, row, target or training task, output dir and the job's log relative
    to the results dir); each cell names its `chain`: the dirs it depends on, upstream first, ending with its own,
    and `waits_on`: the other dirs its job reads (the row's other fine-tuned models, for an evaluation cell).
    """
    jobs, out_cells = [], []

    def job(row: Row, phase: str, name: str | None = None, **extra) -> str:
        path = job_dir(row.path, phase, name)
        # the targets of a row's evaluation (retrieval) job share its log: evaluate_args, retrieve_args
        log = log_path(row.path, phase, None if phase in ("evaluate", "retrieval") else name)
        jobs.append({"phase": phase, **row.to_dict(), "label": row.label, **extra, "path": path, "log": log})
        return path

    for row in rows(config):
        upstream = [job(row, "intermediate", tasks="+".join(tasks_of(config, row.intermediate)))] \
            if row.intermediate != NONE else []
        trained = {t: job(row, "finetune", t, train_task=t) for t in training_tasks(config)}
        for target in targets(config):
            task = registry.get_task(target)
            phase = "retrieval" if task.retrieval else "evaluate"
            chain = upstream + ([trained[task.train_on]] if phase == "evaluate" else [])
            # the row's evaluation job reads every fine-tuned model of the row, not only this target's
            waits_on = [p for t, p in trained.items() if phase == "evaluate" and t != task.train_on]
            path = job(row, phase, target, target=target)
            out_cells.append({**row.to_dict(), "label": row.label, "target": target, "phase": phase,
                              "path": path, "chain": chain + [path], "waits_on": waits_on})
    # `synth`: the data are xstilts.synth's, so aggregate checks them against xstilts.plan (planted.csv)
    # `benchmark`: whose score the summary's benchmark column is (xstilts.aggregate.benchmark_of)
    return {"experiment": config["experiment"], "synth": bool(config["data"]["synth"]), "targets": targets(config),
            "benchmark": config["benchmark"], "jobs": jobs, "cells": out_cells}


def final_outputs(config: dict) -> list[str]:
    """What the default target asks for: every cell's metrics.json and the expected-cell list."""
    res = results_dir(config)
    return [f"{res}/{c['path']}/metrics.json" for c in cells(config)["cells"]] + [f"{res}/cells.json"]


def finished_digest(config: dict) -> str:
    """How many cell outputs exist now and a digest of their paths and mtimes: the summary's param, so it
    reruns whenever a cell appears or changes without depending on (or waiting for) any cell."""
    import hashlib
    import os

    stamps = [f"{p}@{os.stat(p).st_mtime_ns}" for p in final_outputs(config) if os.path.exists(p)]
    digest = hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:16]
    return f"{len(stamps)} finished, sha256 {digest}"


def alternatives(names) -> str:
    """A wildcard regex matching exactly one of `names` (nothing at all when there are none)."""
    return "|".join(re.escape(n) for n in dict.fromkeys(names)) or "(?!)"


def wildcard_constraints(config: dict) -> dict[str, str]:
    """Regexes for the rules' wildcards, built from the config and the registry (names contain `_`)."""
    alt = alternatives
    return {
        "backbone": alt(config["backbones"]),
        "adaptation": alt(ADAPTATIONS),
        "seed": r"\d+",
        # every setting the registry knows, not only the config's: a target path with another one reaches
        # check_row, which names the wildcard and the allowed values (instead of "no rule to produce")
        "intermediate": alt([NONE, *registry.intermediate_tasks(), MULTITASK]),
        "variant": alt(VARIANTS),
        "target": alt(targets(config)),
        "train_task": alt(training_tasks(config)),
        "task": alt(registry.TASKS),
        "key": r"[^/]+",
    }
