"""The one command-line entry point: `xstilts <verb>`, one verb per phase.

Imports of heavy modules (torch, transformers) happen inside each verb so `xstilts tasks` and the
Snakemake DAG stay fast. A `UserError` prints its message alone and exits 2; preemption exits 75.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from xstilts.errors import EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_USER_ERROR, Diverged, Preempted, UserError


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at char {e.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _list_arg(text: str) -> list[str]:
    return [x for x in text.split(",") if x]


class _Help(argparse.RawDescriptionHelpFormatter):
    """Per-verb help: the description and example as written, and each flag's default when it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default in ([], {}, "", argparse.SUPPRESS)
        if not unset and not action.required and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__.splitlines()[0],
                                epilog="`xstilts VERB --help` describes each verb's flags, with an example.")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, summary: str, example: str, details: str = ""):
        """A verb's parser: `summary` in `xstilts --help`, then details and an example in its own --help."""
        return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + "."
                              + (f"\n\n{details}" if details else ""),
                              epilog=f"example:\n  {example}", formatter_class=_Help)

    s = verb("tasks", "print the task registry", "xstilts tasks --json",
             "Every task: role (intermediate/target), kind, metric, training task and languages.")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = verb("synth", "generate the offline mini-XTREME in the hub datasets' schemas",
             "xstilts synth --out resources/data/raw/synth --size demo --seed 0",
             "English plus 6 synthetic languages, written as a local mirror (docs/synth.md).")
    s.add_argument("--out", required=True, help="directory to write (local-mirror layout)")
    s.add_argument("--seed", type=int, default=0, help="random seed of the generator")
    s.add_argument("--size", default="demo", help="size preset: ci, demo or large")
    s.add_argument("--mt-error-rate", type=float, default=None, help="word error rate of the fake MT data")
    s.add_argument("--workers", type=int, default=1, help="processes generating it (the same bytes for any number)")

    s = verb("prepare", "normalise one task's source into the internal schema (parquet + manifest)",
             "xstilts prepare --task xnli --source local --local-dir resources/data/raw/synth --languages en,de "
             "--out resources/data/prepared/demo-local-v1/xnli",
             "Reads the hub or a local mirror, validates every row and writes <out>/<split>.parquet and "
             "manifest.json\n(docs/design.md, 'Prepared data').")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--task", help="registry task name")
    g.add_argument("--corpus", action="store_true", help="the unlabelled multilingual MLM corpus")
    s.add_argument("--translated", action="store_true", help="machine-translated training data of --task")
    s.add_argument("--source", choices=["hub", "local"], required=True,
                   help="read the hub datasets or a local mirror (local-only tasks always read the mirror)")
    s.add_argument("--local-dir", help="root of the local mirror (required with --source local)")
    s.add_argument("--revision", action="append", default=None, metavar="REPO=REV",
                   help="hub revision of one repository (repeatable; default: registry.REPOS' pin)")
    s.add_argument("--languages", type=_list_arg, default=None, help="comma-separated; default: the task's")
    s.add_argument("--max-examples", type=int, default=None, help="cap per split and language")
    s.add_argument("--seed", type=int, default=0, help="seed of the capped subset and of a carved dev split")
    s.add_argument("--missing-dev", choices=["carve", "test"], default="carve",
                   help="a task without a dev split (TyDiQA): carve one from English train, or select on the "
                        "English test rows and train on all of train (the authors' setting)")
    s.add_argument("--trust-remote-code", action="store_true",
                   help="refused: datasets 5 runs no dataset scripts (use the parquet export or a local mirror)")
    s.add_argument("--out", required=True, help="prepared directory to write")

    s = verb("fetch-model", "phase (i) for real runs: snapshot a hub model to a local directory",
             "xstilts fetch-model --model FacebookAI/xlm-roberta-large --revision <commit> "
             "--out resources/models/xlmr-large",
             "Writes model and tokenizer with save_pretrained (safetensors); needs the network.")
    s.add_argument("--model", required=True, help="hub model id, e.g. FacebookAI/xlm-roberta-large")
    s.add_argument("--revision", required=True, help="pinned hub revision (a commit; a branch is resolved)")
    s.add_argument("--out", required=True, help="model directory to write")

    s = verb("lock", "resolve a config's hub revisions to commits and write its lock file",
             "xstilts lock --configfile config/xtreme.yaml")
    s.add_argument("--configfile", required=True, help="the workflow config (e.g. config/xtreme.yaml)")
    s.add_argument("--schema", default=None, help="config schema (default: workflow/schemas/config.schema.yaml)")
    s.add_argument("--update", action="store_true", help="accept branches that moved since they were locked")

    s = verb("pretrain", "phase (i) for the demo: train a tokenizer and a tiny MLM",
             "xstilts pretrain --corpus resources/data/prepared/demo-local-v1/corpus --out resources/models/tiny "
             "--hparams '{\"max_steps\": 600}'",
             "Progress: a line every log_every steps or log_seconds seconds (step, loss, lr, tokens/s, ETA).")
    s.add_argument("--corpus", required=True, help="prepared corpus directory")
    s.add_argument("--out", required=True, help="model directory to write (save_pretrained layout)")
    s.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order")
    s.add_argument("--hparams", type=_json_arg, default={},
                   help="JSON object over the pretrain defaults in xstilts/recipes.py")
    s.add_argument("--state-dir", default=None, help="resumable state (default: <out>.state)")

    def train_common(s):
        s.add_argument("--adaptation", choices=["full", "lora"], default="full",
                       help="train every weight, or LoRA adapters merged into the encoder at the end")
        s.add_argument("--seed", type=int, default=0, help="seed of heads, adapters, dropout and batch order")
        s.add_argument("--hparams", type=_json_arg, default={},
                       help="JSON object over the package defaults (xstilts/recipes.py), e.g. '{\"lr\": 1e-5}'")
        s.add_argument("--state-dir", required=True, help="resumable state (not a workflow output)")
        s.add_argument("--out", required=True, help="output directory to write")
        s.add_argument("--label", default="", help="free text naming the cell in messages")

    s = verb("intermediate", "phase (ii): intermediate-task training",
             "xstilts intermediate --model resources/models/tiny --tasks mnli --data <prepared>/mnli --seed 0 "
             "--state-dir state/mnli --out results/demo/tiny/full/seed0/mnli/en/intermediate",
             "Writes <out>/encoder, cost.json and train_log.json. Logs progress every log_every steps or "
             "log_seconds\nseconds and English dev scores every eval_every steps.")
    s.add_argument("--model", required=True, help="pretrained model directory (save_pretrained layout)")
    s.add_argument("--tasks", type=_list_arg, required=True, help="one task, or several for multi-task")
    s.add_argument("--data", type=_list_arg, required=True, help="prepared dir per task, same order")
    s.add_argument("--variant", choices=["en", "mlm", "mt"], default="en",
                   help="English only, mixed with multilingual MLM (--corpus), or machine-translated data "
                        "(--translated)")
    s.add_argument("--corpus", default=None, help="prepared corpus dir (variant mlm)")
    s.add_argument("--translated", type=_list_arg, default=None, help="prepared translated dir per task (variant mt)")
    train_common(s)

    s = verb("finetune", "phase (iii): fine-tune on a target's English training task",
             "xstilts finetune --encoder results/demo/tiny/full/seed0/mnli/en/intermediate --train-task mnli "
             "--data <prepared>/mnli --seed 0 --state-dir state/ft --out results/demo/tiny/full/seed0/mnli/en/"
             "finetune/mnli",
             "Selects the checkpoint on English dev (every eval_every steps); writes <out>/model, dev.json, "
             "cost.json and\ntrain_log.json.")
    s.add_argument("--encoder", required=True, help="encoder directory (pretrained or intermediate)")
    s.add_argument("--train-task", required=True, help="English training task of the target, e.g. mnli for XNLI")
    s.add_argument("--data", required=True, help="prepared dir of the training task")
    train_common(s)

    s = verb("evaluate", "zero-shot evaluation of fine-tuned models on their targets",
             "xstilts evaluate --model <finetune out>/model --target xnli --data <prepared>/xnli "
             "--out results/demo/tiny/full/seed0/mnli/en/eval/xnli",
             "Writes metrics.json, cost.json and the predictions in the XTREME layout per target; logs a line per\n"
             "language. Repeat --model/--target/--data/--out (and --languages/--hparams, once per target or not at\n"
             "all) to evaluate several targets in one process: the workflow evaluates a row's targets in one job.")
    s.add_argument("--model", action="append", required=True, help="fine-tuned model directory (encoder/ + heads)")
    s.add_argument("--target", action="append", required=True, help="XTREME target, e.g. xnli")
    s.add_argument("--data", action="append", required=True, help="prepared dir of the target")
    s.add_argument("--languages", action="append", type=_list_arg, default=None,
                   help="comma-separated; empty or absent: the target's")
    s.add_argument("--hparams", action="append", type=_json_arg, default=None,
                   help="JSON object over the evaluate defaults in xstilts/recipes.py")
    s.add_argument("--out", action="append", required=True, help="output directory to write")

    s = verb("retrieve", "BUCC / Tatoeba straight from an encoder",
             "xstilts retrieve --encoder resources/models/tiny --target tatoeba --data <prepared>/tatoeba "
             "--out results/demo/tiny/full/seed0/none/en/retrieval/tatoeba",
             "Mean-pooled hidden states of one layer, faiss search; logs a line per language. Repeat\n"
             "--target/--data/--out (and --languages, once per target or not at all) to score several targets\n"
             "from one loaded encoder.")
    s.add_argument("--encoder", required=True, help="encoder directory (pretrained or intermediate)")
    s.add_argument("--target", action="append", required=True, help="bucc2018 or tatoeba")
    s.add_argument("--data", action="append", required=True, help="prepared dir of the target")
    s.add_argument("--languages", action="append", type=_list_arg, default=None,
                   help="comma-separated; empty or absent: the target's")
    s.add_argument("--hparams", type=_json_arg, default={},
                   help="JSON object over the retrieval defaults in xstilts/recipes.py, e.g. '{\"layer\": 14}'")
    s.add_argument("--out", action="append", required=True, help="output directory to write")

    s = verb("aggregate", "transfer matrix, efficiency table and plots",
             "xstilts aggregate --results results/demo --cells results/demo/cells.json --out results/demo/summary",
             "Reads whatever cells exist; lists the rest in missing.csv with the reason.")
    s.add_argument("--results", required=True, help="the experiment's results directory")
    s.add_argument("--cells", required=True, help="JSON file listing the expected cells")
    s.add_argument("--out", required=True, help="summary directory")

    s = verb("export", "one row's test predictions + labels as one XTREME submission folder",
             "xstilts export --row results/demo/tiny/full/seed0/mnli/en --out submission/mnli")
    s.add_argument("--row", required=True, help="a results row dir: results/<exp>/<backbone>/<adaptation>/"
                                                "seed<seed>/<intermediate>/<variant>")
    s.add_argument("--out", required=True, help="submission folder to write (predictions/, labels/, manifest.json)")
    s.add_argument("--benchmark", default="xtreme", help="whose folder layout and tasks: xtreme (default) or "
                                                         "xtreme-r (its scorer's 10 task folders but LAReQA)")

    s = verb("estimate", "project a grid's tokens, FLOPs and device-hours before running it",
             "xstilts estimate --configfile config/xtreme.yaml --gpu H100 --mfu 0.35",
             "Per rule and for the whole grid, and the same grid under the authors' jiant recipe (static padding)\n"
             "and XTREME's reference scripts, with the ratios. Measures prepared data when it is on disk, else\n"
             "uses registry facts (docs/workflow.md, 'Cost before running').")
    s.add_argument("--configfile", default="config/config.yaml", help="the workflow config")
    s.add_argument("--schema", default=None, help="config schema (default: workflow/schemas/config.schema.yaml)")
    s.add_argument("--gpu", default="H100", help="device whose bf16 peak prices the hours: H100, H200, A100, V100")
    s.add_argument("--mfu", type=float, default=0.35, help="fraction of peak reached on executed FLOPs")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--jobs", action="store_true", help="with --json: every job's projection too")

    s = verb("bench", "speed comparisons against the reference recipes", "xstilts bench --size smoke --json",
             "docs/benchmarks.md explains each comparison.")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--size", default="full", choices=["smoke", "full"],
                   help="smoke: seconds (CI); full: the measured sizes")
    return p


