"""The paper's config against the authors' protocol (docs/protocol.md) and the protocol choices of issue 12:
QA evaluation windows, (EM+F1)/2 selection, CCG's selection metric, one head per multi-task task, and the
TyDiQA dev option."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from xstilts import grid, kinds, recipes
from xstilts.cli import main as cli_main
from xstilts.data.prepare import load_split, read_manifest
from xstilts.errors import UserError
from xstilts.evaluate import score_rows
from xstilts.registry import get_task

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PROTOCOL = ROOT / "docs" / "protocol.md"
RAW = Path(__file__).parent / "fixtures" / "raw"
STATUSES = ("same", "equivalent", "differs", "no effect", "unused", "extension", "not public")
MISSING = object()  # an authors' cell "—": the authors had no such knob


def _selection_metric(task_name: str) -> str:
    task = get_task(task_name)
    return kinds.of(task).selection_metric(task)


def _value(cell: str):
    cell = cell.strip()
    if cell == "—":
        return MISSING
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"docs/protocol.md: value cell {cell!r} is neither `value` nor —"
    return yaml.safe_load(match.group(1))


def protocol_rows() -> dict[str, dict]:
    """The recipe table of docs/protocol.md: key -> {xstilts, authors, source, status, note}."""
    text = PROTOCOL.read_text(encoding="utf-8")
    table = text.split("## Recipe table", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"docs/protocol.md: expected 6 cells, got {len(cells)}: {line}"
        key = cells[0].strip("`")
        assert key not in rows, f"docs/protocol.md: key {key} has two rows"
        rows[key] = {"xstilts": _value(cells[1]), "authors": _value(cells[2]), "source": cells[3],
                     "status": cells[4], "note": cells[5]}
    return rows


def paper_config() -> dict:
    return grid.load_config(ROOT / "config" / "xtreme.yaml", SCHEMA)


def resolved(config: dict) -> dict[str, object]:
    """Every value the table speaks of, as the pipeline resolves it for `config` (docs/protocol.md keys)."""
    out: dict[str, object] = {}
    settings = [s for s in config["intermediate"] if s != grid.NONE]
    for phase, names in (("intermediate", settings), ("finetune", grid.training_tasks(config)),
                         ("evaluate", grid.eval_targets(config))):
        for name in names:
            task = None if phase == "intermediate" else name  # as phases.run_intermediate / finetune / evaluate
            for key, value in recipes.resolve(phase, grid.hparams(config, phase, name), task=task).items():
                out[f"{phase}.{name}.{key}"] = value
    for key, value in recipes.resolve("retrieval", grid.hparams(config, "retrieval")).items():
        out[f"retrieval.{key}"] = value
    tasks = grid.multitask_tasks(config)
    out["multitask.tasks"] = tasks
    out["multitask.heads"] = "one per task" if len({get_task(t).head_name for t in tasks}) == len(tasks) \
        else "shared"
    for task in grid.training_tasks(config):
        out[f"selection.{task}"] = _selection_metric(task)
    return out


def _config_value(config: dict, path: str):
    value = config
    for part in path.split("."):
        value = value[part]
    return value


def mismatches(config: dict, rows: dict[str, dict]) -> list[str]:
    """Where `config` and the table disagree: a value without a row, a row's value, a row matching nothing."""
    problems, used = [], set()
    for key, value in resolved(config).items():
        phase, *rest = key.split(".")
        wildcard = ".".join([phase, "*", rest[-1]]) if len(rest) == 2 else None
        row_key = key if key in rows else wildcard if wildcard in rows else None
        if row_key is None:
            problems.append(f"{key} = {value!r} has no row")
            continue
        used.add(row_key)
        if rows[row_key]["xstilts"] != value:
            problems.append(f"{key} = {value!r} but row {row_key} says {rows[row_key]['xstilts']!r}")
    for key, row in rows.items():
        if key.startswith("config."):
            used.add(key)
            if _config_value(config, key.removeprefix("config.")) != row["xstilts"]:
                problems.append(f"{key} = {_config_value(config, key.removeprefix('config.'))!r} but the row "
                                f"says {row['xstilts']!r}")
    problems += [f"row {key} matches no resolved value" for key in rows if key not in used]
    return problems


# ------------------------------------------------------------------------------------------- recipe table
def test_the_paper_config_resolves_to_the_recipe_table():
    assert mismatches(paper_config(), protocol_rows()) == []


def test_a_drift_of_the_config_or_a_default_fails_the_table(monkeypatch):
    rows = protocol_rows()
    config = paper_config()
    drifted = copy.deepcopy(config)
    drifted["hparams"]["finetune"]["udpos"] = {"epochs": 3}
    assert mismatches(drifted, rows) == ["finetune.udpos.epochs = 3 but row finetune.udpos.epochs says 10"]
    monkeypatch.setitem(recipes.PHASE_DEFAULTS, "retrieval", {**recipes.PHASE_DEFAULTS["retrieval"], "new_knob": 1})
    monkeypatch.setitem(recipes.HPARAM_RULES, "new_knob", {"type": "integer"})
    assert mismatches(config, rows) == ["retrieval.new_knob = 1 has no row"]


