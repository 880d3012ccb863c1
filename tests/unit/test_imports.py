"""Jobs import only what they use: a module a job imports for one helper must not pull in
the heavy libraries of functions the job never calls (each job is a fresh process that
pays every import again; issue 24, ``benchmarks/bench_job_overhead.py``)."""

import subprocess
import sys

import pytest

HEAVY = ("sklearn", "scipy.stats", "statsmodels", "torch", "jsonschema", "matplotlib")


@pytest.mark.parametrize("module, allowed", [
    ("radaug.arms", ()),  # validate.py imports it for the arms' rows, config.py for the vocabulary
    ("radaug.evaluate", ()),  # evaluation_summary.py and the report import it for helpers
    ("radaug.statistics", ()),  # the report imports it for the inference notes
    ("radaug.classifier", ()),
    ("radaug.validate.invariance", ()),  # perturb_features.py imports it for sample ids
    ("radaug.config", ()),  # imported by most library modules for constants
    ("radaug.features", ()),
    ("radaug.sampling", ()),
    # the jobs that join and judge tables: validation_summary, validate_controls, report_generators,
    # report_validation and report (each imported scipy and scikit-learn before for well under 1 s of work)
    ("radaug.validate.verdicts", ()),
    ("radaug.validate.details", ()),
    ("radaug.validate.null", ()),
    ("radaug.report", ()),
    ("radaug.snakemake_adapter", ()),  # every job imports it
])
def test_module_does_not_import_heavy_libraries_it_does_not_need_at_import(module, allowed):
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(set(out) - set(allowed)) == [], f"import {module} loads {out}"


def test_the_classifier_still_builds_and_its_selectors_load_with_it():
    from radaug.classifier import build_classifier

    pipe = build_classifier(selection="l1", k_features=2)
    assert type(pipe.named_steps["select"]).__module__ == "radaug.selectors"
