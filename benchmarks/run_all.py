"""Run every benchmark script and summarise: ``make bench``.

Each ``benchmarks/*.py`` except this file and files starting with ``_`` runs as
``python benchmarks/X.py --json benchmarks/results/X.json [--quick]`` in its own process (with this
interpreter), one after the other (benchmarks measure speed: they must not compete for the CPU).
The exit status is non-zero if any benchmark failed.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--results DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Outcome:
    name: str
    returncode: int
    seconds: float
    last_line: str


def discover(directory: Path = HERE) -> list[Path]:
    """Benchmark scripts in ``directory``, sorted by name."""
    me = Path(__file__).resolve()
    return sorted(
        p for p in directory.glob("*.py") if not p.name.startswith("_") and p.resolve() != me
    )


def run_one(script: Path, results: Path, *, quick: bool) -> Outcome:
    cmd = [sys.executable, str(script), "--json", str(results / f"{script.stem}.json")]
    if quick:
        cmd.append("--quick")
    print(f"==> {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    # stderr (progress bars, logs) streams through; stdout is echoed after the run and its last
    # line kept for the summary.
    proc = subprocess.run(cmd, cwd=HERE.parent, check=False, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return Outcome(
        script.stem, proc.returncode, time.perf_counter() - start, lines[-1] if lines else ""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and summarise.")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (file stems)")
    parser.add_argument(
        "--results",
        type=Path,
        default=HERE / "results",
        help="folder for the JSON results (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    scripts = discover()
    if args.only:
        unknown = sorted(set(args.only) - {s.stem for s in scripts})
        if unknown:
            parser.error(
                f"no benchmark named {', '.join(unknown)}; "
                f"have: {', '.join(s.stem for s in scripts)}"
            )
        scripts = [s for s in scripts if s.stem in args.only]
    args.results.mkdir(parents=True, exist_ok=True)

    outcomes = [run_one(script, args.results, quick=args.quick) for script in scripts]

    print("\nbenchmark summary")
    width = max((len(o.name) for o in outcomes), default=10)
    for o in outcomes:
        status = "ok" if o.returncode == 0 else f"FAILED (exit {o.returncode})"
        print(f"  {o.name:<{width}}  {status:<18} {o.seconds:7.1f} s  {o.last_line[:120]}")
    failed = [o.name for o in outcomes if o.returncode != 0]
    if failed:
        print(f"{len(failed)} of {len(outcomes)} failed: {', '.join(failed)}")
        return 1
    print(f"all {len(outcomes)} passed; results in {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
