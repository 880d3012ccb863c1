"""Null distributions of the validation gates, p-values from them, and the power of each gate.

"Is this candidate set different from real data?" is asked of every gate of a
cell (fold x class) as a test against the null hypothesis *the candidate is a
real sample of the same population*. Under that null the candidate's rows are
exchangeable with real rows the generator never saw, so each gate is a
**permutation test** (:func:`radaug.validate.summary._permutation_draws`): the
tested statistic (the candidate, drawn to at most the training size, against all
real training rows of the fold and class) is compared with the same statistic on
re-partitions of the pooled training and candidate rows, whole groups at a time.
The draws are conditional on the cell's own rows, so these p-values are exact by
construction. The three correlation gates' re-partitions are of the training
and candidate rows each standardised on its own (Pearson: z-scores; Spearman
and strong pairs: within-set ranks): their correlations do not change, but a
candidate of another location or scale no longer makes every permuted side a
two-population mixture with spurious correlations. Sets standardised on their
own are not exactly exchangeable, so these nulls are approximate: the Pearson
distance's p-value tests the feature pairs' correlation differences, each in
its standard error (:func:`radaug.validate.metrics.correlation_contrast`), which keeps heavy-tailed
pairs from deciding it (unweighted, fresh real Br35H rows failed in up to 0.2 of
cells). Their draws keep the tested value's scale (the Pearson distance's pair
weights, the Spearman distance's training-rows correlation norm, in every draw), and strong pairs
kept tests a continuous share of the strong pairs' correlation kept
(:func:`radaug.validate.metrics.strong_pairs_strength`); both were needed for
power against the noise control (BENCHMARKS.md, validation calibration). The
holdout gates (memorization ratio, share closer than holdout, NNDR ratio) have
an **exchange null** (:func:`radaug.validate.summary._exchange_draws`): the
training, candidate and holdout rows re-partitioned into three sets of the
tested sizes, whole groups at a time and a copy always with its parent, and
scored exactly as the tested value is. A null of seeded real-vs-real splits of
the training rows stays for the power simulation; see
:func:`radaug.validate.summary._permutation_draws`.

* **Per-gate p-value** (``p_value``): the empirical upper tail of the null with
  the +1 correction of Phipson & Smyth (2010), ``(1 + #{null at least as bad})
  / (1 + N)``; "bad" is the metric's direction (higher for a metric to
  minimise, lower for one to maximise). ``detection_auc`` has few null draws
  (a cross-validated forest each), and ``1 / (1 + 10)`` cannot resolve the
  levels the adjustment needs: its p-value is the **Student-t prediction tail
  on the logit scale** (:func:`predictive_p_value`), the exact p-value of a new
  draw when the draws' logits are independent and normal with unknown mean and
  SD. The normal tail at the draws' mean and SD, used before, false-failed
  exchangeable values at 1.4-2.6 times the level (40 resampled Br35H cells, at
  0.05, 0.01 and 0.005; the linear-scale t tail was calibrated but lost power,
  since an AUC cannot go beyond 1: BENCHMARKS.md, "The detection AUC's p-value").
* **Multiplicity** (``p_adjusted``): single-step min-P adjustment of Westfall &
  Young (1993) across all gates of the cell, from the same null draws: a gate's
  adjusted p-value is the share of null draws whose *smallest* per-gate p-value
  is at most the gate's own. It controls the chance that a real candidate fails
  *any* gate of the cell (the whole-cell false-fail rate) at the level, and,
  unlike Bonferroni or Holm, gains from the strong correlation of the gates
  (Fréchet, Wasserstein and KS move together). Ties among p-values at one
  empirical value are broken by the distance beyond the draws
  (:func:`ranking_p`): without it a candidate beyond every draw of a gate tied
  with the draws at the floor of the other gates and could not fail. A gate
  computed in fewer draws than the others (the detection AUC's few forests)
  takes an independent uniform stand-in p-value in the draws it lacks
  (:meth:`NullDraws.min_p`), so every draw's minimum is over all the gates
  the candidate's is.
* **Power** (``min_detectable``): the smallest defect on a coarse grid that the
  gate fails in at least :data:`POWER_TARGET` of simulated cells of this size,
  each defect built from a real-vs-real split's half B (see :data:`DEFECTS`),
  judged against the critical value of that split null (the value at which its
  adjusted p-value reaches the level): the power of a test on half the data, a
  conservative statement of the permutation test's power.

The statistic a p-value tests (``tested_value``) is one draw on all the cell's
rows, as every permutation draw is; the reported ``value`` stays the median over
several halves that the factor rules compare with the real-vs-real baseline. The false-fail rate is measured in
``benchmarks/bench_validation_calibration.py`` (BENCHMARKS.md).

References: B. Phipson, G. K. Smyth, Stat Appl Genet Mol Biol 9:39 (2010),
doi:10.2202/1544-6115.1585; P. H. Westfall, S. S. Young, *Resampling-based
multiple testing* (Wiley 1993).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from radaug.seeds import stream_rng

UNDETECTABLE = "none up to "
"""How ``min_detectable`` begins where a gate misses even the largest simulated defect of its grid."""

POWER_TARGET = 0.8
"""Share of simulated defective cells a gate must fail for the defect to count as detected."""

DEFECTS: dict[str, tuple[str, tuple[float, ...]]] = {
    "missing_mode": ("a missing mode of >= {:.0%} of cases", (0.1, 0.2, 0.3, 0.5)),
    "mean_shift": ("a mean shift of >= {:g} SD in every feature", (0.1, 0.25, 0.5, 1.0)),
    "variance_shrink": ("a spread shrunk by >= {:.0%}", (0.1, 0.25, 0.5, 0.75)),
    "decorrelation": ("correlations broken in >= {:.0%} of rows", (0.1, 0.25, 0.5, 1.0)),
    "copies": ("copies of training rows in >= {:.0%} of rows", (0.1, 0.25, 0.5, 1.0)),
    "mislabelled": ("rows of another class in >= {:.0%} of rows", (0.1, 0.25, 0.5, 1.0)),
    "implausible": ("implausible patches in >= {:.0%} of rows", (0.05, 0.1, 0.25, 0.5)),
}
"""Defect kind -> (phrase with the size, coarse grid of sizes); each built by :func:`defective`.

