"""The HTML report of a small results tree (a two-row grid, its cell outputs written by the test): the
transfer matrix, its std, the deltas, significance and tradeoff are HTML tables in the page (each caption
renders its own table), entries carry categories and labels, and the summary's param is a short digest:
no parameter dump in the report, no 27 KB "Params have changed" reason in a dry run."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.test_workflow import ROOT, snakemake

# the tables the page shows, with their labels (significance and tradeoff may have no rows: their
# header is a plain first row there, so an empty one still renders)
TABLES = {"transfer_matrix.csv": {"table": "transfer matrix", "statistic": "mean over seeds"},
          "transfer_matrix_std.csv": {"table": "transfer matrix", "statistic": "std over seeds"},
          "transfer_delta.csv": {"table": "difference to none", "statistic": "mean over seeds"},
          "significance.csv": {"table": "difference to none, tested", "per": "row and target"},
          "tradeoff.csv": {"table": "score and cost deltas", "per": "comparison"},
          "transfer_matrix_dev.csv": {"table": "transfer matrix", "statistic": "mean over seeds"},
          "transfer_delta_dev.csv": {"table": "difference to none", "statistic": "mean over seeds"},
          "headline.csv": {"table": "best intermediate per target", "per": "target, chosen on English dev"},
          "claims.csv": {"table": "claims tested on this run", "per": "claim"}}


def write_cells(work, cfg: dict) -> None:
    """Each cell's metrics.json and cost.json as a finished grid leaves them (`none` 50 points, others 55)."""
    from xstilts import grid

    cost = {"phase": "evaluate", "wall_s": 1.0, "device": "cpu", "device_count": 1, "device_s": 1.0,
            "useful_tokens": 100, "executed_tokens": 120, "useful_flops": 1e12, "executed_flops": 1.2e12}
    results = work / grid.results_dir(cfg)
    for job in grid.cells(cfg)["jobs"]:
        out = results / job["path"]
        out.mkdir(parents=True)
        (out / "cost.json").write_text(json.dumps({**cost, "phase": job["phase"]}))
        if "target" in job:
            score = 50.0 if job["intermediate"] == "none" else 55.0
            (out / "metrics.json").write_text(json.dumps({
                "task": job["target"], "metric": "accuracy", "score": score, "languages": {"de": {"accuracy": score}},
                "average": {"accuracy": score}}))


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A finished two-row grid's results, its summary and report, then one cell rewritten and a dry run of
    the summary: (summary dir, the report's `results` entries by file name, the dry run's stdout)."""
    from xstilts import grid

    root = tmp_path_factory.mktemp("report")
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    cfg.update(intermediate=["none", "mnli"], targets=["xnli", "tatoeba"], warm_worker=False)
    configfile = root / "small.yaml"
    configfile.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    work = root / "work"
    write_cells(work, grid.check_config(cfg, ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for args in (("summary",), ("--report", str(root / "report.html"), "summary")):
        run = snakemake(work, configfile, *args, env=env)
        assert run.returncode == 0, run.stderr[-3000:]
    page = (root / "report.html").read_text(encoding="utf-8")
    results = json.loads(re.search(r"var results = (\{.*?\});\n", page, re.S).group(1))
    cell = work / "results/ci/tiny/full/seed0/none/en/eval/xnli/metrics.json"
    cell.write_text(cell.read_text())  # a cell changed: the summary is out of date
    dry = snakemake(work, configfile, "-n", "summary", env=env)
    assert dry.returncode == 0, dry.stderr
    return work / "results/ci/summary", {os.path.basename(k): v for k, v in results.items()}, dry.stdout


def cells_of(caption: str) -> list[list[str]]:
    """The rows of the HTML table in a caption (header row first), as text."""
    table = re.search(r"<table.*?</table>", caption, re.S).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [[html.unescape(re.sub(r"<.*?>", "", c)).replace("\xa0", "").strip()
             for c in re.findall(r"<t[hd].*?</t[hd]>", r, re.S)] for r in rows]


@pytest.mark.parametrize("name", TABLES)
def test_report_renders_each_table_in_its_caption(reported, name):
    summary, results, _ = reported
    frame = pd.read_csv(summary / name, dtype=str, keep_default_na=False)
    entry = results[name]
    assert cells_of(entry["caption"]) == [list(frame.columns), *frame.values.tolist()]
    assert entry["labels"] == TABLES[name]


def test_report_has_one_caption_per_file_categories_and_no_parameter_dump(reported):
    _, results, _ = reported
    captions = [entry["caption"] for entry in results.values()]
    assert len(set(captions)) == len(captions) == len(results)
    assert all(entry["labels"] for entry in results.values())
    params = results["transfer_matrix.csv"]["job_properties"]["params"]
    assert re.search(r"finished=\d+ finished, sha256 [0-9a-f]{16}$", params) and len(params) < 200, params


def test_report_shows_the_findings_paragraph(reported):
    summary, results, _ = reported
    entry = results["findings.md"]
    words = re.sub(r"<.*?>", "", entry["caption"]).split()
    assert " ".join((summary / "findings.md").read_text(encoding="utf-8").split()) in " ".join(words)
    assert "System Message" not in entry["caption"] and entry["labels"] == {"text": "what this run's numbers say"}


def test_summary_dry_run_reason_is_short(reported):
    *_, dry = reported
    reasons = [line for line in dry.splitlines() if "Params have changed" in line]
    assert reasons and max(map(len, reasons)) < 300, reasons
