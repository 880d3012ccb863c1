"""In-fold model selection and early stopping of the generators (radaug.generative.selection, issue 20 item 3)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from radaug.errors import LeakageError
from radaug.generative import load_model
from radaug.generative.selection import (CHEAP_FEATURES, Selection, SelectionOptions, cheap_features,
                                         check_selection_holdout, curve_table, holdout_in_fold, selection_split)
from radaug.generative.training import fit_in_fold

from .test_generative import blobs, make


@pytest.fixture(scope="module")
def data():
    return blobs(40)


def selection(data, options: SelectionOptions, score=None, seed: int = 3) -> Selection:
    images, masks, labels = data
    fit, held = selection_split(labels, np.arange(len(labels)).astype(str), options.holdout, seed)
    kwargs = {} if score is None else {"score": score}
    return Selection(options, holdout_images=images[held], holdout_masks=masks[held], holdout_labels=labels[held],
                     fit_images=images[fit], fit_masks=masks[fit], fit_labels=labels[fit], seed=seed, **kwargs)


def scripted(values):
    """A score function returning ``values`` in turn (one per class and evaluation), as Fréchet distances."""
    values = iter(values)

    def score(candidate, holdout, scale):
        return {"frechet": next(values), "coverage": 0.5}

    return score


def test_cheap_features_of_a_disk():
    yy, xx = np.mgrid[:32, :32]
    mask = ((yy - 16) ** 2 + (xx - 16) ** 2 < 64).astype(np.uint8)
    image = np.where(mask, 100.0, 0.0) + np.random.default_rng(0).normal(0, 5, (32, 32))
    table = cheap_features(np.stack([image, image]), np.stack([mask, np.zeros_like(mask)]))
    assert list(table.columns) == list(CHEAP_FEATURES)
    row = table.iloc[0]
    assert row["roi_voxels"] == mask.sum()
    assert row["roi_mean"] == pytest.approx(100, abs=2) and row["roi_sd"] == pytest.approx(5, abs=1)
    assert row["context_diff"] == pytest.approx(100, abs=2)  # a bright lesion on a dark background
    assert table.iloc[1].isna().all()  # an empty mask has no features


def test_split_keeps_groups_whole_and_stratifies():
    labels = np.array(["a"] * 20 + ["b"] * 10)
    groups = np.repeat(np.arange(15), 2).astype(str)  # pairs of near-duplicates
    fit, held = selection_split(labels, groups, 0.2, seed=0)
    assert sorted(np.r_[fit, held]) == list(range(30))
    assert not set(groups[fit]) & set(groups[held])
    assert {c: int((labels[held] == c).sum()) for c in "ab"} == {"a": 4, "b": 2}
    again = selection_split(labels, groups, 0.2, seed=0)
    assert np.array_equal(again[1], held)


def folds_table():
    ids = [f"c{i}" for i in range(12)]
    return pd.DataFrame({"case_id": ids, "patient_id": ids, "group": [f"g{i // 2}" for i in range(12)],
                         "label": ["a", "b"] * 6, "repeat": 0, "fold": 0,
                         "role": ["train"] * 10 + ["test"] * 2})


def test_holdout_is_part_of_the_fold_training_cases():
    folds = folds_table()
    train = folds[folds["role"] == "train"]
    fit, held = holdout_in_fold(folds, 0, 0, list(train["case_id"]), list(train["label"]), 0.3, seed=1)
    assert len(held) and set(train["case_id"].iloc[held]) <= set(train["case_id"])


def test_a_test_case_in_the_holdout_is_refused():
    """The leakage check, broken on purpose: a test case of the fold is slipped into the holdout."""
    folds = folds_table()
    with pytest.raises(LeakageError, match="not training cases"):
        check_selection_holdout(folds, 0, 0, holdout_ids=["c0", "c10"], fit_ids=["c2", "c3"])
    with pytest.raises(LeakageError, match="both fitted and held out"):
        check_selection_holdout(folds, 0, 0, holdout_ids=["c2"], fit_ids=["c2", "c4"])
    with pytest.raises(LeakageError, match="shares group"):  # c0 and c1 are one group
        check_selection_holdout(folds, 0, 0, holdout_ids=["c0"], fit_ids=["c1", "c4"])


def test_holdout_in_fold_checks_the_split_it_draws(monkeypatch):
    """The split broken on purpose: it holds out the fold's test cases, and the check refuses it."""
    import radaug.generative.selection as selection_module

    folds = folds_table()
    monkeypatch.setattr(selection_module, "selection_split", lambda *a: (np.arange(10), np.array([10, 11])))
    with pytest.raises(LeakageError, match=r"\['c10', 'c11'\] that are not training cases"):
        holdout_in_fold(folds, 0, 0, list(folds["case_id"]), list(folds["label"]), 0.2, seed=0)


