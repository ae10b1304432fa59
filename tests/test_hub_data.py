"""The hub path of `xstilts prepare` through the real clients (datasets 5.2 / huggingface_hub 2.4, no function of
theirs replaced) against replicas of the hub repositories (tests/hub/replicas.py) served on 127.0.0.1
(tests/hub/server.py) through HF_ENDPOINT with a temporary HF_HOME, in a child process as a cluster job runs."""

from __future__ import annotations

import argparse
import re

import pytest

from tests.hub import replicas, run_steps
from tests.hub.server import HubServer, fake_commit
from xstilts.data import prepare
from xstilts.registry import REPOS_BY_ID, TASKS, hub_repo

# Repositories the registry reads at a branch (`xstilts lock` resolves it before a run): the replica's commit.
BRANCH_PINS = {"aps/super_glue": replicas.SUPER_GLUE_PARQUET_COMMIT,
               "unimelb-nlp/wikiann": replicas.WIKIANN_PARQUET_COMMIT}
PIN = {repo: r.revision for repo, r in REPOS_BY_ID.items()} | BRANCH_PINS
XTREME = PIN["google/xtreme"]
ONE_LINE = re.compile(r"^xstilts prepare: error: [^\n]+\n$")


@pytest.fixture(scope="module")
def hub():
    with HubServer(replicas.dataset_repos()) as server:
        yield server


def hub_tasks() -> dict[str, list[str] | None]:
    """Every task with hub sources and the fixture languages it is prepared in (intermediate tasks: English; the
    fixture mirror holds en and de, and for a target with neither its first language: XCOPA's et)."""
    out = {}
    for t in TASKS.values():
        if any(s.local_only for ss in t.sources.values() for s in ss):
            continue
        out[t.name] = None if t.role == "intermediate" else (
            [x for x in ("en", "de") if x in t.languages] or list(t.languages[:1]))
    return out


def _locked(task: str) -> list[str]:
    """`--revision` for the branch-pinned repositories `task` reads, as a locked run passes them."""
    repos = {hub_repo(s).id for ss in TASKS[task].sources.values() for s in ss}
    return [x for repo in sorted(repos & set(BRANCH_PINS)) for x in ("--revision", f"{repo}={BRANCH_PINS[repo]}")]


def prepare_cli(task: str | None, out, *extra, languages=None) -> dict:
    argv = ["prepare", *(["--task", task] if task else ["--corpus"]), "--source", "hub", "--out", str(out), *extra]
    return {"cli": argv + (["--languages", ",".join(languages)] if languages else [])}


def local_args(out, task, languages) -> argparse.Namespace:
    return argparse.Namespace(task=task, corpus=False, translated=False, source="local",
                              local_dir=str(replicas.RAW), revision=None, languages=languages, max_examples=None,
                              seed=0, trust_remote_code=False, out=str(out), missing_dev="carve")


def test_every_hub_task_prepares_through_the_server_as_from_the_local_mirror(hub, tmp_path):
    tasks = hub_tasks()
    results = run_steps(hub.url, tmp_path / "hf", [prepare_cli(t, tmp_path / "hub" / t, *_locked(t), languages=langs)
                                                    for t, langs in tasks.items()])
    assert [r["rc"] for r in results] == [0] * len(tasks), [r["err"][-500:] for r in results if r["rc"]]
    for task, langs in tasks.items():
        assert prepare.main(local_args(tmp_path / "local" / task, task, langs)) == 0
        hub_m, local_m = (prepare.read_manifest(tmp_path / d / task) for d in ("hub", "local"))
        assert hub_m["splits"].keys() == local_m["splits"].keys(), task
        for split in hub_m["splits"]:
            assert prepare.load_split(tmp_path / "hub" / task, split).equals(
                prepare.load_split(tmp_path / "local" / task, split)), (task, split)
        # the manifest names the commit of every repository read, and every input its commit
        assert hub_m["revisions"] == {x["hub"]: PIN[x["hub"]] for x in hub_m["inputs"]}
        assert all(x["commit"] == PIN[x["hub"]] for x in hub_m["inputs"])
    anli = prepare.read_manifest(tmp_path / "hub" / "anli_plus")["revisions"]
    assert set(anli) == {"facebook/anli", "nyu-mll/glue", "stanfordnlp/snli"}  # one pin per source repository
    # every request named a commit: nothing was read through a branch
    assert not [p for _, p in hub.requests if "/main" in p or "refs%2F" in p]


