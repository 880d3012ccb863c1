"""Tests of radaug.bundle: the deterministic RO-Crate bundle and verify of an unpacked copy."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from radaug.bundle import BUNDLE, CRATE_METADATA, code_identity, environment, write_bundle
from radaug.errors import VerifyError
from radaug.io import sha256_file, write_json
from radaug.provenance import verify_study, write_manifest

CONFIG = {"study": {"name": "tiny", "seed": 3}, "evaluation": {"arms": ["real", "smote"]}}
ENV = {"python": "3.11", "platform": "test", "packages": {"numpy": "2.0"}}
CODE = {"radaug": "0.1", "git_commit": "abc", "git_dirty": False, "sources_sha256": "0" * 64}


def _job(study: Path, rule: str, files: dict[str, bytes], finished: str) -> Path:
    outputs = []
    for rel, data in files.items():
        path = study / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        outputs.append({"path": str(path), "sha256": sha256_file(path), "bytes": len(data)})
    prov = study / "provenance" / f"{rule}.json"
    write_json(prov, {"rule": rule, "wildcards": {}, "outputs": outputs, "code_version": "c" * 64,
                      "seconds": 1.0, "finished": finished})
    return prov


@pytest.fixture
def study(tmp_path) -> Path:
    """A small finished study: summaries, a report, a checkpoint (intermediate) and a manifest."""
    study = tmp_path / "results" / "tiny"
    records = [
        _job(study, "evaluation_summary", {"evaluation/summary.csv": b"arm,metric\nreal,auc\n",
                                           "evaluation/per_fold/classical+cvae.csv": b"arm\nclassical+cvae\n"},
             "2026-01-02T10:00:00"),
        _job(study, "train_generator", {"models/cvae/r0f0/checkpoint.pt": bytes(range(256)) * 40},
             "2026-01-02T09:00:00"),
        _job(study, "report", {"report.html": b"<html>report</html>\n"}, "2026-01-02T11:00:00"),
    ]
    write_manifest(study, records)
    (study / "logs").mkdir()
    (study / "logs" / "x.log").write_text("timestamps")
    return study


def _bundle(study, out, **kwargs):
    return write_bundle(study, out, config=CONFIG, env=ENV, code=CODE, **kwargs)


def _unpack(zip_path, where: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(where)
    return where


def test_bundle_is_deterministic_and_has_fixed_zip_metadata(study, tmp_path):
    first = _bundle(study, tmp_path / "a.zip")
    second = _bundle(study, study / BUNDLE)
    assert first["sha256"] == second["sha256"] == sha256_file(study / BUNDLE)
    with zipfile.ZipFile(study / BUNDLE) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert set(names) == {
        CRATE_METADATA, "manifest.json", "bundle/config.yaml", "bundle/environment.json", "bundle/code.json",
        "evaluation/summary.csv", "evaluation/per_fold/classical+cvae.csv", "report.html",
        "provenance/evaluation_summary.json",
        "provenance/train_generator.json", "provenance/report.json",
    }
    assert first["referenced"] == 1  # the checkpoint, by sha256 only
    # the study folder with its bundle (and logs) still verifies
    assert verify_study(study) == []


def test_crate_describes_every_file_and_references_intermediates(study, tmp_path):
    _bundle(study, tmp_path / "b.zip")
    unpacked = _unpack(tmp_path / "b.zip", tmp_path / "elsewhere" / "copy")
    graph = {e["@id"]: e for e in json.loads((unpacked / CRATE_METADATA).read_text())["@graph"]}
    root = graph["./"]
    manifest = json.loads((study / "manifest.json").read_text())
    assert root["version"] == manifest["study_version"]
    assert root["datePublished"] == "2026-01-02T11:00:00"  # end of the last job, not the packing time
    assert graph["report.html"]["sha256"] == sha256_file(study / "report.html")
    ref = graph["#artifact/models/cvae/r0f0/checkpoint.pt"]
    assert ref["sha256"] == sha256_file(study / "models/cvae/r0f0/checkpoint.pt")
    assert not (unpacked / "models").exists()
    from rocrate.rocrate import ROCrate

    crate = ROCrate(unpacked)  # the rocrate package reads it back
    assert {e.id for e in crate.data_entities} >= {"report.html", "manifest.json", "bundle/config.yaml"}


def test_verify_an_unpacked_bundle_and_catch_flipped_deleted_and_added_files(study, tmp_path):
    _bundle(study, tmp_path / "b.zip")
    clean = _unpack(tmp_path / "b.zip", tmp_path / "clean")
    assert verify_study(clean) == []  # '+' in a file name: RO-Crate escapes it in @id, verify decodes it

    flipped = shutil.copytree(clean, tmp_path / "flipped")
    data = bytearray((flipped / "evaluation/summary.csv").read_bytes())
    data[3] ^= 1
    (flipped / "evaluation/summary.csv").write_bytes(bytes(data))
    assert verify_study(flipped) == ["changed: evaluation/summary.csv (sha256 differs from the manifest)"]

    config_flip = shutil.copytree(clean, tmp_path / "config_flip")
    (config_flip / "bundle/config.yaml").write_text("study: {name: other}\n")
    assert verify_study(config_flip) == ["changed: bundle/config.yaml (sha256 differs from ro-crate-metadata.json)"]

    deleted = shutil.copytree(clean, tmp_path / "deleted")
    (deleted / "report.html").unlink()
    (deleted / "bundle/environment.json").unlink()
    assert sorted(verify_study(deleted)) == [
        "missing: bundle/environment.json (listed in ro-crate-metadata.json)", "missing: report.html"]

    added = shutil.copytree(clean, tmp_path / "added")
    (added / "evaluation/extra.csv").write_text("x\n")
    (added / "logs").mkdir()
    (added / "logs/smuggled.txt").write_text("x\n")  # in a bundle, logs/ is not exempt
    assert verify_study(added) == ["unexpected: evaluation/extra.csv (not in the manifest)",
                                   "unexpected: logs/smuggled.txt (not in the manifest)"]

    manifest_edit = shutil.copytree(clean, tmp_path / "manifest_edit")
    text = (manifest_edit / "manifest.json").read_text().replace('"tiny"', '"tinY"')
    (manifest_edit / "manifest.json").write_text(text)
    assert verify_study(manifest_edit) == ["changed: manifest.json (sha256 differs from ro-crate-metadata.json)"]

    ref_edit = shutil.copytree(clean, tmp_path / "ref_edit")
    crate = json.loads((ref_edit / CRATE_METADATA).read_text())
    for entity in crate["@graph"]:
        if entity["@id"].startswith("#artifact/"):
            entity["sha256"] = "f" * 64
    (ref_edit / CRATE_METADATA).write_text(json.dumps(crate))
    assert verify_study(ref_edit) == [
        "changed: models/cvae/r0f0/checkpoint.pt (the bundle references another sha256 than the manifest)"]

    (ref_edit / CRATE_METADATA).write_text("{not json")
    with pytest.raises(VerifyError, match="corrupt"):
        verify_study(ref_edit)


def test_intermediates_are_included_on_request(study, tmp_path):
    result = _bundle(study, tmp_path / "full.zip", include_intermediates=True)
    assert result["referenced"] == 0
    unpacked = _unpack(tmp_path / "full.zip", tmp_path / "full")
    assert (unpacked / "models/cvae/r0f0/checkpoint.pt").read_bytes() == bytes(range(256)) * 40
    assert verify_study(unpacked) == []
    assert result["sha256"] != _bundle(study, tmp_path / "lean.zip")["sha256"]


def test_a_changed_or_unfinished_study_is_not_published(study, tmp_path):
    (study / "report.html").write_text("edited")
    with pytest.raises(VerifyError, match="report.html is missing or differs"):
        _bundle(study, tmp_path / "x.zip")
    with pytest.raises(VerifyError, match="finish the study"):
        _bundle(tmp_path / "nothing", tmp_path / "y.zip")
    assert not (tmp_path / "x.zip").exists()


def test_environment_and_code_identity_are_resolved():
    env = environment()
    assert env["packages"]["numpy"] and env["packages"]["rocrate"] == "0.16.0"
    repo = Path(__file__).resolve().parents[2]
    code = code_identity(repo)
    assert len(code["sources_sha256"]) == 64 and code == code_identity(repo)
    assert code_identity(repo / "tests")["git_commit"] in (None, code["git_commit"])