def test_fit_in_fold_holds_out_and_records_roles(monkeypatch):
    folds = folds_table()
    train = folds[folds["role"] == "train"]
    images, masks, labels = blobs(10)
    model = make("cvae")
    _, record = fit_in_fold(model, folds=folds, cases=folds, repeat=0, fold=0, case_ids=list(train["case_id"]),
                            images=images, masks=masks, labels=labels, label_names=list(train["label"]),
                            selection=SelectionOptions(holdout=0.3, every=1, samples=4), steps=2, batch_size=4,
                            device="cpu", log=lambda m: None)
    held = record.loc[record["role"] == "selection", "case_id"]
    assert len(held) >= 4 and set(held) <= set(train["case_id"])
    assert model.selected_step in (1, 2)


def test_selection_picks_the_best_step_of_a_constructed_sequence(data):
    # two classes per evaluation: the mean over classes is what is compared
    per_step = [(9, 9), (5, 7), (4, 4), (6, 6), (3, 3.5), (8, 8)]  # means 9, 6, 4, 6, 3.25, 8
    chooser = selection(data, SelectionOptions(every=2, patience=10, samples=8),
                        score=scripted([v for pair in per_step for v in pair]))
    model = make("cvae")
    images, masks, labels = data
    model.fit(images, masks, labels, steps=12, batch_size=8, device="cpu", log=lambda m: None, selection=chooser)
    assert model.selected_step == 10 and model.step == 12
    curve = curve_table(model.selection, ["benign", "malignant"])
    assert list(curve["step"]) == [2, 4, 6, 8, 10, 12]
    assert list(curve["best"]) == [True, True, True, False, True, False]
    assert list(curve["selected"]) == [False, False, False, False, True, False]
    assert {"frechet_benign", "coverage_malignant"} <= set(curve.columns)
    assert curve["frechet"].iloc[4] == pytest.approx(3.25)
    # the model holds the weights of step 10: training to exactly 10 steps gives them
    same = make("cvae")
    same.fit(images, masks, labels, steps=10, batch_size=8, device="cpu", log=lambda m: None)
    for key, value in same.nets.state_dict().items():
        assert torch.equal(value, model.nets.state_dict()[key]), key


def test_early_stopping_after_patience(data):
    per_step = [5, 5, 4, 4, 6, 6, 7, 7, 4, 4, 1, 1]  # best at step 4, then three worse or equal
    chooser = selection(data, SelectionOptions(every=2, patience=3, samples=8), score=scripted(per_step))
    model = make("cvae")
    losses = model.fit(*data, steps=40, batch_size=8, device="cpu", log_every=5, log=lambda m: None,
                       selection=chooser)
    assert chooser.stopped and model.step == 10 and model.selected_step == 4
    assert model.selection["stopped_early"]
    assert losses["step"].iloc[-1] == 10  # the losses up to the stop are logged