# Verbs whose `main(args)` lives in their own module; the others are `xstilts.phases.run_<verb>`.
_MODULE_VERBS = {"synth": "xstilts.synth", "prepare": "xstilts.data.prepare", "lock": "xstilts.data.lock",
                 "aggregate": "xstilts.aggregate", "export": "xstilts.export", "bench": "xstilts.bench",
                 "estimate": "xstilts.estimate"}


def _run(args: argparse.Namespace) -> int:
    if args.verb == "tasks":
        from xstilts.registry import task_records

        records = task_records()
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            print(f"{'name':<14}{'role':<14}{'kind':<20}{'metric':<16}{'train_on':<10}languages")
            for r in records:
                langs = " ".join(r["languages"])
                print(f"{r['name']:<14}{r['role']:<14}{r['kind']:<20}{r['metric']:<16}{r['train_on'] or '-':<10}{langs}")
        return 0
    if args.verb in _MODULE_VERBS:  # imported only when run: `xstilts tasks` and the DAG stay fast
        return importlib.import_module(_MODULE_VERBS[args.verb]).main(args)
    from xstilts import phases

    return getattr(phases, f"run_{args.verb.replace('-', '_')}")(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.verb != "tasks":  # a local run's warm worker (xstilts.worker) saves this job the imports
        from xstilts.worker import delegate

        code = delegate(argv)
        if code is not None:
            return code
    try:
        return _run(args) or 0
    except UserError as e:
        print(f"xstilts {args.verb}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Preempted as e:
        print(f"xstilts {args.verb}: preempted: {e}", file=sys.stderr)
        return EXIT_PREEMPTED
    except Diverged as e:
        print(f"xstilts {args.verb}: diverged: {e}", file=sys.stderr)
        return EXIT_DIVERGED


if __name__ == "__main__":
    sys.exit(main())
