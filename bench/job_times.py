"""Job time by rule of a finished run, from its Snakemake `benchmark:` files (docs/workflow.md's breakdown).

    python bench/job_times.py results/demo resources/logs/benchmarks
"""
import collections
import csv
import statistics
import sys
from pathlib import Path


def rule_of(path: Path, root: Path) -> str:
    """`<root>/<rule>/...tsv` or `<root>/<rule>.tsv` (results/<experiment>/benchmarks/evaluate/..., synth.tsv)."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def main(roots: list[str]) -> None:
    seconds = collections.defaultdict(list)
    for root in map(Path, roots):
        root = root / "benchmarks" if (root / "benchmarks").is_dir() else root
        for path in sorted(root.rglob("*.tsv")):
            with path.open() as f:
                seconds[rule_of(path, root)].append(float(next(csv.DictReader(f, delimiter="\t"))["s"]))
    print(f"{'rule':<20}{'jobs':>6}{'sum s':>9}{'median s':>10}{'min s':>8}")
    for rule, values in sorted(seconds.items()):
        print(f"{rule:<20}{len(values):>6}{sum(values):>9.1f}{statistics.median(values):>10.2f}{min(values):>8.2f}")
    print(f"{'total':<20}{sum(map(len, seconds.values())):>6}{sum(map(sum, seconds.values())):>9.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/demo", "resources/logs/benchmarks"])
