"""The conda environment and the pip requirements pin the same packages."""
import re

import yaml

from ..conftest import REPO


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith(("#", "-e")):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?==(\S+)", line).groups()
            pins[name.lower()] = version
    return pins


def test_conda_env_matches_pip_requirements():
    pip = _pins((REPO / "envs/requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs/radaug.yaml").read_text())
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(conda_pip) == pip
    assert "python=3.11" in env["dependencies"]


def test_every_rule_declares_the_environment():
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        assert text.count("\nrule ") == text.count('conda:\n        "../../envs/radaug.yaml"'), smk.name
