"""Validation speed and PRDC memory: radaug's bounded-memory PRDC vs the ``prdc`` package.

Figures (rows of the benchmark contract):

* ``full_validation_seconds``: :func:`radaug.validate.validate_arm` of one fold ×
  arm × class at 1,000 real training / 1,000 synthetic / 250 holdout rows × 100
  features, every feature-space metric (detection AUC included), in seconds
  (target: seconds, ``<= 60``).
* ``prdc_seconds_<n>`` and ``prdc_peak_mib_<n>``: PRDC of ``n`` real × ``n``
  synthetic rows × 100 features (k = 5) in a fresh process; the peak resident
  memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process, so the
  interpreter and imports are included and nothing is hidden) against the issue's
  budget of 2 GiB at 50,000. The reference ``prdc`` package runs at the sizes
  where its full distance matrices fit (1,000 and 5,000); ``ratio`` is
  radaug / prdc measured in the same run (time: ``<= 1.5`` wanted, memory: ``< 1``).

* ``null_validation_seconds_<n>``: one cell's ``validate_arm`` (``n`` training
  and candidate rows) with the null distributions and power of issue 21 at
  their defaults; ``ratio``: over the same cell without them (before issue 21),
  same run.

Run alone: ``.venv/bin/python -m benchmarks.bench_validation [--quick]``.
``quick`` skips the 50,000 size (about 3 × 50k × 50k × 100 multiply-adds).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

N_FEATURES = 100
NEAREST_K = 5

_CHILD = r"""
import json, resource, sys, time, contextlib, io
import numpy as np
n, impl = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(n)
real = rng.normal(size=(n, %d)); fake = rng.normal(0.1, 1.0, size=(n, %d))
start = time.perf_counter()
if impl == "radaug":
    from radaug.validate import prdc
    values = prdc(real, fake, %d).as_dict()
else:
    import prdc
    with contextlib.redirect_stdout(io.StringIO()):
        values = {k: float(v) for k, v in prdc.compute_prdc(real, fake, %d).items()}
seconds = time.perf_counter() - start
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, "values": values}))
""" % (N_FEATURES, N_FEATURES, NEAREST_K, NEAREST_K)


def _measure(n: int, impl: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), impl], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(figure: str, value: float, unit: str, reference=None, target=None, notes: str = "") -> dict:
    ratio = value / reference if reference else None
    return {"benchmark": "validation", "figure": figure, "value": float(value), "unit": unit,
            "reference": None if reference is None else float(reference), "ratio": ratio,
            "target": target, "notes": notes}


def _full_validation_seconds() -> float:
    import numpy as np
    import pandas as pd

    from radaug.validate import validate_arm

    rng = np.random.default_rng(1)
    columns = [f"f{i}" for i in range(N_FEATURES)]
    mixing = rng.normal(size=(N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)
    draw = lambda n: pd.DataFrame(rng.normal(size=(n, N_FEATURES)) @ mixing, columns=columns)  # noqa: E731
    train, holdout, candidate = draw(1000), draw(250), draw(1000)
    start = time.perf_counter()
    validate_arm(train, holdout, candidate, feature_columns=columns, train_other=draw(1000), seed=0)
    return time.perf_counter() - start


def _null_cost(n_train: int, n_holdout: int) -> tuple[float, float]:
    """Seconds of one cell's ``validate_arm`` with the default null and power, and without (factor rules only).

    Both in the same process on the same data: ``null_splits=0, power_repeats=0``
    is the validation before issue 21 (values and baselines only).
    """
    import numpy as np
    import pandas as pd

    from radaug.validate import validate_arm
    from radaug.validate.summary import clear_caches

    rng = np.random.default_rng(2)
    columns = [f"f{i}" for i in range(N_FEATURES)]
    mixing = rng.normal(size=(N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)
    draw = lambda n: pd.DataFrame(rng.normal(size=(n, N_FEATURES)) @ mixing, columns=columns)  # noqa: E731
    train, holdout, candidate, other = draw(n_train), draw(n_holdout), draw(n_train), draw(n_train)
    seconds = []
    for options in ({"null_splits": 0, "power_repeats": 0}, {"rule": "null"}):
        clear_caches()
        start = time.perf_counter()
        validate_arm(train, holdout, candidate, feature_columns=columns, train_other=other, seed=0, **options)
        seconds.append(time.perf_counter() - start)
    return seconds[1], seconds[0]


def run(quick: bool = False) -> list[dict]:
    rows = []
    for n_train, n_holdout in ((64, 16),) if quick else ((64, 16), (320, 80)):
        with_null, without = _null_cost(n_train, n_holdout)
        rows.append(_row(f"null_validation_seconds_{n_train}", with_null, "s", without, None,
                         f"validate_arm of one cell ({n_train} train / {n_train} candidate / {n_holdout} holdout, "
                         f"{N_FEATURES} features) with the default null (200 draws, 10 for detection AUC) and "
                         "power (20 repeats); reference: the same cell without null and power, same run"))
    rows += [_row("full_validation_seconds", _full_validation_seconds(), "s", target="<= 60",
                 notes="validate_arm, 1000 train / 1000 synthetic / 250 holdout / 1000 other-class rows, "
                       "100 features, all feature-space metrics")]
    for n in (1000, 5000):
        ours, ref = _measure(n, "radaug"), _measure(n, "prdc")
        same = all(abs(ours["values"][k] - ref["values"][k]) < 1e-9 for k in ref["values"])
        rows.append(_row(f"prdc_seconds_{n}", ours["seconds"], "s", ref["seconds"], "<= 1.5",
                         f"reference: prdc.compute_prdc in the same run; same values: {same}"))
        # At 1,000 rows the reference's matrices (24 MB) hide in the interpreter's footprint: no gain to show.
        rows.append(_row(f"prdc_peak_mib_{n}", ours["peak_mib"], "MiB", ref["peak_mib"],
                         "< 1" if n >= 5000 else "<= 1.05",
                         "peak RSS of a fresh process (interpreter and imports included)"))
    for n in (10000,) if quick else (10000, 50000):
        ours = _measure(n, "radaug")
        rows.append(_row(f"prdc_seconds_{n}", ours["seconds"], "s", notes="prdc package not run: "
                         f"its three full {n}x{n} float64 matrices need {3 * n * n * 8 / 2**30:.1f} GiB"))
        rows.append(_row(f"prdc_peak_mib_{n}", ours["peak_mib"], "MiB", target="<= 2048",
                         notes="peak RSS of a fresh process; issue budget 2 GiB at 50,000"))
    return rows


if __name__ == "__main__":
    from benchmarks import check_flags

    for r in run(quick="--quick" in check_flags(sys.argv[1:], ("--quick",))):
        print(json.dumps(r))
