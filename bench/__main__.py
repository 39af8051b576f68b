"""Run every ``bench/bench_*.py`` module and print one markdown table of same-run figures.

Each module's ``run(quick)`` returns rows ``(workload, figure, ratio, target, met)``. Ratios are
measured side by side in the same run: on a shared 2-core machine only they mean anything.
The table is also written, with the machine and versions, under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import pkgutil
import platform
import sys
from pathlib import Path

HERE = Path(__file__).parent


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    packages = ", ".join(f"{name} {version(name)}" for name in ("actionkit", "werkzeug", "flask"))
    return f"{os.cpu_count()} cores, {model}; Python {platform.python_version()}, {packages}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("only", nargs="*", help="module names (bench_cache, ...)")
    args = parser.parse_args()
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    # The microbenchmarks first, on a machine at rest: after minutes of HTTP load on every core,
    # a shared machine measures differences of a few microseconds with several times the noise.
    names.sort(key=lambda name: name == "bench_http")
    rows = []
    for name in names:
        if args.only and name not in args.only:
            continue
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(args.quick))
    lines = [
        "| workload | figure | ratio (same run) | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for workload, figure, ratio, target, met in rows:
        shown = "" if met is None else "yes" if met else "NO"  # None: a figure with no target
        lines.append(f"| {workload} | {figure} | {ratio} | {target} | {shown} |")
    table = "\n".join(lines)
    print(table)
    stamp = datetime.datetime.now(datetime.UTC)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{stamp:%Y-%m-%d-%H%M}.md"
    out.write_text(f"# {stamp:%Y-%m-%d %H:%M} UTC\n\n{machine()}\n\n{table}\n")
    print(f"\nwritten to {out.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
