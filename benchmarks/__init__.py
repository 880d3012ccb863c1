"""radaug benchmarks: speed figures as ratios against a reference measured in the same run.

Every module ``benchmarks/bench_<topic>.py`` defines ``run(quick: bool = False) -> list[dict]``;
each dict is one row of the results table (see :data:`ROW_KEYS` and :func:`row`).
``python -m benchmarks.run`` runs them all, each in its own process, prints the table
and writes ``benchmarks/results.json``; ``python -m benchmarks.bench_<topic>`` runs one.
No benchmark is a timed test: figures are reported, never asserted in ``make test``.
"""

from __future__ import annotations

import math
import os
import re
import resource
import sys
import time
from contextlib import contextmanager

ROW_KEYS = ("benchmark", "figure", "value", "unit", "reference", "ratio", "target", "notes")
_TARGET = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def row(benchmark: str, figure: str, value: float, unit: str, *, reference: float | None = None,
        ratio: float | None = None, target: str | None = None, notes: str = "") -> dict:
    """One results row in the benchmark contract.

    ``ratio`` defaults to ``value / reference`` when a reference is given. ``target``
    (e.g. ``">= 0.95"``) applies to the ratio when there is one, else to the value.
    """
    if ratio is None and reference not in (None, 0):
        ratio = value / reference
    return {"benchmark": benchmark, "figure": figure, "value": float(value), "unit": unit,
            "reference": None if reference is None else float(reference),
            "ratio": None if ratio is None else float(ratio), "target": target, "notes": notes}


def check_rows(rows, source: str) -> list[dict]:
    """Validate rows against the contract; raise ``ValueError`` naming ``source`` and the bad row."""
    if not isinstance(rows, list):
        raise ValueError(f"{source}: run() must return a list of dicts, got {type(rows).__name__}")
    for r in rows:
        if not isinstance(r, dict) or set(r) != set(ROW_KEYS):
            got = sorted(r) if isinstance(r, dict) else type(r).__name__
            raise ValueError(f"{source}: a row must have exactly the keys {list(ROW_KEYS)}, got {got}")
        if r["target"] is not None and not _TARGET.match(r["target"]):
            raise ValueError(f"{source}: target {r['target']!r} of {r['figure']!r} is not like '>= 0.95'")
    return rows


def meets(r: dict) -> bool | None:
    """Whether a row meets its target (on the ratio if any, else the value); None without a target."""
    if r["target"] is None:
        return None
    subject = r["ratio"] if r["ratio"] is not None else r["value"]
    if subject is None or (isinstance(subject, float) and math.isnan(subject)):
        return False
    op, bound = _TARGET.match(r["target"]).groups()
    bound = float(bound)
    return {">=": subject >= bound, "<=": subject <= bound, ">": subject > bound,
            "<": subject < bound, "==": subject == bound}[op]


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def format_table(rows: list[dict]) -> str:
    """A plain-text table of rows (markdown-compatible)."""
    head = ["benchmark", "figure", "value", "unit", "reference", "ratio", "target", "met"]
    body = [[r["benchmark"], r["figure"], _fmt(r["value"]), r["unit"], _fmt(r["reference"]),
             _fmt(r["ratio"]), r["target"] or "-", {True: "yes", False: "NO", None: "-"}[meets(r)]]
            for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def check_flags(argv: list[str], switches=(), options=(), doc: str | None = None) -> list[str]:
    """Refuse a command line a benchmark would misread, before it runs (which can take an hour).

    ``switches`` take no value, ``options`` one. ``-h``/``--help`` prints ``doc`` (default: the
    running module's docstring) and exits;
    an unknown flag, a stray word, or an option without its value exits with status 2,
    naming it and the flags the benchmark knows. Returns ``argv``.
    """
    if "-h" in argv or "--help" in argv:
        print(doc or getattr(sys.modules.get("__main__"), "__doc__", None) or "no description")
        print(f"\nflags: {' '.join(sorted(switches)) or '-'}; options with a value: {' '.join(sorted(options)) or '-'}")
        raise SystemExit(0)
    known = f"known: {' '.join(sorted([*switches, *options]))}" if (switches or options) else "it takes none"
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in options:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise SystemExit(f"{arg} needs a value ({known}; --help for more)")
            i += 2
        elif arg in switches:
            i += 1
        else:
            raise SystemExit(f"unknown argument {arg!r} ({known}; --help for more)")
    return argv


def standalone(run, options=()) -> None:
    """``python -m benchmarks.bench_x [--quick]``: run one benchmark module and print its table.

    ``options``: flags with a value that the module's own ``__main__`` reads (accepted here).
    """
    check_flags(sys.argv[1:], ("--quick",), options)
    quick = "--quick" in sys.argv[1:]
    rows = check_rows(run(quick=quick), getattr(run, "__module__", "benchmark"))
    print(format_table(rows))
    for r in rows:
        if r["notes"]:
            print(f"- {r['figure']}: {r['notes']}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...``; then ``t.seconds`` is the wall time and ``t.cpu`` the CPU
    seconds of child processes waited for inside the block (user + system; robust to other load).
    """
    class _T:
        seconds = float("nan")
        cpu = float("nan")
    t = _T()
    start, cpu = time.perf_counter(), _children_cpu()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start
        t.cpu = _children_cpu() - cpu


def load_average() -> str:
    """The 1/5/15-minute load average and core count, to say how contended a measurement was."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f} on {os.cpu_count()} cores"
