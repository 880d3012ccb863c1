import copy
from pathlib import Path

import pytest

from radaug.config import load_config, resolve_params_file, validate_config
from radaug.errors import ConfigError

from ..conftest import REPO

MINIMAL = {"study": {"name": "t"}, "data": {"source": "phantom", "classes": ["benign", "malignant"]}}


def test_defaults_are_filled():
    cfg = validate_config(MINIMAL)
    assert cfg["split"]["folds"] == 5
    assert cfg["generative"]["models"] == ["cvae", "dcgan", "lsgan"]
    assert cfg["evaluation"]["arms"] == ["real", "oversample", "cvae", "dcgan", "lsgan"]
    assert cfg["data"]["phantom"]["n_patients"] == {"benign": 30, "malignant": 10}
    assert cfg["sampling"]["on_shortfall"] == "record"  # a weak generator does not stop the study
    assert "split" not in MINIMAL  # input untouched


@pytest.mark.parametrize("path", ["config.yaml"] + sorted(f"config/{p.name}" for p in (REPO / "config").glob("*.yaml")))
def test_shipped_configs_validate(path):
    """Every config the project ships (the default study's and each of config/), so none rots unseen."""
    load_config(REPO / path, base_dir=REPO)


def _with(**changes):
    cfg = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


@pytest.mark.parametrize("cfg, key", [
    (_with(split__foldz=3), "foldz"),
    (_with(bogus=1), "bogus"),
    (_with(split__folds="five"), "split.folds"),
    (_with(split__folds=1), "split.folds"),
    (_with(split__verify_bits=7), "split.verify_bits"),
    (_with(split__min_similarity=1.5), "split.min_similarity"),
    (_with(generative__steps=0), "generative.steps"),
    (_with(data__source="dicomweb"), "data.source"),
    (_with(data__classes=["a"]), "data.classes"),
    (_with(generative__models=["stylegan"]), "generative.models.0"),
    (_with(evaluation__arms=["real", "stylegan"]), "evaluation.arms"),
    (_with(evaluation__arms=["real", "classical+stylegan"]), "evaluation.arms"),
    (_with(evaluation__arms=["real", "real+smote"]), "evaluation.arms"),
    (_with(evaluation__arms=["real", "smote+smote"]), "evaluation.arms"),
    (_with(evaluation__arms=["real", "smote+oversample", "oversample+smote"]), "evaluation.arms"),
    (_with(evaluation__arms=["oversample"]), "evaluation.arms"),
    (_with(data__phantom={"n_patients": {"benign": 3, "malignant": 8}}), "split.folds"),
    (_with(data__phantom={"n_patients": {"a": 30, "b": 30}}), "data.phantom.n_patients"),
    (_with(features__params="nope.yaml"), "features.params"),
    (_with(preprocess__patch_size=128), "preprocess.patch_size"),
    (_with(generative__conditioning="spade"), "generative.conditioning"),
    (_with(sampling__on_shortfall="ignore"), "sampling.on_shortfall"),
    (_with(generative__shape_model={"max_sd": 5}), "generative.shape_model.max_sd"),
    (_with(generative__conditioning="mask", generative__shape_model={"ssm_share": 0},
           augmentation={"affine": {"enabled": False}, "elastic": {"enabled": False}}),
     "generative.shape_model.ssm_share"),
    (_with(generative={"models": ["ddpm"], "ddpm": {"diffusion_steps": 20, "sample_steps": 50}},
           evaluation__arms=["real", "ddpm"]),
     "generative.ddpm.sample_steps"),
    (_with(generative={"models": ["ddpm"], "ddpm": {"label_dropout": 0}}, evaluation__arms=["real", "ddpm"]),
     "generative.ddpm.guidance_scale"),
])
def test_bad_config_names_the_key(cfg, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(cfg)


def test_builtin_classical_and_combined_arms_are_accepted():
    arms = ["real", "oversample", "smote", "classical", "classical+smote", "smote+oversample"]
    assert validate_config(_with(evaluation__arms=arms))["evaluation"]["arms"] == arms


def test_impossible_folds_message_gives_the_fix():
    cfg = _with(split__folds=10, data__phantom={"n_patients": {"benign": 8, "malignant": 8}})
    with pytest.raises(ConfigError, match=r"only 8 patient\(s\).*at most 8 folds"):
        validate_config(cfg)


def test_manifest_source_needs_params_file(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,patient_id,image,label\n" + "".join(
        f"c{i},p{i},x.nii,{'a' if i % 2 else 'b'}\n" for i in range(20)))
    cfg = validate_config({"study": {"name": "u"}, "split": {"folds": 3},
                           "data": {"source": "manifest", "classes": ["a", "b"], "manifest": str(manifest)}})
    with pytest.raises(ConfigError, match="features.params"):
        resolve_params_file(cfg, REPO / "workflow")


