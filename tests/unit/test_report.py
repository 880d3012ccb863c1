"""Tests of radaug.report: the standalone, deterministic HTML study report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from radaug.errors import LeakageError
from radaug.report import (SECTIONS, assemble_report, build_report, closest_to_training, render_generators,
                           render_validation, report_classes)
from radaug.validate.details import collect_details, set_details

CLASSES = ("benign", "malignant")
ARMS = ("real", "dcgan", "cvae")
FOLD_KEYS = ("r0f0", "r0f1")
PNG = "data:image/png;base64,"


def patches(n, rng, depth=None):
    """``n`` noisy patches with a square ROI; 3-D ``(n, depth, 16, 16)`` when ``depth`` is given."""
    shape = (n, 16, 16) if depth is None else (n, depth, 16, 16)
    images = rng.normal(size=shape).astype(np.float32)
    masks = np.zeros(shape, np.uint8)
    masks[..., 5:11, 5:11] = 1
    images += 3 * masks
    return images, masks


def sample_table(model, repeat, fold, quota, rejected):
    labels = [label for label in CLASSES for _ in range(quota[label])]
    return pd.DataFrame({
        "sample_id": [f"{model}-r{repeat}f{fold}-{i:05d}" for i in range(len(labels))],
        "label": labels, "seed": range(len(labels)), "attempt": 0, "roi_voxels": 36, "model": model,
        "model_sha256": "ab" * 32, "checkpoint_step": 100, "repeat": repeat, "fold": fold,
        "quota": [quota[label] for label in labels], "rejected_in_class": [rejected[label] for label in labels],
    })


def validation_details(rng):
    """Details computed by radaug.validate.details for small feature tables: two arms, a copy control."""
    features = [f"original_{family}_F{j}" for family in ("firstorder", "glcm") for j in range(4)]
    sets = []
    for key in FOLD_KEYS:
        for label in CLASSES:
            train = pd.DataFrame(rng.normal(size=(20, len(features))), columns=features)
            holdout = pd.DataFrame(rng.normal(size=(8, len(features))), columns=features)
            candidates = {"dcgan": train + rng.normal(scale=0.1, size=train.shape),
                          "cvae": pd.DataFrame(rng.normal(1.0, 2.0, size=(15, len(features))), columns=features),
                          "control_negative_copy": train.copy()}
            sets += [(key, arm, label, set_details(train, holdout, cand, feature_columns=features))
                     for arm, cand in candidates.items()]
    return collect_details(sets, features)


def make_inputs(depth=None):
    """Small, complete report inputs: 12 cases, 2 classes, 2 folds, real + 2 generated arms."""
    rng = np.random.default_rng(0)
    case_ids = [f"case{i:02d}" for i in range(12)]
    labels = [CLASSES[i % 4 == 3] for i in range(12)]
    patients = [f"p{i:02d}" if i != 11 else "p09" for i in range(12)]  # case09 and case11: one patient
    cohort = pd.DataFrame({
        "case_id": case_ids, "patient_id": patients, "label": labels, "modality": "MR",
        "roi_voxels": 36, "roi_source": "manual", "roi_truncated": [False] * 11 + [True],
    })
    groups = [patient.replace("p", "g") for patient in patients]
    folds = pd.concat([
        pd.DataFrame({
            "case_id": case_ids, "patient_id": patients, "group": groups, "label": labels, "repeat": 0,
            "fold": fold, "role": ["test" if i % 2 == fold else "train" for i in range(12)],
        })
        for fold in (0, 1)
    ], ignore_index=True)
    validation = pd.DataFrame([
        {"fold": key, "arm": arm, "class": label, "metric": metric, "value": value, "baseline": 0.05,
         "direction": "minimize", "verdict": verdict, "n_reference": 4, "n_candidate": 3, "n_holdout": 2}
        for arm in ARMS[1:] for label in CLASSES for metric in ("ks_fdr", "frechet_distance")
        for key, value, verdict in zip(FOLD_KEYS, (0.1, 0.3), ("pass", "fail" if arm == "dcgan" else "warn"))
    ])
    evaluation = pd.DataFrame([
        {"arm": arm, "metric": metric, "mean": 0.7 + 0.05 * i, "ci_low": 0.6 + 0.05 * i,
         "ci_high": 0.8 + 0.05 * i, "delta_vs_real": 0.05 * i, "p_value": np.nan if i == 0 else 0.2,
         "n_folds": 2, "holm_p_value": np.nan if i == 0 else 0.04 * i, "effect_size": np.nan if i == 0 else 0.5,
         "pooled_delta": np.nan if i == 0 else 0.04 * i, "pooled_delta_ci_low": np.nan if i == 0 else -0.01,
         "pooled_delta_ci_high": np.nan if i == 0 else 0.1 * i, "holm_significant": i == 1}
        for metric in ("auc", "balanced_accuracy", "minority_recall", "brier") for i, arm in enumerate(ARMS)
    ])
    test = folds[folds["role"] == "test"]
    predictions = pd.concat([
        test.assign(arm=arm, y_true=(test["label"] == "malignant").astype(int),
                    score=rng.uniform(size=len(test)))[
            ["arm", "repeat", "fold", "case_id", "label", "y_true", "score"]]
        for arm in ARMS
    ], ignore_index=True)
    steps = np.arange(0, 100, 10)
    losses = {}
    for key in FOLD_KEYS:
        losses[("dcgan", key)] = pd.DataFrame({"step": steps, "loss_d": 1 / (1 + steps), "loss_g": 0.7 + 0 * steps,
                                              "images_per_s": 500.0})
        losses[("cvae", key)] = pd.DataFrame({"step": steps, "loss": 2 / (1 + steps), "kl": 0.1 + 0 * steps})
    tables = {
        model: [sample_table(model, 0, fold, {"benign": 0, "malignant": 3}, {"benign": 0, "malignant": 2 - fold})
                for fold in (0, 1)]
        for model in ARMS[1:]
    }
    synthetic = {model: (*patches(3, rng, depth), tables[model][0]) for model in ARMS[1:]}
    failures = pd.DataFrame({"sample_id": ["dcgan-r0f0-00001"], "source": "synthetic", "arm": "dcgan",
                             "repeat": 0, "fold": 0, "reason": "empty mask"})
    provenance = [
        {"rule": rule, "wildcards": {}, "code_version": code, "packages": {"numpy": "2.4.0", "pandas": "3.1.0"},
         "seed": 7, "seconds": seconds, "host": "node1"}
        for rule, code, seconds in (("split", "a" * 64, 1.5), ("train_generator", "b" * 64, 10.0),
                                    ("train_generator", "b" * 64, 12.0))
    ]
    return {
        "config": {"study": {"name": "demo <study>", "seed": 7},
                   "data": {"source": "phantom", "classes": list(CLASSES)},
                   "evaluation": {"arms": list(ARMS), "classifier": "logistic_regression"}},
        "cohort": cohort, "folds": folds, "validation": validation, "evaluation": evaluation,
        "predictions": predictions, "losses": losses, "real_patches": (np.array(case_ids), *patches(12, rng, depth)),
        "synthetic": synthetic,
        "sample_tables": pd.concat([t for ts in tables.values() for t in ts], ignore_index=True),
        "failures": failures, "provenance": provenance, "validation_details": validation_details(rng),
    }


def section(page: str, key: str) -> str:
    """The HTML of one section of the page."""
    match = re.search(f'<section id="{key}">(.*?)</section>', page, re.DOTALL)
    assert match, f"section {key!r} missing"
    return match.group(1)


@pytest.fixture(scope="module")
def page():
    return build_report(**make_inputs())


def test_every_section_is_present(page):
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
        assert f'href="#{key}"' in page
    assert "How to read this report" in page
    assert "<h2>ROC curves</h2>" in page  # binary study; K > 2 titles it "Confusion matrices"


def test_evaluation_has_forest_plot_effect_sizes_and_bootstrap_intervals(page):
    body = section(page, "evaluation")
    assert "Forest plot" in body and body.count(PNG) == 2
    assert "effect size d_z" in body and "pooled Δ (bootstrap CI)" in body
    assert "0.04 (-0.01 – 0.1)" in body  # pooled delta of the first arm with its interval
    assert "Lower is better for brier" in body


def test_provenance_shows_the_study_data_version():
    inputs = make_inputs()
    records = [dict(r, outputs=[{"path": f"results/demo <study>/x{i}.csv", "sha256": "ab" * 32}])
               for i, r in enumerate(inputs["provenance"])]
    from radaug.provenance import study_version

    expected = study_version([{"path": f"x{i}.csv", "sha256": "ab" * 32, "kind": "data"} for i in range(3)])
    assert f"Study data version: {expected}" in section(build_report(**{**inputs, "provenance": records}),
                                                         "provenance")


def test_figures_are_embedded_pngs(page):
    # evaluation, ROC, losses, and one sample grid per generated arm
    assert page.count(PNG) >= 5
    for data in re.findall(f'{re.escape(PNG)}([A-Za-z0-9+/=]+)"', page):
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"Software" not in png  # no version stamp: equal figures give equal bytes everywhere


def test_nothing_is_fetched_from_the_network(page):
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page


def test_text_is_escaped(page):
    assert "<h1>demo &lt;study&gt;</h1>" in page
    assert "demo <study>" not in page


def test_identical_inputs_give_identical_pages(page):
    assert build_report(**make_inputs()) == page


def test_the_workflow_assembly_of_prerendered_sections_gives_the_same_page(page):
    # the workflow renders the validation and generator sections in jobs of their own
    inputs = make_inputs()
    classes = report_classes(inputs["config"]["data"]["classes"], inputs["cohort"])
    validation_html = render_validation(inputs["validation"], classes, inputs["validation_details"])
    generators_html = render_generators(inputs["losses"], inputs["real_patches"], inputs["synthetic"],
                                        inputs["sample_tables"], inputs["cohort"], inputs["folds"], classes)
    light = {k: inputs[k] for k in ("config", "cohort", "folds", "evaluation", "predictions", "failures",
                                    "provenance", "validation")}
    assert assemble_report(**light, validation_html=validation_html, generators_html=generators_html) == page
    assert validation_html in section(page, "validation") and generators_html in section(page, "generators")


def test_validation_cells_show_median_baseline_and_worst_verdict(page):
    validation = section(page, "validation")
    # folds 0.1 (pass) and 0.3 (fail or warn): median 0.2, worst verdict
    assert '<td class="verdict-fail">0.2 (0.05) <strong>fail</strong></td>' in validation
    assert '<td class="verdict-warn">0.2 (0.05) <strong>warn</strong></td>' in validation
    assert "<strong>pass</strong>" not in validation
    assert "lower is better" in validation
    assert "4 / 3 / 2" in validation


def test_validation_takes_medians_and_ignores_insufficient_folds_unless_all_are():
    inputs = make_inputs()
    inputs["validation"] = pd.DataFrame({
        "fold": ["r0f0", "r0f1", "r0f2"] * 2, "arm": "dcgan", "class": ["malignant"] * 3 + ["benign"] * 3,
        "metric": "ks_fdr", "value": [0.1, 0.2, 0.9, np.nan, np.nan, np.nan], "baseline": [0.0, 0.05, 0.5] * 2,
        "direction": "minimize", "verdict": ["pass", "insufficient", "warn"] + ["insufficient"] * 3,
    })
    validation = section(build_report(**inputs), "validation")
    assert '<td class="verdict-warn">0.2 (0.05) <strong>warn</strong></td>' in validation
    assert '<td class="verdict-insufficient">n/a (0.05) <strong>insufficient</strong></td>' in validation
    assert "n real train" not in validation  # no count columns given


def test_sampling_table_sums_per_fold_quotas_and_rejections(page):
    generators = section(page, "generators")
    row = ('<tr><td>dcgan</td><td>malignant</td><td class="num">2</td><td class="num">6</td>'
           '<td class="num">6</td><td class="num">3</td><td>66.7%</td></tr>')
    assert row in generators
    assert "fold r0f0" in generators
    assert "one line per fold (2 folds: r0f0, r0f1)" in generators


def test_cohort_and_folds_tables(page):
    cohort = section(page, "cohort")
    assert ('<tr><td>malignant</td><td class="num">3</td><td class="num">3</td><td>MR</td><td>manual</td>'
            '<td class="num">36</td><td class="num">1</td></tr>') in cohort
    folds = section(page, "folds")
    assert "groups with more than one case: 1" in folds
    # fold 0 tests the even cases (all benign); case09 and case11 share a group, both in train
    assert ('<tr><td>r0f0</td><td class="num">3</td><td class="num">3</td><td class="num">6</td><td class="num">0</td>'
            '<td class="num">1</td><td class="num">0</td><td class="num">0</td></tr>') in folds


def test_failures_and_provenance(page):
    failures = section(page, "failures")
    assert "empty mask" in failures and "<td>dcgan</td>" in failures
    provenance = section(page, "provenance")
    assert "3 jobs." in provenance
    assert "node1" not in provenance and "23.5" not in provenance  # timings and hosts are not reproducible
    assert '<tr><td>train_generator</td><td class="num">2</td><td>bbbbbbbbbbbb</td></tr>' in provenance
    assert "<td>numpy</td><td>2.4.0</td>" in provenance


def test_empty_failures_and_validation_read_none_and_no_data():
    inputs = make_inputs()
    inputs["failures"] = pd.DataFrame()
    inputs["validation"] = inputs["validation"].iloc[:0]
    page = build_report(**inputs)
    assert "none" in section(page, "failures")
    assert "no data" in section(page, "validation")


def test_a_study_with_no_results_yet_still_renders():
    inputs = make_inputs()
    inputs.update(evaluation=pd.DataFrame(), predictions=pd.DataFrame(), losses={}, synthetic={},
                  sample_tables=pd.DataFrame(), validation=pd.DataFrame(), provenance=[])
    page = build_report(**inputs)
    for key in ("evaluation", "roc", "validation", "provenance"):
        assert "no data" in section(page, key)
    assert section(page, "generators").count("no data") == 4  # losses, samples, closest to training, sampling
    assert PNG not in page


def test_3d_patches_show_their_central_slice():
    page = build_report(**make_inputs(depth=4))
    assert section(page, "generators").count(PNG) == 5  # losses + two sample grids + two closest-to-training


def test_validation_details_draw_ks_heat_map_correlation_maps_and_dcr_histograms(page):
    validation = section(page, "validation")
    assert "<h3>Validation details</h3>" in validation
    assert validation.count(PNG) == 4  # verdict map + the three detail figures
    for caption in ("KS heat map", "Correlation-difference maps", "Distance to the closest real training row"):
        assert caption in validation
    assert "white never, black in every fold and class" in validation  # captions say what grey levels mean
    assert "fixed to [-1, 1]" in validation


def test_no_validation_details_no_detail_figures():
    inputs = make_inputs()
    inputs["validation_details"] = None
    validation = section(build_report(**inputs), "validation")
    assert "Validation details" not in validation and validation.count(PNG) == 1


def test_evaluation_states_the_limits_of_its_statistics():
    """Issue 18: undefined tests, too few or too small folds and arms that add nothing are stated."""
    inputs = make_inputs()
    evaluation = inputs["evaluation"].copy()
    arm = evaluation["arm"].drop_duplicates().iloc[1]
    undefined = evaluation["arm"] == arm
    evaluation.loc[undefined, ["p_value", "holm_p_value", "effect_size"]] = np.nan
    evaluation.loc[undefined, "holm_significant"] = False
    evaluation.loc[undefined, "delta_vs_real"] = 0.25
    per_fold = pd.DataFrame({"arm": ["real", arm, "other"], "n_train_added": [0, 4, 0]})
    light = {k: v for k, v in inputs.items() if k in ("config", "cohort", "folds", "predictions", "failures",
                                                      "provenance")}
    page = assemble_report(**light, evaluation=evaluation, per_fold=per_fold, validation_html="",
                           generators_html="")
    body = section(page, "evaluation")
    assert "Limits of these statistics" in body and "Only 2 fold(s)" in body
    assert f"Arm &#x27;{arm}&#x27;: the per-fold differences of" in body and "zero variance" in body
    assert "Arm &#x27;other&#x27; adds no rows in any fold" in body
    assert "or the test is undefined" in body


def test_the_first_section_lists_every_arm_and_an_arm_that_could_not_generate():
    """Issue 17: an arm whose generator fell short is listed with its note, and is not in the evaluation table."""
    inputs = make_inputs()
    evaluation = inputs["evaluation"].assign(validation_verdict="pass", flagged=False, evaluated=True, note="")
    evaluation.loc[evaluation["arm"] == "real", "validation_verdict"] = "reference"
    short = evaluation["arm"] == "cvae"
    evaluation.loc[short, ["mean", "ci_low", "ci_high", "delta_vs_real", "p_value", "n_folds"]] = np.nan
    evaluation.loc[short, ["validation_verdict", "evaluated", "note"]] = [
        "could not generate", False, "could not generate: cvae fell short of its quota: 'malignant' in r0f1: "
        "0 of 3 plausible samples (60 drawn; rejected: 60 empty mask)"]
    inputs["evaluation"] = evaluation
    inputs["predictions"] = inputs["predictions"][inputs["predictions"]["arm"] != "cvae"]
    page = build_report(**inputs)
    assert page.index('<section id="arms">') < page.index('<section id="config">')
    arms = section(page, "arms")
    for arm, status in (("real", "reference"), ("dcgan", "evaluated"), ("cvae", "could not generate")):
        assert re.search(f"<td>{arm}</td><td>{status}</td>", arms), (arm, arms)
    assert "60 empty mask" in arms
    evaluated = section(page, "evaluation")
    assert "<td>cvae</td>" not in evaluated and "Not evaluated (see Arms and their status): cvae." in evaluated


def test_sampling_records_show_requested_accepted_and_why_rejected():
    from radaug.sampling import class_record, sampling_table

    inputs = make_inputs()
    records = pd.concat([
        sampling_table([class_record("benign", 0, 0, {}, ""),
                        class_record("malignant", 3, 3 if model == "cvae" else 0,
                                     {"empty mask": 4 * (model == "dcgan"), "ROI above range": 2}, "why")]
                       ).assign(model=model, fold=fold)
        for model in ("cvae", "dcgan") for fold in FOLD_KEYS], ignore_index=True)
    html = render_generators(inputs["losses"], inputs["real_patches"], inputs["synthetic"], inputs["sample_tables"],
                             inputs["cohort"], inputs["folds"], list(CLASSES), sampling=records)
    assert "<th>rejected: empty mask</th><th>rejected: ROI above range</th>" in html
    assert "rejected: ROI below range" not in html  # reasons that never occurred get no column
    row = ('<tr><td>dcgan</td><td>malignant</td><td class="num">6</td><td class="num">0</td><td class="num">12</td>'
           '<td class="num">8</td><td class="num">4</td><td>0.0%</td><td>r0f0, r0f1</td></tr>')
    assert row in html
    assert '<td>cvae</td><td>malignant</td><td class="num">6</td><td class="num">6</td>' in html


def test_the_summary_comes_first_and_configuration_last(page):
    assert page.index('<section id="summary">') < page.index('<section id="arms">') < page.index('<section id="cohort">')
    assert page.index('<section id="config">') > page.index('<section id="failures">')
    summary = section(page, "summary")
    assert "improved AUC" in summary and "Controls:" in summary and "Leakage:" in summary
    assert "<details><summary>" in section(page, "config")


def _duplicate_inputs():
    """make_inputs with thumbnails in the cohort and an audit: case00~case04~case08 linked, case01/case05 close."""
    from radaug import duplicates as D

    inputs = make_inputs()
    rng = np.random.default_rng(1)
    thumbs = [D._ranks(rng.random((D.STORED, D.STORED))) for _ in range(12)]
    inputs["cohort"] = inputs["cohort"].assign(dup_thumb=[D.encode_thumbnail(t) for t in thumbs])
    rows = [("case00", "case04", "benign", "benign", 3, np.nan, "hash", True, True),
            ("case04", "case08", "benign", "benign", 14, 0.97, "window", True, True),
            ("case01", "case05", "benign", "benign", 15, 0.88, "window", False, False)]
    audit = pd.DataFrame(rows, columns=["case_a", "case_b", "label_a", "label_b", "distance", "similarity", "rule",
                                        "linked", "grouped"])
    audit["straddles"] = False
    # folds by case-number parity keep case00, case04 and case08 on one side
    folds = inputs["folds"]
    folds["role"] = np.where((folds["case_id"].str[-2:].astype(int) % 2) == folds["fold"], "test", "train")
    return inputs, audit


def test_near_duplicate_section_counts_groups_shows_strips_and_checks_straddling():
    inputs, audit = _duplicate_inputs()
    body = section(build_report(**inputs, duplicates=audit), "duplicates")
    # benign: case00, case04, case08 in one group of 3 (8 benign images, 6 groups)
    assert "<td>benign</td><td class=\"num\">9</td><td class=\"num\">7</td><td class=\"num\">1</td>" \
           "<td class=\"num\">3</td><td class=\"num\">3</td>" in body
    assert "Checked: no near-duplicate group straddles train and test in any of the 2 folds (2 linked pairs" in body
    assert body.count(PNG) == 2  # the largest groups and the closest ungrouped pairs
    assert "closest pairs that were not grouped" in body
    assert "<td>case01</td><td>case05</td><td>benign / benign</td><td class=\"num\">15</td><td>0.880</td>" in body
    # a group on both sides of a fold stops the report
    folds = inputs["folds"].copy()
    folds.loc[(folds["case_id"] == "case04") & (folds["fold"] == 0), "role"] = "train"
    folds.loc[(folds["case_id"] == "case00") & (folds["fold"] == 0), "role"] = "test"
    with pytest.raises(LeakageError, match="near-duplicate group"):
        build_report(**{**inputs, "folds": folds}, duplicates=audit)


def test_near_duplicate_section_without_an_audit_reads_no_data(page):
    assert "no data" in section(page, "duplicates")


def test_the_samples_closest_to_training_are_found_with_their_nearest_training_patch():
    """Fold 0's malignant cases: case03 and case07 train, case11 test (moved there). Sample 1 copies
    case07 (plus noise far below patch contrast), sample 2 copies the held-out case11, sample 0 is noise:
    the copy of case07 comes first at a distance near 0; the copy of case11 is not matched to it."""
    inputs = make_inputs()
    folds = inputs["folds"].copy()
    folds.loc[(folds["fold"] == 0) & (folds["case_id"] == "case11"), "role"] = "test"
    case_ids, real_images, real_masks = inputs["real_patches"]
    images, masks, table = inputs["synthetic"]["cvae"]  # fold r0f0, three malignant samples
    rng = np.random.default_rng(1)
    images = images.copy()
    images[0] = rng.normal(size=images[0].shape)
    images[1] = real_images[7] + rng.normal(0, 1e-3, real_images[7].shape)
    images[2] = real_images[11]
    closest = closest_to_training((images, masks, table), inputs["real_patches"], inputs["cohort"],
                                  folds, list(CLASSES), per_class=3)
    assert list(closest["label"]) == ["malignant"] * 3 and list(closest["sample"])[0] == 1
    first = closest.iloc[0]
    assert first["nearest_case"] == "case07" and first["sample_id"] == "cvae-r0f0-00001" and first["distance"] < 1e-3
    assert set(closest["nearest_case"]) <= {"case03", "case07"}  # never a test case, never another class
    assert closest.set_index("sample").loc[2, "distance"] > 0.1
    held_out = closest["held_out_median"].iloc[0]  # case11's distance to its nearest training case
    assert held_out == pytest.approx(closest.set_index("sample").loc[2, "distance"])


def test_classical_samples_are_shown_after_the_generators_with_their_parent_case():
    inputs = make_inputs()
    images, masks, table = inputs["synthetic"]["cvae"]
    augmented = table.assign(sample_id=[f"classical-r0f0-{i:05d}" for i in range(len(table))],
                             case_id=["case03", "case07", "case11"])
    inputs["synthetic"]["classical"] = (images, masks, augmented)
    html = render_generators(inputs["losses"], inputs["real_patches"], inputs["synthetic"], inputs["sample_tables"],
                             inputs["cohort"], inputs["folds"], list(CLASSES))
    samples, closest = html.split("<h3>Closest to training</h3>")
    assert samples.index("classical, fold r0f0: real training cases") > samples.index("dcgan, fold r0f0")
    assert "augmented samples made from them" in samples
    assert "the same on both sides" in samples
    assert closest.count("<figure>") == 3  # cvae, dcgan, classical
    assert "<th>parent case</th>" in closest and "<td>classical-r0f0-00000</td><td>case03</td>" in closest


def test_k_class_confusion_matrices_pool_repeats_and_folds():
    """Issue 23: one confusion matrix per arm, true classes as rows, predicted as columns, in class order."""
    from radaug.report import _roc_section, confusion_matrices

    classes = ["benign", "malignant", "borderline"]
    rows = [("real", 0, "benign", "benign"), ("real", 0, "borderline", "benign"), ("real", 1, "borderline", "benign"),
            ("real", 1, "malignant", "malignant"), ("smote", 0, "borderline", "borderline")]
    predictions = pd.DataFrame([{"arm": a, "repeat": r, "fold": 0, "case_id": f"c{i}", "label": t, "predicted": p,
                                 **{f"proba_{c}": float(c == p) for c in classes}}
                                for i, (a, r, t, p) in enumerate(rows)])
    matrices = confusion_matrices(predictions)
    real = matrices["real"]
    assert list(real.index) == classes and list(real.columns) == classes
    assert real.loc["borderline", "benign"] == 2 and real.to_numpy().sum() == 4
    assert matrices["smote"].loc["borderline", "borderline"] == 1
    html_text = _roc_section(predictions)
    assert "Confusion matrices" in html_text and html_text.count("<table>") == 2