def test_rows_marked_same_hold_the_authors_value_and_every_row_says_why():
    for key, row in protocol_rows().items():
        assert row["status"] in STATUSES, f"{key}: status {row['status']!r}"
        if row["status"] == "same":
            assert row["authors"] == row["xstilts"], f"{key}: marked same but {row['authors']!r} != {row['xstilts']!r}"
            assert row["source"], f"{key}: a `same` row cites its source"
        elif row["status"] in ("equivalent", "differs", "not public"):
            assert row["note"], f"{key}: a {row['status']} row says why"


def test_the_authors_selection_protocol_is_the_default():
    """jiant sub/e_run_models.sh:16-17 (--eval_every_steps 1000, --no_improvements_for_n_evals 30)."""
    hp = recipes.resolve("finetune", {}, task="udpos")
    assert (hp["eval_every"], hp["patience"], hp["eval_examples"]) == (1000, 30, 500)


# ------------------------------------------------------------------------------------------- QA windows
@pytest.mark.parametrize("target", ["xquad", "mlqa", "tydiqa"])
def test_qa_targets_are_evaluated_with_the_384_token_windows_they_were_trained_with(target):
    """jiant sub/c_tokenize_and_cache.sh:98,110,130; other targets keep 256 (:16,36,56,86)."""
    assert recipes.resolve("evaluate", {}, task=target)["max_length"] == 384
    assert recipes.resolve("finetune", {}, task=get_task(target).train_on)["max_length"] == 384
    assert recipes.resolve("evaluate", {}, task="xnli")["max_length"] == 256
    assert recipes.resolve("evaluate", {"max_length": 128}, task=target)["max_length"] == 128  # config wins


def test_evaluate_verb_resolves_the_targets_recipe(monkeypatch, tmp_path):
    """`xstilts evaluate --target xquad` gets the XQuAD window, not the phase default."""
    from xstilts import phases

    seen, resolve = {}, recipes.resolve

    class Stop(Exception):
        pass

    def spy(phase, overrides=None, task=None):
        seen.update(resolve(phase, overrides, task=task))
        raise Stop

    monkeypatch.setattr(recipes, "resolve", spy)
    from xstilts.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--model", str(tmp_path / "m"), "--target", "xquad",
                                      "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")])
    with pytest.raises(Stop):
        phases.run_evaluate(args)
    assert seen["max_length"] == 384


# ------------------------------------------------------------------------------------------- selection
def test_qa_checkpoints_are_selected_on_the_mean_of_exact_match_and_f1():
    """jiant jiant/tasks/evaluate/core.py:762 (SQuAD) and :803 (TyDiQA): major = (F1 + EM) / 2."""
    squad = get_task("squad_v1")
    a, b = {"exact_match": 70.0, "f1": 80.0}, {"exact_match": 60.0, "f1": 84.0}
    qa = kinds.of(squad)
    assert qa.selection_score(squad, a) == 75.0 and qa.selection_score(squad, b) == 72.0
    assert qa.selection_score(squad, a) > qa.selection_score(squad, b)  # F1 alone would pick b
    assert _selection_metric("tydiqa") == "mean(exact_match,f1)"


def test_ccg_selection_is_token_accuracy_in_both_the_score_and_its_name():
    """CCG is scored by token accuracy (jiant core.py:660-664); the number selection maximises and the metric
    dev.json names come from one function, so they cannot disagree."""
    ccg = get_task("ccg")
    rows = [{"tags": ["N", "NP", "S"]}, {"tags": ["N", "N"]}]
    preds = [["N", "NP", "NP"], ["N", "N"]]
    scores = score_rows(ccg, rows, preds, "en")
    assert kinds.of(ccg).selection_metric(ccg) == "accuracy"
    assert kinds.of(ccg).selection_score(ccg, scores) == pytest.approx(80.0)
    assert _selection_metric("udpos") == "f1" and _selection_metric("mnli") == "accuracy"


def test_multitask_gives_every_task_its_own_head():
    """jiant conf.py:431-433 maps each task of a mix to its own head; ANLI+ and MNLI no longer share one."""
    tasks = grid.multitask_tasks(paper_config())
    assert "anli_plus" in tasks and "mnli" in tasks
    assert len({get_task(t).head_name for t in tasks}) == len(tasks)


# ------------------------------------------------------------------------------------------- TyDiQA dev
def _prepare(out: Path, *extra: str) -> dict:
    code = cli_main(["prepare", "--task", "tydiqa", "--source", "local", "--local-dir", str(RAW),
                     "--languages", "en,ar", *extra, "--out", str(out)])
    assert code == 0
    return read_manifest(out)


def _ids(out: Path, split: str, languages=None) -> list[str]:
    return load_split(out, split, languages=languages).column("id").to_pylist()