def test_nan_scores_do_not_use_up_patience(data):
    chooser = selection(data, SelectionOptions(every=1, patience=2, samples=8),
                        score=scripted([math.nan] * 6 + [2, 2, 3, 3, 3, 3]))
    model = make("cvae")
    model.fit(*data, steps=20, batch_size=8, device="cpu", log=lambda m: None, selection=chooser)
    assert model.selected_step == 4 and model.step == 6


def test_same_seed_gives_the_same_chosen_step(data):
    def run():
        chooser = selection(data, SelectionOptions(every=3, patience=2, samples=4), seed=5)
        model = make("dcgan")
        model.fit(*data, steps=12, batch_size=8, device="cpu", seed=1, log=lambda m: None, selection=chooser)
        return model

    first, second = run(), run()
    assert first.selected_step == second.selected_step
    assert pd.DataFrame(first.selection["curve"]).equals(pd.DataFrame(second.selection["curve"]))
    for key, value in first.nets.state_dict().items():
        assert torch.equal(value, second.nets.state_dict()[key])


class _Killed(Exception):
    pass


def test_killed_run_resumes_with_its_selection_state(data, tmp_path):
    options = SelectionOptions(every=2, patience=50, samples=4)
    kwargs = {"steps": 12, "batch_size": 8, "device": "cpu", "seed": 2, "log_every": 2}
    whole = make("dcgan")
    whole.fit(*data, **kwargs, log=lambda m: None, selection=selection(data, options))

    def die_at_step_8(message: str) -> None:
        if "step 8/" in message:
            raise _Killed

    path = tmp_path / "ckpt.pt"
    with pytest.raises(_Killed):
        make("dcgan").fit(*data, **kwargs, checkpoint_path=path, checkpoint_every=6, log=die_at_step_8,
                          selection=selection(data, options))
    messages = []
    resumed = make("dcgan")
    resumed.fit(*data, **kwargs, checkpoint_path=path, checkpoint_every=6, log=messages.append,
                selection=selection(data, options))
    assert any("resuming" in m and "step 6" in m for m in messages)
    assert resumed.selected_step == whole.selected_step
    assert pd.DataFrame(resumed.selection["curve"]).equals(pd.DataFrame(whole.selection["curve"]))
    for key, value in whole.nets.state_dict().items():
        assert torch.equal(value, resumed.nets.state_dict()[key])


def test_saved_model_keeps_the_selection_record(data, tmp_path):
    chooser = selection(data, SelectionOptions(every=2, patience=5, samples=8), score=scripted([3, 3, 1, 1, 2, 2]))
    model = make("cvae")
    model.fit(*data, steps=6, batch_size=8, device="cpu", log=lambda m: None, selection=chooser)
    model.save(tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.selected_step == 4 and loaded.step == 6
    plain = make("cvae")
    plain.fit(*data, steps=2, batch_size=8, device="cpu", log=lambda m: None)
    plain.save(tmp_path / "plain.pt")
    assert "selection" not in torch.load(tmp_path / "plain.pt", weights_only=True)
    assert load_model(tmp_path / "plain.pt").selected_step is None


def test_options_are_checked():
    with pytest.raises(ValueError, match="generative.selection.metric"):
        SelectionOptions(metric="fid")
    with pytest.raises(ValueError, match="generative.selection.holdout"):
        SelectionOptions(holdout=1.0)


def test_report_shows_each_curve_and_the_chosen_step():
    from radaug.report import _selection_section

    curve = pd.DataFrame({"step": [20, 40, 60], "frechet": [9.0, 4.0, 5.0], "coverage": [0.1, 0.6, 0.5],
                          "best": [True, True, False], "selected": [False, True, False]})
    html = _selection_section({("dcgan", "r0f0"): curve, ("dcgan", "r0f1"): curve.iloc[:0]})
    assert "<img" in html and "chosen step" in html
    assert "<td>dcgan</td><td>r0f0</td><td class=\"num\">40</td><td class=\"num\">60</td>" in html
