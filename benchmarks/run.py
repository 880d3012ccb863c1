"""Run every benchmark (``benchmarks/bench_*.py``), print the table, write ``results.json``.

Usage::

    python -m benchmarks.run [--quick] [--timeout S] [--output PATH] [NAME ...]

``NAME`` selects benchmarks whose topic contains it (``features`` runs
``bench_features.py``). Each benchmark runs in its own Python process, so one's
memory, threads and imports do not affect another's figures; a benchmark that
fails or times out is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import check_rows, format_table, load_average, meets

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _is_harness_module(path: Path) -> bool:
    """Whether a module defines the harness entry ``run(quick=...) -> list[dict]`` (read with ``ast``, not imported).

    The other ``bench_*.py`` files are research scripts run from the command line with
    their own options (``bench_holdout_null``, ``bench_validation_calibration``, ...):
    their tables are in BENCHMARKS.md, and the harness would only report them as errors.
    """
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            first = [a.arg for a in node.args.args][:1]
            return first == ["quick"] and node.returns is not None and ast.unparse(node.returns) == "list[dict]"
    return False


def discover(names=()) -> list[str]:
    """Topics of the harness modules ``benchmarks/bench_<topic>.py`` (:func:`_is_harness_module`), sorted,
    filtered by substrings ``names``."""
    topics = sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py") if _is_harness_module(p))
    if names:
        unknown = [n for n in names if not any(n in t for t in topics)]
        if unknown:
            raise SystemExit(f"no benchmark matches {unknown}; available: {topics}")
        topics = [t for t in topics if any(n in t for n in names)]
    return topics


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """Host, CPU, cores (and the ones this process may use), memory, OS, Python."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"host": socket.gethostname(), "cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "memory_gib": _memory_gib(), "platform": platform.platform(), "python": sys.version.split()[0]}


def versions() -> dict:
    """Package versions (radaug's provenance list) and the git commit of the code measured."""
    from radaug.provenance import package_versions

    out = package_versions()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                    capture_output=True, text=True).stdout.strip())
        out["git_commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["git_commit"] = "unknown"
    return out


def run_one(topic: str, quick: bool, timeout: float) -> dict:
    """Run ``bench_<topic>`` in a child process; its rows, seconds, load and error (if any)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        code = ("import json, sys; from benchmarks import check_rows; "
                f"from benchmarks.bench_{topic} import run; "
                f"rows = check_rows(run(quick={quick!r}), 'bench_{topic}'); "
                "open(sys.argv[1], 'w').write(json.dumps(rows))")
        load_before = load_average()
        start = time.perf_counter()
        # its own session, so a timeout ends the benchmark's whole process tree (e.g. Snakemake jobs)
        proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
            error = None if proc.returncode == 0 else (stderr or stdout)[-2000:]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            error = f"timed out after {timeout:.0f} s"
        seconds = time.perf_counter() - start
        rows = check_rows(json.loads(out.read_text()), f"bench_{topic}") if error is None else []
    return {"topic": topic, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick,
            "seconds": round(seconds, 2), "load_before": load_before,
            "load_after": load_average(), "error": error, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="run only benchmarks whose topic contains one of these")
    parser.add_argument("--quick", action="store_true", help="small sizes (each benchmark about a minute)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per benchmark (default 1800 with --quick, 14400 without)")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    parser.add_argument("--update", action="store_true",
                        help="keep the other benchmarks' entries of an existing output file (same machine only)")
    args = parser.parse_args(argv)
    timeout = args.timeout or (1800 if args.quick else 14400)
    topics = discover(args.names)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results = []
    for topic in topics:
        print(f"[bench] {topic} ...", file=sys.stderr, flush=True)
        res = run_one(topic, args.quick, timeout)
        status = "failed" if res["error"] else f"{len(res['rows'])} rows"
        print(f"[bench] {topic}: {status} in {res['seconds']:.1f} s ({res['load_after']})", file=sys.stderr,
              flush=True)
        results.append(res)
    rows = [r for res in results for r in res["rows"]]
    print(format_table(rows))
    for res in results:
        if res["error"]:
            print(f"\nbench_{res['topic']} FAILED:\n{res['error']}")
    from radaug.io import read_json, write_json

    if args.update and args.output.is_file():
        previous = read_json(args.output)
        if previous.get("machine", {}).get("host") != machine()["host"]:
            raise SystemExit(f"--update: {args.output} was measured on another machine; figures would not compare")
        ran = {res["topic"] for res in results}
        results = sorted([res for res in previous["benchmarks"] if res["topic"] not in ran] + results,
                         key=lambda res: res["topic"])
    document = {"format": "radaug-benchmarks/1", "date": started, "quick": args.quick, "machine": machine(),
                "versions": versions(), "benchmarks": results}

    write_json(args.output, document)
    print(f"\nwrote {args.output}", file=sys.stderr)
    missed = [r["figure"] for r in rows if meets(r) is False]
    if missed:
        print(f"targets missed: {missed}", file=sys.stderr)
    return 1 if any(res["error"] for res in results) else 0


if __name__ == "__main__":
    sys.exit(main())