def test_test_only_languages_and_the_hub_multilingual_sources(hub, tmp_path):
    steps = [prepare_cli("udpos", tmp_path / "udpos", languages=["en", "kk", "th"]),
             {"cli": ["prepare", "--task", "mnli", "--translated", "--source", "hub", "--languages", "de",
                      "--out", str(tmp_path / "mt")]},
             prepare_cli(None, tmp_path / "corpus", languages=["en", "de"]),
             {"cli": ["prepare", "--task", "mnli", "--translated", "--source", "hub", "--languages", "de,xx",
                      "--out", str(tmp_path / "mt-bad")]},
             {"cli": ["prepare", "--task", "squad_v1", "--translated", "--source", "hub", "--languages", "de",
                      "--revision", f"juletxara/xquad_xtreme={replicas.XQUAD_PARQUET_COMMIT}",
                      "--out", str(tmp_path / "mt-squad")]}]
    udpos, mt, corpus, bad, squad = run_steps(hub.url, tmp_path / "hf", steps)
    assert (udpos["rc"], mt["rc"], corpus["rc"], squad["rc"]) == (0, 0, 0, 0), (udpos, mt, corpus, squad)
    m = prepare.read_manifest(tmp_path / "udpos")
    # Kazakh and Thai have no validation split: test-only; English dev is there for selection
    assert m["splits"]["dev"]["rows_per_lang"].keys() == {"en"}
    assert m["splits"]["test"]["rows_per_lang"].keys() == {"en", "kk", "th"}
    mt_rows = prepare.load_split(tmp_path / "mt", "train").to_pylist()
    assert {r["lang"] for r in mt_rows} == {"de"} and {r["label"] for r in mt_rows} <= {0, 1, 2}
    assert prepare.read_manifest(tmp_path / "mt")["revisions"] == {"facebook/xnli": PIN["facebook/xnli"]}
    c = prepare.read_manifest(tmp_path / "corpus")
    assert c["revisions"] == {"wikimedia/wikipedia": PIN["wikimedia/wikipedia"]}
    # the first shard only (train-00000-of-*), per language
    assert {x["data_files"] for x in c["inputs"]} == {"20231101.en/train-00000-of-*.parquet",
                                                      "20231101.de/train-00000-of-*.parquet"}
    first_shard = {lang: sum(1 for r in replicas.fixture(f"xstilts-corpus/{lang}/train")[:-1] if r["text"].strip())
                   for lang in ("en", "de")}  # the replica's second shard holds the last line
    assert {lang: c["splits"]["train"]["rows_per_lang"][lang] + c["splits"]["dev"]["rows_per_lang"][lang]
            for lang in ("en", "de")} == first_shard
    assert ONE_LINE.match(bad["err"]) and "source 'facebook/xnli/{lang}' has no language(s) xx" in bad["err"]
    assert prepare.read_manifest(tmp_path / "mt-squad")["revisions"] == {
        "juletxara/xquad_xtreme": replicas.XQUAD_PARQUET_COMMIT}


def test_xtreme_r_languages_of_panx_and_xquad_come_from_their_own_repositories(hub, tmp_path):
    """PAN-X in de and ro: German from google/xtreme, Romanian (XTREME-R's) from full WikiANN's parquet branch by
    `data_files`; XQuAD's Romanian from google/xquad: each language from the source that has it, through the
    server as from the local mirror, every repository at its pin."""
    steps = [prepare_cli("panx", tmp_path / "hub" / "panx", *_locked("panx"), languages=["de", "ro"]),
             prepare_cli("xquad", tmp_path / "hub" / "xquad", languages=["de", "ro"])]
    results = run_steps(hub.url, tmp_path / "hf", steps)
    assert [r["rc"] for r in results] == [0, 0], [r["err"][-500:] for r in results]
    for task in ("panx", "xquad"):
        assert prepare.main(local_args(tmp_path / "local" / task, task, ["de", "ro"])) == 0
        for split in prepare.read_manifest(tmp_path / "hub" / task)["splits"]:
            assert prepare.load_split(tmp_path / "hub" / task, split).equals(
                prepare.load_split(tmp_path / "local" / task, split)), (task, split)
    panx, xquad = (prepare.read_manifest(tmp_path / "hub" / t) for t in ("panx", "xquad"))
    assert panx["revisions"] == {"google/xtreme": XTREME, "unimelb-nlp/wikiann": replicas.WIKIANN_PARQUET_COMMIT}
    assert {x["lang"]: x["hub"] for x in panx["inputs"] if x["prepared_split"] == "test"} == {
        "de": "google/xtreme", "ro": "unimelb-nlp/wikiann"}
    assert panx["splits"]["test"]["rows_per_lang"] == {"de": 2, "ro": 2}
    assert xquad["revisions"] == {"google/xtreme": XTREME, "google/xquad": PIN["google/xquad"]}
    assert xquad["splits"]["test"]["rows_per_lang"]["ro"] == 1


