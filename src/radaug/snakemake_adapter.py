"""The Snakemake adapter: how a workflow script runs as a job, and the record each job leaves.

The only radaug module that knows Snakemake's ``snakemake`` object; the rest of the
library never sees it. Every script in ``workflow/scripts/`` ends with
``run_job(snakemake, main)``, and ``main(smk)`` reads its named inputs, makes one
library call and writes its outputs (atomically, :mod:`radaug.io`).

Rule conventions (``workflow/rules/*.smk``), which :func:`run_job` and
:func:`job_record` rely on:

* **One rule, one script.** A rule runs ``workflow/scripts/<script>.py``; several
  rules may share no script (each script serves exactly one rule kind).
* **Named inputs and outputs.** Scripts read ``smk.input.<name>`` and write
  ``smk.output.<name>``; what a path *means* (model, fold, arm) comes from
  ``smk.wildcards`` or ``smk.params``, never from parsing the path.
* **Wildcards.** ``batch`` (a preprocessing batch), ``fold`` (the fold key
  ``r<repeat>f<fold>``, :func:`radaug.splits.fold_key`), ``model`` (a generator of
  ``generative.models``), ``arm`` (an arm of ``evaluation.arms``).
* **``output.prov``** (required): the job record, ``<study>/provenance/<rule>/...json``,
  written by :func:`run_job` after ``main`` succeeds; ``radaug.provenance.build_manifest``
  joins the records into ``manifest.json``.
* **``log``**: one file, ``<study>/logs/<rule>/...log``; the job's messages and,
  when it fails, its error go there.
* **``params.code``** (required): ``code("<script>")`` in ``common.smk``, the sha256
  of the script and every radaug module it imports
  (:func:`radaug.provenance.code_version`), so a library change reruns exactly
  the jobs it can affect. It is the record's ``code_version``.
* **``params``** carry the config slice the job reads (scripts never read the
  config file) and ``seed`` (``study.seed``) when the job draws random numbers;
  all params are recorded, ``seed`` also as the record's ``seed``.
* **Failures.** A :class:`~radaug.errors.RadaugError` ends the job with its message
  (bad input, named by config key or case, with the fix); any other exception with
  its traceback. Snakemake then removes the job's outputs.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
import time
from pathlib import Path

from .errors import RadaugError
from .io import sha256_file, write_json
from .provenance import SNAKEMAKE_MARKER, package_versions

log = logging.getLogger("radaug")
"""The logger of every job (its rule's log file and stderr, set up by :func:`run_job`)."""


def _file_entries(paths, *, skip=()) -> list[dict]:
    entries = []
    for p in paths:
        p = Path(p)
        if str(p) in skip:
            continue
        files = sorted(x for x in p.rglob("*") if x.is_file() and x.name != SNAKEMAKE_MARKER) if p.is_dir() else [p]
        for f in files:
            entries.append({"path": str(f), "sha256": sha256_file(f), "bytes": f.stat().st_size})
    return entries


def _plain(value):
    """Snakemake params/wildcards as plain JSON-able values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of the children it has waited for
    (:func:`radaug.parallel.map_draws`' workers)."""
    user, system, children_user, children_system, _ = os.times()
    return user + system + children_user + children_system


def job_record(smk, started: float, finished: float, cpu_seconds: float | None = None) -> dict:
    """The job record of ``output.prov``: rule, wildcards, inputs and outputs with sha256,
    params, seed, code version, package versions, host and times."""
    prov = str(smk.output.prov)
    params = {k: _plain(v) for k, v in smk.params.items()}
    return {
        "rule": smk.rule,
        "wildcards": {k: str(v) for k, v in smk.wildcards.items()},
        "inputs": _file_entries(smk.input),
        "outputs": _file_entries(smk.output, skip={prov}),
        "params": params,
        "seed": params.get("seed"),
        "code_version": params.get("code"),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "threads": smk.threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(finished)),
        "seconds": round(finished - started, 3),
        # all threads of the job's process, and the worker processes it forked and waited for
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 3),
    }


def run_job(smk, main) -> None:
    """Run ``main(smk)`` as a Snakemake script job, then write its provenance record.

    Logging goes to the rule's log file and stderr. A :class:`RadaugError` ends the
    job with its message (no traceback); any other exception with its traceback,
    written to the log file too, so the log Snakemake points to says what broke.
    Snakemake then removes the job's outputs, so nothing half-written is left behind.
    """
    handlers = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        Path(smk.log[0]).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(smk.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=handlers, force=True)
    started, cpu_started = time.time(), _cpu_seconds()
    try:
        main(smk)
    except RadaugError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        sys.exit(1)
    except Exception:
        log.exception("rule %s failed", smk.rule)
        sys.exit(1)
    finished = time.time()
    write_json(smk.output.prov, job_record(smk, started, finished, _cpu_seconds() - cpu_started))
    log.info("rule %s done in %.1f s", smk.rule, finished - started)