def test_tydiqa_missing_dev_test_trains_on_all_english_train_and_selects_on_english_test(tmp_path):
    """The authors' setting: jiant dl_datasets/xtreme.py:435-441 makes the English GoldP dev tydiqa_en's val."""
    english_train = [json.loads(x)["id"] for x in (RAW / "google/xtreme/tydiqa/train.jsonl").read_text().splitlines()
                     if json.loads(x)["id"].startswith("english-")]
    m = _prepare(tmp_path / "test", "--missing-dev", "test")
    assert sorted(_ids(tmp_path / "test", "train")) == sorted(english_train)
    assert _ids(tmp_path / "test", "dev") == _ids(tmp_path / "test", "test", ["en"])
    assert m["splits"]["dev"]["rows_per_lang"] == {"en": 2} and m["dev_carved_from_train"] is None
    assert {x["prepared_split"] for x in m["inputs"]} == {"train", "dev", "test"}

    m = _prepare(tmp_path / "carve")  # the default: a held-out part of English train
    assert m["dev_carved_from_train"] is not None
    dev, train = _ids(tmp_path / "carve", "dev"), _ids(tmp_path / "carve", "train")
    assert sorted(dev + train) == sorted(english_train) and not set(dev) & set(train)


def test_config_key_missing_dev_reaches_only_the_tasks_without_a_dev_split():
    config = paper_config()
    options = {job.task: job.options() for job in grid.prepare_jobs(config) if job.kind == "task"}
    assert options["tydiqa"][-2:] == ["--missing-dev", "test"]
    assert not [t for t, o in options.items() if t != "tydiqa" and "--missing-dev" in o]
    demo = grid.load_config(ROOT / "config" / "config.yaml", SCHEMA)
    assert demo["data"]["missing_dev"] == "carve"
    assert not [j for j in grid.prepare_jobs(demo) if "--missing-dev" in j.options()]


def test_config_key_missing_dev_rejects_other_values():
    config = yaml.safe_load((ROOT / "config" / "xtreme.yaml").read_text(encoding="utf-8"))
    config["data"]["missing_dev"] = "train"
    with pytest.raises(UserError) as e:
        grid.check_config(config, SCHEMA)
    assert str(e.value).startswith("config key data.missing_dev: 'train' is not one of") and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------- QA doc stride
def _window_starts(feats: dict, context_tokens: list) -> list[int]:
    """Index (in the context's own tokens) of each window's first context token."""
    starts = [o[0] for o in context_tokens]
    return [starts.index(next(o for o in offsets if o[0] >= 0)[0]) for offsets in feats["offsets"]]


@pytest.mark.parametrize("max_length,stride", [(64, 16), (48, 8)])
def test_qa_windows_step_by_doc_stride_as_jiant(tiny_model_dir, max_length, stride):
    """jiant (squad_style/core.py:161-185) and XTREME's run_squad move each window `doc_stride` context tokens."""
    from xstilts.kinds.qa import encode as encode_qa
    from xstilts.models import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    context = " ".join(f"alpha beta {w} gamma" for w in ["delta", "mu", "nu", "xi", "omega"] * 8)
    rows = [{"question": q, "context": context, "answer_texts": [], "answer_starts": []}
            for q in ("where", "where is the omega of the delta")]  # two question lengths: two overlaps
    feats = encode_qa(rows, tok, max_length, stride, train=False)
    context_tokens = tok(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for ex in (0, 1):
        mine = {k: [v for v, e in zip(feats[k], feats["example"]) if e == ex] for k in ("offsets",)}
        starts = _window_starts(mine, context_tokens)
        assert len(starts) > 2 and all(b - a == stride for a, b in zip(starts, starts[1:])), starts
    assert feats["example"] == sorted(feats["example"])  # example order


def test_qa_questions_keep_at_most_64_tokens(tiny_model_dir):
    """jiant squad_style/core.py:375 (max_query_length 64)."""
    from xstilts.kinds.qa import encode as encode_qa
    from xstilts.models import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    rows = [{"question": " ".join(["alpha"] * 200), "context": "beta gamma", "answer_texts": [], "answer_starts": []}]
    ids = encode_qa(rows, tok, 384, 128, train=False)["input_ids"][0]
    n_context = len(tok("beta gamma", add_special_tokens=False)["input_ids"])
    assert len(ids) == 64 + n_context + tok.num_special_tokens_to_add(pair=True)


def test_every_hyperparameter_has_one_value_rule_shared_by_config_and_command_line():
    """recipes.HPARAM_RULES is the only statement of what a value may be: every default obeys it, the config
    schema gets it from there (the schema file lists none), and a float where an int belongs is refused."""
    names = set().union(*(set(defaults) for defaults in recipes.PHASE_DEFAULTS.values()))
    assert names == set(recipes.HPARAM_RULES)
    for phase in recipes.PHASE_DEFAULTS:
        recipes.resolve(phase)
    assert "properties" not in yaml.safe_load(SCHEMA.read_text())["$defs"]["hparams"]
    with pytest.raises(UserError, match="hyperparameter 'batch_size': 2.0 is not of type 'integer'"):
        recipes.resolve("finetune", {"batch_size": 2.0})
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    cfg["hparams"]["finetune"]["default"]["lora_dropout"] = 1.5
    with pytest.raises(UserError, match="hparams.finetune.default.lora_dropout: 1.5 is greater than the maximum"):
        grid.check_config(cfg, SCHEMA)