Which defect a gate's power is stated for (the defect it is designed to see) is its
registry entry's ``defect`` (:data:`radaug.validate.registry.METRICS`).

* ``missing_mode``: the share ``s`` of half B nearest (z-scored by A) to one of
  its rows, drawn at random, is left out; the rest is drawn to the matched size.
* ``mean_shift``: every feature shifted by ``s`` standard deviations of A.
* ``variance_shrink``: every row pulled towards A's mean by the factor ``1 - s``.
* ``decorrelation``: in a share ``s`` of rows, every feature's value is taken
  from a different, random row (marginals kept, correlations broken).
* ``copies``: a share ``s`` of rows replaced by rows of A (the reference the
  memorization gates compare with).
* ``mislabelled``: a share ``s`` of rows replaced by real rows of the other
  classes (``other``) that the label classifier was not fit on, labelled as
  this class.
* ``implausible`` (image patches): a share ``s`` of patches made physically
  implausible (an empty mask, an intensity outside the modality's range); built
  on the patches by :func:`radaug.validate.summary._image_defect_value`, as the
  image memorization ratio's ``copies`` are.
"""

@dataclass
class NullDraws:
    """Null draws of one cell: ``values[gate]`` is an array over draws (NaN where not computed)."""

    values: dict[str, np.ndarray]
    directions: dict[str, str]
    predictive: frozenset = frozenset()
    """Gates with few draws whose p-value is :func:`predictive_p_value` (the detection AUC), not the empirical tail."""
    scales: Mapping[str, str] = field(default_factory=dict)
    """Per gate, the scale its tie-break measures distance on (:func:`tie_scale`); linear where absent."""
    seed: int = 0
    """Study seed of the stand-in p-values of draws a gate was not computed in (:meth:`min_p`)."""

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """These draws as arrays named ``prefix.<gate>`` and ``prefix.meta`` (JSON), for
        :func:`radaug.io.save_arrays`."""
        meta = {"directions": self.directions, "predictive": sorted(self.predictive), "scales": dict(self.scales),
                "gates": list(self.values), "seed": int(self.seed)}
        arrays = {f"{prefix}.{gate}": np.asarray(values, dtype=float) for gate, values in self.values.items()}
        arrays[f"{prefix}.meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> "NullDraws":
        """The draws :meth:`to_arrays` wrote under ``prefix``, bit for bit."""
        meta = json.loads(arrays[f"{prefix}.meta"].tobytes().decode())
        return cls({gate: np.array(arrays[f"{prefix}.{gate}"], dtype=float) for gate in meta["gates"]},
                   meta["directions"], frozenset(meta.get("predictive", meta.get("normal_tail", ()))), meta["scales"],
                   meta.get("seed", 0))

    def _signed(self, gate: str, values: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """``values`` on the gate's tie-break scale (chosen on the whole ``pool``), larger worse."""
        sign = 1.0 if self.directions[gate] == "minimize" else -1.0
        return _on_scale(np.asarray(values, dtype=float), self.scales.get(gate, "linear"), pool, sign)

    def p_value(self, gate: str, value: float) -> float:
        """Per-gate p-value of ``value`` against this gate's null draws; NaN without draws."""
        return p_value(value, self.values[gate], self.directions[gate], predictive=gate in self.predictive)

    def null_p_values(self, observed: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """The ranking p-value (:func:`ranking_p`) of every null draw, each draw judged as the observed value is.

        Under the null the observed value and the draws are exchangeable, so a
        draw's p-value is its count among the *other* draws and the observed
        value, ``(1 + #{others at least as bad} + [observed at least as bad]) /
        (1 + N)``, with the tie-break of :func:`ranking_p` on the same pool.
        Without ``observed`` (or where it is NaN) the draw itself stands in for
        it, which overstates every draw's p-value by ``1 / (1 + N)`` when the
        observed value is extreme, and so understates the min-P adjusted
        p-value of an extreme candidate. A :attr:`predictive` gate's draw is
        judged against the other draws and the observed value (the other draws
        alone without one), leave-one-out as the observed value is judged
        against the draws.
        """
        observed = observed or {}
        table = {}
        for g, null in self.values.items():
            finite = null[np.isfinite(null)]
            value = observed.get(g, math.nan)
            if g in self.predictive:
                table[g] = np.array([
                    predictive_p_value(v, np.append(np.delete(null, i), value), self.directions[g])
                    if np.isfinite(v) else math.nan for i, v in enumerate(null)])
                continue
            if not np.isfinite(value):
                table[g] = np.array([self.ranking_p(g, v) if np.isfinite(v) else math.nan for v in null])
                continue
            sign = 1.0 if self.directions[g] == "minimize" else -1.0
            raw = np.append(finite, value)
            pool = sign * raw
            counts = np.array([np.sum(pool >= sign * v - 1e-12) if np.isfinite(v) else 0 for v in null])
            ties = np.full(len(null), math.nan)
            # each draw against the other draws and the observed
            ties[np.isfinite(null)] = _tie_break(self._signed(g, raw, raw))[:-1]
            table[g] = np.where(np.isfinite(null), (counts + TIE_BREAK * ties) / len(pool), math.nan)
        return table

    def ranking_p(self, gate: str, value: float) -> float:
        """``value``'s p-value for the min-P adjustment: :meth:`p_value` with ties broken (:func:`ranking_p`).

        The value is pooled with this gate's draws, as the observed value is in
        :meth:`null_p_values`: the candidate's own tested value gets the ranking
        its draws are compared with.
        """
        null = self.values[gate]
        if gate in self.predictive:
            return self.p_value(gate, value)
        finite = null[np.isfinite(null)]
        if not np.isfinite(value):
            return math.nan
        pool = np.append(finite, value)
        signed = self._signed(gate, pool, pool)
        return ranking_p(self.p_value(gate, value), signed[-1], signed[:-1], len(finite))

    def min_p(self, observed: Mapping[str, float] | None = None) -> np.ndarray:
        """Per null draw, the smallest ranking p-value over every gate of the cell.

        ``observed``: the candidate's tested values, pooled with the draws when a
        draw's p-value is computed (see :meth:`null_p_values`).

        A gate not computed in a draw (the detection AUC beyond its few forests,
        a statistic undefined on one draw's sides) takes a stand-in p-value there:
        an imputed uniform p-value, as if the gate were independent of the others
        in that draw. Leaving the gate out instead made those draws' minimum one
        over fewer gates than the candidate's, so the adjusted p-values were too
        small (the detection AUC, computed in 10 of 200 draws, could fail a real
        candidate at about its critical p-value on top of the level). The stand-in
        is exact for a gate whose own null p-value is uniform and independent of
        the others, conservative where the gates move together (as Fréchet,
        Wasserstein and KS do), and conservative for a statistic undefined on a
        draw's sides (which left it out of the candidate's minimum neither).
        The stand-ins are seeded by the study seed, the gate and a digest of the
        cell's draws (stream ``null_missing_p``), so they differ from cell to cell:
        one set for every cell would put the same few stand-ins below the floor
        ``1 / (1 + N)`` of the other gates in every cell of a study.
        """
        table = self.null_p_values(observed)
        if not table:
            return np.zeros(0)
        n = max(len(v) for v in table.values())
        stacked = np.full((len(table), n), np.nan)
        for row, values in enumerate(table.values()):
            stacked[row, :len(values)] = values
        stacked = stacked[:, np.isfinite(stacked).any(axis=0)]
        if not stacked.size:
            return np.zeros(0)
        cell = None
        for row, gate in enumerate(table):
            missing = ~np.isfinite(stacked[row])
            if missing.any() and not missing.all():
                cell = cell or self.digest()
                stand_in = stream_rng("null_missing_p", self.seed, gate=gate, cell=cell).random(stacked.shape[1])
                stacked[row, missing] = stand_in[missing]
        return np.nanmin(stacked, axis=0)

    def digest(self) -> str:
        """A short hex digest of every gate's draws (names and values), which tells one cell's null from another's."""
        sha = hashlib.sha1()
        for gate in sorted(self.values):
            sha.update(gate.encode() + b"\0" + np.ascontiguousarray(self.values[gate], dtype=float).tobytes())
        return sha.hexdigest()[:16]

    def adjusted(self, observed: Mapping[str, float]) -> dict[str, float]:
        """Min-P adjusted p-value of every gate's observed value (:func:`min_p_adjusted` on ranking p-values)."""
        ranked = {g: self.ranking_p(g, v) if np.isfinite(v) else math.nan for g, v in observed.items()}
        return min_p_adjusted(ranked, self.min_p(observed))


TIE_BREAK = 0.5
"""Weight of the tie-break in a ranking p-value, in units of ``1 / (1 + N)``.

Below 1, so it orders values only within one empirical p-value (see :func:`ranking_p`)."""


def tie_scale(value_range: tuple[float, float]) -> str:
    """The scale a gate's tie-break measures distance on, from its metric's range (registry ``range``).

    ``"log"`` for a ratio or distance on ``[0, inf)``, ``"logit"`` for a share on
    ``[0, 1]``, ``"linear"`` otherwise: such values are skewed on their own
    scale, and an SD there understates how far an extreme value lies. A copy
    control's memorization ratio of 0 stood only 1.5 SD below draws whose mean
    was 1.1 and SD 0.75 (a long upper tail), and so ranked behind the lone
    extreme draws of other gates: it warned instead of failing at 100 draws; on
    the log scale it lies infinitely far out.
    """
    low, high = value_range
    if low == 0 and high == math.inf:
        return "log"
    if (low, high) == (0, 1):
        return "logit"
    return "linear"


def _on_scale(values: np.ndarray, scale: str, pool: np.ndarray, sign: float) -> np.ndarray:
    """``sign`` times ``values`` on ``scale`` (larger worse), or on the linear scale where ``pool`` does not allow it.

    The scale is chosen on the whole pool (the observed value and every draw),
    so one function scores them all and the test stays exact. It falls back to
    linear where a pooled value lies outside the scale's domain, and where one
    maps to the *good* side's infinity (a share of 0 for a gate to minimise, a
    precision of 1): the tie-break standardises the finite values among
    themselves, so draws at the good end would drop out of the spread and a
    value beyond draws that are all 0 would no longer be infinitely far out.
    On the bad side, 0 (or 1 for a share) maps to an infinity that
    :func:`_tie_break` ranks as infinitely far out.
    """
    pool = np.asarray(pool, dtype=float)
    pool = pool[np.isfinite(pool)]

    def transform(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(x) if scale == "log" else np.log(x) - np.log1p(-x)

    in_domain = ((pool >= 0).all() if scale == "log"
                 else ((pool >= 0) & (pool <= 1)).all() if scale == "logit" else False)
    if in_domain and not np.any(sign * transform(pool) == -math.inf):
        return sign * transform(values)
    return sign * values


def _beyond(z: np.ndarray) -> np.ndarray:
    """A decreasing map of a standardised distance ``z`` onto (0, 1): the Cauchy upper tail, 1/2 - arctan(z)/pi.

    Not the normal tail: that one underflows (about 1e-22 at z = 10) below the
    resolution of a p-value near 1/201, where copies and collapsed generators sit;
    the Cauchy tail falls like 1/(pi z) and keeps far values apart.
    """
    return 0.5 - np.arctan(z) / np.pi


def _tie_break(pool: np.ndarray) -> np.ndarray:
    """Every pooled value's tie-break term: :func:`_beyond` of its distance from the *other* values, in their SD.

    Leave-one-out: a value pooled into its own mean and SD has ``|z|`` at most
    about the square root of the pool's size, so a candidate far beyond every draw
    tied with the lone extreme draws of other gates. A value whose others are all
    equal is infinitely far out (``z`` infinite, term 0). ``pool``: signed values
    (larger is worse) on the gate's tie-break scale (:func:`tie_scale`); ``+inf``
    (a memorization ratio of 0 on the log scale) is infinitely far out (term 0),
    ``-inf`` infinitely far on the good side (term 1), and the finite values are
    standardised among the finite others.
    """
    pool = np.asarray(pool, dtype=float)
    m = len(pool)
    if m < 3:
        return np.full(m, 0.5)
    terms = np.where(pool == math.inf, 0.0, np.where(pool == -math.inf, 1.0, 0.5))
    finite = np.isfinite(pool)
    values, k = pool[finite], int(finite.sum())
    if k < 3:
        return terms
    deviation = values - values.mean()
    spread = np.sum(deviation**2) - deviation**2 * k / (k - 1)  # sum of squares of the others about their mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = deviation * k / (k - 1) / np.sqrt(np.clip(spread, 0.0, None) / (k - 2))
    z[(deviation == 0)] = 0.0  # 0/0 where a value equals the rest, all constant
    terms[finite] = _beyond(z)
    return terms


def ranking_p(p: float, signed_value: float, others: np.ndarray, n_draws: int) -> float:
    """The empirical p-value ``p`` with ties broken by how far the value lies beyond ``others``.

    The single-step min-P adjustment (:func:`min_p_adjusted`) ranks the
    candidate's smallest per-gate p-value among the null draws' smallest. With
    ``N`` draws every empirical p-value is a multiple of ``1 / (1 + N)``, and in
    about one draw in ``1 + N`` *each* gate's draw is the most extreme of its
    gate, at the floor ``1 / (1 + N)``: with 15 gates and 200 draws some ten
    draws sit at the floor, so a candidate beyond every draw of a gate got an
    adjusted p-value of about ``11 / 201 = 0.055`` and could not fail at 0.05
    (a copy control of the default study was a warn). Adding
    ``TIE_BREAK / (1 + N)`` times :func:`_beyond` of the value's distance from
    the other pooled values (in their SD, leave-one-out: :func:`_tie_break`)
    orders values of one empirical p-value by their distance beyond the rest,
    and never reorders different empirical p-values. The adjustment stays exact:
    every pooled value (the observed and each draw) is scored by the same
    function of itself and the others (:meth:`NullDraws.null_p_values`), so
    under the null the candidate's rank is uniform (Westfall & Young 1993; any
    statistic computed alike from the exchangeable sets gives an exact
    permutation test). ``others``: the signed values the value is pooled with
    (larger is worse). NaN ``p`` gives NaN.
    """
    if math.isnan(p) or math.isnan(signed_value):
        return math.nan
    return p + TIE_BREAK * float(_tie_break(np.append(others, signed_value))[-1]) / (1 + n_draws)


def p_value(value: float, null: np.ndarray, direction: str, *, predictive: bool = False) -> float:
    """Upper-tail p-value of ``value`` under ``null`` in the "worse" direction of the metric.

    Parameters
    ----------
    value
        The candidate's statistic.
    null
        Null draws (NaNs ignored).
    direction
        ``"minimize"`` (higher is worse) or ``"maximize"`` (lower is worse).
    predictive
        :func:`predictive_p_value` (a statistic in [0, 1] with few draws) instead of the empirical tail.

    Returns
    -------
    float
        ``(1 + #{draws at least as bad}) / (1 + N)``, or the predictive tail; NaN if
        ``value`` is NaN or there are no finite draws.
    """
    if predictive:
        return predictive_p_value(value, null, direction)
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if math.isnan(value) or len(null) == 0:
        return math.nan
    sign = 1.0 if direction == "minimize" else -1.0
    worse = int(np.sum(sign * null >= sign * value - 1e-12))
    return (1 + worse) / (1 + len(null))


LOGIT_FLOOR = 1e-3
"""A statistic in [0, 1] is clipped to ``[LOGIT_FLOOR, 1 - LOGIT_FLOOR]`` before its logit
(:func:`predictive_p_value`): an AUC of exactly 1 (every candidate row recognised) has
logit 6.9, about ten null SDs out in a cell whose draws spread like Br35H's (SD about 0.7)."""


def predictive_p_value(value: float, null: np.ndarray, direction: str) -> float:
    """Upper-tail p-value of ``value`` against a few draws of a statistic in [0, 1]: the t prediction tail of its logit.

    With ``m`` draws whose logits have mean ``M`` and SD ``S``, the logit ``L``
    of a new exchangeable value satisfies ``(L - M) / (S sqrt(1 + 1/m)) ~ t(m -
    1)`` when the logits are independent and normal: the prediction interval's exact tail,
    which the normal tail at ``M`` and ``S`` understates (at ``m`` = 10 and a
    nominal 0.05 it gives about 0.076). The logit scale fits a bounded
    statistic such as an AUC (it is the usual scale for an AUC's confidence
    interval): on the linear scale an AUC of 1 lies only about three null SDs
    out where the draws spread widely (a few large near-duplicate groups), so a
    t tail there is calibrated but weak. Measured on 40 resampled Br35H cells
    (``benchmarks/bench_detection_tail.py``: each cell's tested AUC and 30
    permutation draws, each of the 31 values judged against 10 of the others;
    values of one cell are dependent, so the effective sample is nearer 40 than
    1,240): P(p <= 0.05, 0.01, 0.005) = 0.048, 0.009, 0.006 (the normal tail on
    the linear scale: 0.070, 0.026, 0.011; BENCHMARKS.md). Values are clipped
    to :data:`LOGIT_FLOOR` from the bounds. ``direction``: ``"minimize"``
    (higher is worse) or ``"maximize"``. NaN if ``value`` is NaN or fewer than
    two draws are finite; where all draws are equal, 1 for a value no worse than
    them and 0 for one beyond (infinitely far out, as in :func:`_tie_break`).
    """
    from scipy.special import stdtr  # Student's t CDF: stats.t.sf(x, k) = stdtr(k, -x), at a 50th of its cost

    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if math.isnan(value) or len(null) < 2:
        return math.nan
    sign = 1.0 if direction == "minimize" else -1.0

    def logit(x):
        x = np.clip(x, LOGIT_FLOOR, 1 - LOGIT_FLOOR)
        return np.log(x) - np.log1p(-x)

    draws, m = logit(null), len(null)
    sd = float(np.std(draws, ddof=1))
    distance = sign * (float(logit(value)) - draws.mean())
    if sd == 0:
        return 1.0 if distance <= 0 else 0.0
    return float(stdtr(m - 1, -distance / (sd * math.sqrt(1 + 1 / m))))


def min_p_adjusted(p_values: Mapping[str, float], min_p: np.ndarray) -> dict[str, float]:
    """Single-step Westfall-Young min-P adjusted p-values: ``(1 + #{min_p <= p}) / (1 + N)``."""
    n = len(min_p)
    return {g: math.nan if math.isnan(p) or n == 0 else (1 + int(np.sum(min_p <= p + 1e-12))) / (1 + n)
            for g, p in p_values.items()}


def critical_p(min_p: np.ndarray, level: float) -> float:
    """Largest per-gate p-value whose adjusted p-value is at most ``level`` (0 if none)."""
    n = len(min_p)
    if n == 0:
        return 0.0
    allowed = int(math.floor(level * (1 + n))) - 1  # draws with min_p <= p allowed
    if allowed < 0:
        return 0.0
    ordered = np.sort(min_p)
    # p must stay below the (allowed + 1)-th smallest min_p
    return float(ordered[allowed] - 1e-12) if allowed < n else 1.0


def defective(kind: str, size: float, reference: np.ndarray, pool: np.ndarray, n: int,
              rng: np.random.Generator, *, other: np.ndarray | None = None,
              sources: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``n`` rows drawn from ``pool`` (real rows unseen by ``reference``) with one defect of ``size``.

    See :data:`DEFECTS`. ``reference`` gives the scale (its mean and SD) and, for
    ``copies``, the rows copied; ``other``: rows of the other classes, which
    ``mislabelled`` puts in. With ``sources`` also each row's row of ``pool``
    (-1 for a row copied from ``reference`` or ``other``), so that the rows keep
    their cases' groups (the detection AUC's grouped folds); the draws are the same.
    """
    mean = np.nanmean(reference, axis=0)
    sd = np.nanstd(reference, axis=0, ddof=1)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    if kind == "missing_mode":
        z = (pool - mean) / sd
        anchor = z[rng.integers(len(z))]
        distance = np.nansum((z - anchor) ** 2, axis=1)
        keep = np.argsort(distance)[int(round(size * len(pool))):]
        take = rng.choice(keep, size=n, replace=len(keep) < n)
        return (pool[take], take) if sources else pool[take]
    source = rng.choice(len(pool), size=n, replace=len(pool) < n)
    rows = pool[source].copy()
    if kind == "mean_shift":
        rows = rows + size * sd
    elif kind == "variance_shrink":
        rows = mean + (rows - mean) * (1 - size)
    else:
        changed = rng.random(n) < size
        if kind == "decorrelation":
            for column in range(rows.shape[1]):
                rows[changed, column] = pool[rng.integers(len(pool), size=int(changed.sum())), column]
        elif kind in ("copies", "mislabelled"):
            if kind == "mislabelled" and (other is None or len(other) == 0):
                raise ValueError("defect 'mislabelled' needs rows of the other classes (other=)")
            donors = reference if kind == "copies" else other
            rows[changed] = donors[rng.integers(len(donors), size=int(changed.sum()))]
            source = np.where(changed, -1, source)
        else:
            raise ValueError(f"unknown defect {kind!r}; use one of {sorted(DEFECTS)}")
    return (rows, source) if sources else rows


def minimum_detectable(kind: str, fails: Callable[[float], float]) -> str:
    """Phrase of the smallest grid size of ``kind`` whose fail rate ``fails(size)`` reaches :data:`POWER_TARGET`."""
    phrase, grid = DEFECTS[kind]
    for size in grid:
        if fails(size) >= POWER_TARGET:
            return phrase.format(size)
    return UNDETECTABLE + phrase.format(grid[-1]).replace(">= ", "")


def underpowered(min_detectable) -> np.ndarray:
    """Which ``min_detectable`` entries (a column of ``validation/summary.csv``) say the gate had no power."""
    return np.array([str(v).startswith(UNDETECTABLE) for v in min_detectable], dtype=bool)
