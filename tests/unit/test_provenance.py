
import pytest

from radaug.io import write_json, write_text
from radaug.provenance import code_files, code_version, verify_study, write_manifest

from ..conftest import REPO


def test_code_version_covers_transitive_library_imports():
    files = {p.name for p in code_files(REPO / "workflow/scripts/train_generator.py")}
    # the script imports radaug.splits, which imports radaug.errors; generative pulls in its models
    assert {"train_generator.py", "splits.py", "errors.py", "io.py", "cvae.py"} <= files
    assert "report.py" not in files
    # what only sampling uses (the shape model, the classical transforms) does not retrain every generator
    paths = {str(p) for p in code_files(REPO / "workflow/scripts/train_generator.py")}
    assert not {"shape.py", "arm.py"} & files and not any("/augment/" in p for p in paths)
    assert "shape.py" in {p.name for p in code_files(REPO / "workflow/scripts/sample_synthetic.py")}


def test_code_version_changes_with_an_imported_module(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from radaug.sampling import rebalancing_quotas\n")
    before = code_version(script)
    script.write_text("from radaug.sampling import rebalancing_quotas  # edited\n")
    assert code_version(script) != before


def _study(tmp_path):
    study = tmp_path / "study"
    write_text(study / "a/data.csv", "x,y\n1,2\n")
    write_text(study / "b.txt", "hello")
    record = {"rule": "r", "wildcards": {}, "code_version": "c", "seconds": 1.0, "outputs": [
        {"path": str(study / "a/data.csv"), "sha256": None, "bytes": 8},
        {"path": str(study / "b.txt"), "sha256": None, "bytes": 5}]}
    from radaug.io import sha256_file
    for out in record["outputs"]:
        out["sha256"] = sha256_file(out["path"])
    write_json(study / "provenance/r.json", record)
    write_text(study / "logs/r.log", "timestamps")
    manifest = write_manifest(study, [study / "provenance/r.json"])
    return study, manifest


def test_manifest_lists_artifacts_and_verifies(tmp_path):
    study, manifest = _study(tmp_path)
    paths = {a["path"]: a["kind"] for a in manifest["artifacts"]}
    assert paths == {"a/data.csv": "data", "b.txt": "data", "provenance/r.json": "provenance"}
    assert verify_study(study) == []


@pytest.mark.parametrize("tamper, expected", [
    (lambda s: (s / "b.txt").write_bytes(b"hellp"), "changed: b.txt"),
    (lambda s: (s / "a/data.csv").unlink(), "missing: a/data.csv"),
    (lambda s: (s / "extra.csv").write_text("1"), "unexpected: extra.csv"),
    (lambda s: (s / "provenance/r.json").write_text("{}"), "changed: provenance/r.json"),
])
def test_verify_reports_each_kind_of_tampering(tmp_path, tamper, expected):
    study, _ = _study(tmp_path)
    tamper(study)
    problems = verify_study(study)
    assert any(p.startswith(expected) for p in problems), problems


def test_study_version_is_reproducible_and_ignores_records(tmp_path):
    study, first = _study(tmp_path / "one")
    again, second = _study(tmp_path / "two")
    assert first["study_version"] == second["study_version"]


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    from radaug.errors import VerifyError

    study, _ = _study(tmp_path)
    (study / "manifest.json").write_text('{"artifacts": [')
    with pytest.raises(VerifyError, match="corrupt"):
        verify_study(study)


def test_artifact_paths_may_not_escape_the_study(tmp_path):
    import json

    study, manifest = _study(tmp_path)
    (tmp_path / "outside.txt").write_text("x")
    manifest["artifacts"].append({"path": "../outside.txt", "sha256": "0", "bytes": 1, "kind": "provenance"})
    (study / "manifest.json").write_text(json.dumps(manifest))
    assert any(p.startswith("escapes: ../outside.txt") for p in verify_study(study))


def test_code_files_cache_follows_an_edited_script(tmp_path):
    """code_version parses each file once per process (cached), yet sees a script edited in between."""
    script = tmp_path / "job.py"
    script.write_text("from radaug.io import write_json\n")
    before = {f.name for f in code_files(script)}
    assert code_files(script) == code_files(script)  # the cached answer is the same
    script.write_text("from radaug.io import write_json\nfrom radaug.splits import fold_key\n# longer\n")
    after = {f.name for f in code_files(script)}
    assert "splits.py" in after and "splits.py" not in before


@pytest.mark.parametrize("edit, expected", [
    (lambda m: m["artifacts"][0].update(bytes=9), "manifest: the entry of a/data.csv differs from its job record"),
    (lambda m: m["artifacts"][1].update(rule="other"), "manifest: the entry of b.txt differs from its job record"),
    (lambda m: m["artifacts"][2].update(bytes=1), "manifest: the entry of provenance/r.json differs from the record"),
    (lambda m: m["jobs"][0].update(seconds=0.5), "manifest: seconds of job provenance/r.json differs from its record"),
    (lambda m: m["jobs"][0].update(code_version="x"), "manifest: code_version of job provenance/r.json differs"),
    (lambda m: m["artifacts"][0].update(provenance="provenance/q.json"), "manifest: a/data.csv names no job"),
    (lambda m: m["artifacts"][0].update(kind="provenance"), "manifest: a/data.csv has kind 'provenance'"),
])
def test_verify_checks_every_manifest_field_against_the_job_records(tmp_path, edit, expected):
    """Edits that leave every sha256 and the study_version intact are found all the same."""
    import json

    study, manifest = _study(tmp_path)
    assert [a["path"] for a in manifest["artifacts"]] == ["a/data.csv", "b.txt", "provenance/r.json"]
    edit(manifest)
    (study / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_study(study)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_data_artifact_that_no_record_wrote_is_found(tmp_path):
    import json

    from radaug.provenance import study_version

    study, manifest = _study(tmp_path)
    write_text(study / "c.txt", "planted")
    from radaug.io import sha256_file

    manifest["artifacts"].append({"path": "c.txt", "sha256": sha256_file(study / "c.txt"), "bytes": 7, "rule": "r",
                                  "kind": "data", "provenance": "provenance/r.json"})
    manifest["study_version"] = study_version(manifest["artifacts"])  # a careful forger updates the version
    (study / "manifest.json").write_text(json.dumps(manifest))
    assert verify_study(study) == ["manifest: c.txt is not an output of its job record provenance/r.json "
                                   "(manifest edited)"]


@pytest.mark.parametrize("error, in_log, traceback", [
    (ValueError("shape mismatch"), "ValueError: shape mismatch", True),
    (__import__("radaug.errors").errors.SamplingError("train longer"), "SamplingError: train longer", False),
])
def test_a_failing_job_says_why_in_its_log_file(tmp_path, error, in_log, traceback):
    """The log Snakemake points to after a failure holds the error: with its traceback unless it is ours."""
    from types import SimpleNamespace

    from radaug.snakemake_adapter import run_job

    log_file = tmp_path / "logs/job.log"
    smk = SimpleNamespace(rule="r", log=[str(log_file)])

    def main(_):
        raise error

    with pytest.raises(SystemExit) as exit_info:
        run_job(smk, main)
    assert exit_info.value.code == 1
    text = log_file.read_text()
    assert in_log in text
    assert ("Traceback" in text) is traceback