def test_bad_sources_give_one_line_each(hub, tmp_path):
    unknown = fake_commit("never committed")
    steps = [
        prepare_cli("panx", tmp_path / "a", "--revision", f"google/xtreme={replicas.XTREME_SCRIPT_COMMIT}",
                    languages=["de"]),
        prepare_cli("panx", tmp_path / "b", "--revision", f"google/xtreme={unknown}", languages=["de"]),
        prepare_cli("cosmosqa", tmp_path / "c"),
        prepare_cli("anli_plus", tmp_path / "d", "--revision", XTREME),
        {"call": "xstilts.data.sources:hub_commit", "args": ["nobody/nothing", "main"]},
        {"call": "xstilts.data.sources:load_at_commit", "args": ["google/xtreme", "PAN-X.xx", "test", XTREME, None,
                                                                 "w"]},
        {"call": "xstilts.data.sources:load_at_commit", "args": ["google/xtreme", "udpos.Thai", "validation", XTREME,
                                                                 None, "w"]},
    ]
    script, revision, manual, bare, unknown_id, config, split = run_steps(hub.url, tmp_path / "hf", steps)
    for r in (script, revision, manual, bare):
        assert r["rc"] == 2 and ONE_LINE.match(r["err"]), r
    assert f"at {replicas.XTREME_SCRIPT_COMMIT} holds the loading script xtreme.py" in script["err"]
    assert f"has no revision '{unknown}'" in revision["err"]
    assert "task 'cosmosqa'" in manual["err"] and "manual step: allenai/cosmos_qa holds only a loading script" \
        in manual["err"]
    assert "reads 3 hub repositories" in bare["err"]
    assert "hub dataset 'nobody/nothing' does not exist" in unknown_id["error"]
    assert "no config 'PAN-X.xx'" in config["error"]
    assert "no split 'validation'" in split["error"] and "(splits: test)" in split["error"]  # Thai: test-only
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_datasets_silent_fallback_to_another_revision_is_refused(hub, tmp_path):
    """datasets 5.2 returns ANY cached copy when the hub read fails (a script-only commit) and the newest cached
    copy when offline, whatever revision is asked; load_at_commit must refuse both."""
    hf, args = tmp_path / "hf", ["google/xtreme", "PAN-X.de", "test"]
    first, *online = run_steps(hub.url, hf, [
        prepare_cli("panx", tmp_path / "p", languages=["de"]),  # caches the pinned commit's data
        {"call": "tests.hub.run_cli:plain_load", "args": [*args, replicas.XTREME_SCRIPT_COMMIT]},
        {"call": "xstilts.data.sources:load_at_commit", "args": [*args, replicas.XTREME_SCRIPT_COMMIT, None, "w"]}])
    assert first["rc"] == 0, first
    pinned_rows = prepare.read_manifest(tmp_path / "p")["splits"]["test"]["rows_per_lang"]["de"]
    offline = run_steps(hub.url, hf, [
        {"call": "tests.hub.run_cli:plain_load", "args": [*args, replicas.XTREME_MOVED_COMMIT]},
        {"call": "xstilts.data.sources:load_at_commit", "args": [*args, replicas.XTREME_MOVED_COMMIT, None, "w"]}],
        env={"HF_DATASETS_OFFLINE": "1"})
    # the behaviour defended against: the pinned commit's rows come back for other revisions
    assert online[0] == {"value": pinned_rows} and offline[0] == {"value": pinned_rows}
    for r in (online[1], offline[1]):
        assert "datasets returned another revision's data" in r["error"], r


def test_bucc_test_pools_from_mteb_bucc_equal_the_original_files(hub, tmp_path):
    """BUCC from the hub: test = mteb/BUCC's pools and gold (1-based index pairs), dev = the manual sample files."""
    step = prepare_cli("bucc2018", tmp_path / "hub", "--local-dir", str(replicas.RAW), languages=["de"])
    (result,) = run_steps(hub.url, tmp_path / "hf", [step])
    assert result["rc"] == 0, result
    assert prepare.main(local_args(tmp_path / "local", "bucc2018", ["de"])) == 0
    m = prepare.read_manifest(tmp_path / "hub")
    assert m["revisions"] == {"mteb/BUCC": PIN["mteb/BUCC"]}
    assert {x.get("hub") or x["file"].rsplit(".", 2)[-2] for x in m["inputs"]} == {"mteb/BUCC", "sample"}

    def pairs(d):
        text = {(r["side"], r["sent_id"]): r["text"] for r in prepare.load_split(d, "test").to_pylist()}
        pools = sorted((r["side"], r["text"]) for r in prepare.load_split(d, "test").to_pylist())
        gold = sorted((text["src", g["src_id"]], text["en", g["en_id"]]) for g in prepare.load_gold(d, "test").to_pylist())
        return pools, gold

    assert pairs(tmp_path / "hub") == pairs(tmp_path / "local")
    assert prepare.load_split(tmp_path / "hub", "dev").equals(prepare.load_split(tmp_path / "local", "dev"))