def test_default_params_follow_modality():
    cfg = validate_config(MINIMAL)
    assert resolve_params_file(cfg, "w").name == "radiomics_2d_ct.yaml"
    cfg = validate_config({**MINIMAL, "data": {"source": "br35h", "classes": ["no_tumour", "tumour"]}})
    assert resolve_params_file(cfg, "w").name == "radiomics_2d_mr.yaml"


def test_unreadable_yaml(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("study: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_readme_matches_schema():
    from radaug.config import schema_markdown

    assert (REPO / "config/README.md").read_text() == schema_markdown(), "run: radaug config-doc > config/README.md"


def test_key_order_does_not_matter():
    a = validate_config({"data": {"classes": ["benign", "malignant"], "source": "phantom"}, "study": {"name": "t"}})
    b = validate_config(MINIMAL)
    assert list(a) == list(b) and a == b
    assert list(a["data"]) == sorted(a["data"])


@pytest.mark.parametrize("thresholds, pattern", [
    ({"frechet": {"warn_factor": 3}}, "frechet"),
    ({"ks_fdr": "x"}, "ks_fdr"),
])
def test_bad_validation_thresholds_stop_before_any_job(thresholds, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate_config(_with(validation__thresholds=thresholds))


def test_alpha_of_one_is_refused():
    with pytest.raises(ConfigError, match="validation.alpha"):
        validate_config(_with(validation__alpha=1.0))


# --- issue 18 item 5: the study name as the workflow reads it -------------------------------

FLOW_STYLE = "study: {name: my_study, seed: 1}\ndata: {source: phantom, classes: [benign, malignant]}\n"


def test_cli_study_name_reads_flow_style_yaml(tmp_path, capsys):
    from radaug.cli import main

    (tmp_path / "c.yaml").write_text(FLOW_STYLE)
    assert main(["study-name", str(tmp_path / "c.yaml")]) == 0
    assert capsys.readouterr().out == "my_study\n"
    (tmp_path / "bad.yaml").write_text("study: {name: x, bogus: 1}\n")
    assert main(["study-name", str(tmp_path / "bad.yaml")]) == 2
    assert "bogus" in capsys.readouterr().err


def test_makefile_uses_the_study_name_of_a_flow_style_config(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (tmp_path / "c.yaml").write_text(FLOW_STYLE)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(["make", "-n", "-C", str(repo), "verify", f"CONFIG={tmp_path / 'c.yaml'}", f"BIN={bin_dir}"],
                         capture_output=True, text=True, env=env)
    assert f"{bin_dir}/radaug verify results/my_study" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(["make", "-n", "-C", str(repo), "verify", "STUDY=given", f"BIN={bin_dir}"],
                         capture_output=True, text=True, env=env)
    assert f"{bin_dir}/radaug verify results/given" in out.stdout, out.stdout + out.stderr


def test_more_than_two_classes_validate_and_a_small_class_is_named():
    """Issue 23: data.classes takes K >= 2 labels; a class with fewer patients than folds is named."""
    cfg = copy.deepcopy(MINIMAL)
    cfg["data"]["classes"] = ["benign", "malignant", "borderline"]
    cfg["data"]["phantom"] = {"n_patients": {"benign": 10, "malignant": 8, "borderline": 6}}
    assert validate_config(cfg)["data"]["classes"] == ["benign", "malignant", "borderline"]
    cfg["data"]["phantom"]["n_patients"]["borderline"] = 3
    with pytest.raises(ConfigError, match="class 'borderline' has only 3 patient"):
        validate_config(cfg)
    cfg["data"]["classes"] = ["benign"]
    with pytest.raises(ConfigError, match="data.classes"):
        validate_config(cfg)
