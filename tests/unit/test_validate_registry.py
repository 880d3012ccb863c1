"""The validation metric registry (radaug.validate.registry): one entry per metric, used everywhere."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from radaug.errors import ConfigError
from radaug.validate import registry
from radaug.validate.registry import METRICS, PROTOCOLS, RULE_KEYS, family, must_fail
from radaug.validate.thresholds import DEFAULT_THRESHOLDS, merge_thresholds, verdict


def test_every_entry_resolves_and_its_protocol_is_computed_by_validate_arm():
    from radaug.validate.summary import _COMPARE

    assert set(_COMPARE) == set(PROTOCOLS)
    for spec in METRICS.values():
        assert callable(spec.bound({"alpha": 0.05, "nearest_k": 5})), spec.name
        assert callable(spec.bound({"alpha": 0.05, "nearest_k": 5}, null=True)), spec.name
        assert spec.protocol in PROTOCOLS, spec.name


def test_entries_name_known_defects_controls_and_nulls():
    from radaug.validate.controls import CONTROL_ARMS, EXPECTED_FAILURES
    from radaug.validate.null import DEFECTS

    for spec in METRICS.values():
        assert spec.defect is None or spec.defect in DEFECTS, spec.name
        assert set(spec.must_fail) <= set(CONTROL_ARMS) - {"control_positive"}, spec.name
        assert spec.null in (*registry.NULLS, None), spec.name
        # a gate judged against a null must be one the null draws can score
        assert spec.null is None or spec.protocol in (
            "features", "holdout", "detection", "labels", "image_holdout", "image_plausibility"), spec.name
        assert spec.null is not None, f"{spec.name}: every gate has a null since 2026-12-02"
    assert EXPECTED_FAILURES["control_negative_label"] == ("label_disagreement",)
    assert set(EXPECTED_FAILURES["control_negative_shuffle"]) == {"coverage", "density"}
    assert family("coverage") == ("precision", "recall", "density", "coverage")
    assert family("correlation_distance") == ("correlation_distance",)  # the Spearman twin has other keywords
    assert must_fail("control_positive") == ()


def test_default_rules_follow_each_metric_s_direction():
    assert list(DEFAULT_THRESHOLDS) == list(METRICS)
    for name, rule in DEFAULT_THRESHOLDS.items():
        assert tuple(rule) in RULE_KEYS[METRICS[name].direction], name
    merge_thresholds(None)


def test_a_rule_of_the_other_direction_is_refused_naming_the_config_key():
    with pytest.raises(ConfigError, match=r"validation\.thresholds\.ks_fdr: unknown keys \['pass_min'\]; "
                                          r"\['pass_min'\] belong to rules of metrics to maximize.*minimize"):
        merge_thresholds({"ks_fdr": {"pass_min": 0.5}})
    with pytest.raises(ConfigError, match=r"validation\.thresholds\.coverage: unknown keys \['warn_factor'\].*"
                                          r"minimize.*coverage is to maximize"):
        merge_thresholds({"coverage": {"warn_factor": 2.0}})
    with pytest.raises(ConfigError, match=r"validation\.thresholds: unknown metric 'frechet'"):
        merge_thresholds({"frechet": {"warn_factor": 3}})


def test_an_entry_whose_rule_contradicts_its_direction_is_refused(monkeypatch):
    bad = dataclasses.replace(METRICS["ks_fdr"], direction="maximize")
    monkeypatch.setitem(METRICS, "ks_fdr", bad)
    with pytest.raises(ValueError, match=r"metric 'ks_fdr': rule keys .* \(maximize\)"):
        registry._check()
    with pytest.raises(ConfigError, match=r"validation\.thresholds\.ks_fdr: keys .* make no rule for a metric to "
                                          r"maximize"):
        merge_thresholds(None)


def test_a_verdict_is_refused_for_keys_that_make_no_rule():
    assert verdict(0.5, 0.4, {"pass_min": 0.8, "fail_min": 0.5}) == "warn"
    with pytest.raises(ValueError, match=r"verdict: keys \['fail_min', 'warn_factor'\] make no verdict rule"):
        verdict(0.5, 0.4, {"warn_factor": 1.5, "fail_min": 0.5})


@pytest.mark.parametrize("module", ["radaug.validate.registry", "radaug.validate.thresholds"])
def test_the_registry_and_the_rules_need_no_scientific_stack(module):
    """Config checks at every Snakemake start read directions and default rules from here."""
    heavy = ("numpy", "sklearn", "scipy", "pandas", "torch", "matplotlib")
    code = f"import sys, {module}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [], f"import {module} loads {out}"


def test_the_report_s_words_cover_every_metric():
    """The findings put each failing gate into words by family, the report quotes some gates' power: a new
    metric needs its family there (the one list of metric names outside the registry, in words)."""
    from radaug.findings import GATE_FAMILIES
    from radaug.report import POWER_GATES

    named = [metric for _, metrics in GATE_FAMILIES.values() for metric in metrics]
    assert sorted(named) == sorted(METRICS), "add the metric to one family of radaug.findings.GATE_FAMILIES"
    assert set(POWER_GATES) <= {name for name, spec in METRICS.items() if spec.defect}


def test_the_validate_jobs_code_version_covers_every_registered_function():
    """The registry imports functions by path, which provenance.code_files cannot follow: validate.summary imports
    their modules, so changing a metric's function reruns the validate jobs."""
    from pathlib import Path

    from radaug.provenance import code_files

    root = Path(__file__).resolve().parents[2]
    files = {str(f) for f in code_files(root / "workflow" / "scripts" / "validate.py")}
    for spec in METRICS.values():
        for path in filter(None, (spec.function, spec.null_function)):
            module = path.partition(":")[0]
            assert any(f.endswith(module.replace(".", "/") + ".py") for f in files), (spec.name, module)
