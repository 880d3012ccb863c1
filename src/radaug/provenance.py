"""Provenance: a record per job, the study manifest, and verification.

* :func:`code_version` hashes a workflow script together with every radaug module
  it imports, transitively (static analysis of imports). Passed to a rule as a
  parameter, it makes Snakemake rerun the rule when library code it depends on
  changes, which Snakemake's own code trigger misses (snakemake issue #2192).
* The job records the manifest joins are written by the Snakemake adapter
  (:func:`radaug.snakemake_adapter.run_job`): rule, wildcards, input and output
  sha256, resolved parameters, seed, code version, package versions, host and times.
* :func:`build_manifest` collects the records of a study into ``manifest.json``;
  the *study version* is the digest of the (path, sha256) list of the study's data
  artifacts, so it is reproducible (timestamps live only in the records).
* :func:`verify_study` re-hashes a study folder or an unpacked bundle and lists
  every changed, missing or unexpected file.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

from .errors import VerifyError
from .io import read_json, sha256_bytes, sha256_file, write_json

PACKAGES = ("radaug", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "SimpleITK",
            "pyradiomics-bhklab", "torch", "snakemake", "matplotlib", "ImageHash")
MANIFEST = "manifest.json"
PROVENANCE_DIR = "provenance"
UNTRACKED_DIRS = ("logs", "publish")  # job logs carry timestamps; publish/ holds the bundle's job record
BUNDLE_FILE = "bundle.zip"  # built from the manifest, so it cannot be listed in it; it carries its own hashes
CRATE_METADATA = "ro-crate-metadata.json"  # the RO-Crate description of a bundle (radaug.bundle)
REFERENCED_TYPE = "radaug:ReferencedArtifact"  # crate entity naming an artifact by sha256, not included
SNAKEMAKE_MARKER = ".snakemake_timestamp"  # written by Snakemake into directory() outputs after a job


# --- code version -------------------------------------------------------------------------

def _radaug_imports(path: Path, package_root: Path) -> set[Path]:
    """Files of radaug modules imported by one source file (absolute and relative imports).

    Cached per file state (size, mtime): Snakemake calls :func:`code_version` once per
    rule while parsing the workflow, and most scripts share the same library modules.
    """
    stat = path.stat()
    return set(_radaug_imports_cached(path, package_root, stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=1024)
def _radaug_imports_cached(path: Path, package_root: Path, size: int, mtime_ns: int) -> frozenset[Path]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    module_parts = None
    if package_root in path.parents:
        rel = path.relative_to(package_root.parent).with_suffix("")
        module_parts = list(rel.parts)
        if module_parts[-1] == "__init__":
            module_parts = module_parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level and module_parts:
                base = module_parts[: len(module_parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    files = set()
    for name in names:
        if name != "radaug" and not name.startswith("radaug."):
            continue
        parts = name.split(".")[1:]
        candidate = package_root.joinpath(*parts)
        for f in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if f.is_file():
                files.add(f)
        # the package __init__ files on the way are imported too
        for i in range(len(parts)):
            init = package_root.joinpath(*parts[:i], "__init__.py")
            if init.is_file():
                files.add(init)
    return frozenset(files)


def code_files(script: str | Path) -> list[Path]:
    """The script and every radaug source file it imports, transitively."""
    package_root = Path(__file__).resolve().parent
    todo, seen = [Path(script).resolve()], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(_radaug_imports(f, package_root) - seen)
    return sorted(seen)


def code_version(script: str | Path) -> str:
    """sha256 over the script and the radaug modules it depends on (path and content)."""
    package_root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in code_files(script):
        name = f.relative_to(package_root.parent) if package_root in f.parents else Path(f.name)
        h.update(str(name).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --- manifest and verification --------------------------------------------------------

def _relative(path: str, study_dir: Path) -> str:
    return os.path.relpath(Path(path).resolve(), study_dir.resolve())


def study_version(artifacts: list[dict]) -> str:
    lines = sorted(f"{a['path']}  {a['sha256']}" for a in artifacts if a["kind"] == "data")
    return sha256_bytes("\n".join(lines).encode())


def build_manifest(study_dir: str | Path, provenance_files) -> dict:
    """Collect job records into the study manifest, re-hashing every artifact.

    Raises
    ------
    VerifyError
        If an artifact changed after the job that wrote it.
    """
    study_dir = Path(study_dir)
    artifacts, jobs = [], []
    for prov in sorted(map(Path, provenance_files)):
        record = read_json(prov)
        rel_prov = _relative(str(prov), study_dir)
        jobs.append({"rule": record["rule"], "wildcards": record["wildcards"], "provenance": rel_prov,
                     "code_version": record["code_version"], "seconds": record["seconds"]})
        for out in record["outputs"]:
            rel = _relative(out["path"], study_dir)
            if rel.startswith(".."):
                continue
            now = sha256_file(out["path"])
            if now != out["sha256"]:
                raise VerifyError(f"{rel} changed after rule {record['rule']} wrote it; rerun that rule.")
            artifacts.append({"path": rel, "sha256": now, "bytes": out["bytes"], "rule": record["rule"],
                              "kind": "data", "provenance": rel_prov})
        artifacts.append({"path": rel_prov, "sha256": sha256_file(prov), "bytes": prov.stat().st_size,
                          "rule": record["rule"], "kind": "provenance", "provenance": rel_prov})
    artifacts.sort(key=lambda a: a["path"])
    return {"format": "radaug-manifest/1", "study": study_dir.name,
            "study_version": study_version(artifacts), "artifacts": artifacts, "jobs": jobs}


def write_manifest(study_dir: str | Path, provenance_files, path: str | Path | None = None) -> dict:
    manifest = build_manifest(study_dir, provenance_files)
    write_json(path or Path(study_dir) / MANIFEST, manifest)
    return manifest


def crate_files(bundle_dir: str | Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Files the RO-Crate of an unpacked bundle describes, and the artifacts it references by hash.

    Returns
    -------
    files, referenced : dict
        Path in the bundle (``@id`` URL-decoded: RO-Crate escapes e.g. ``+`` as
        ``%2B``) → ``{"sha256", "contentSize"}``.

    Raises
    ------
    VerifyError
        ``ro-crate-metadata.json`` is not JSON of the expected shape.
    """
    from urllib.parse import unquote

    path = Path(bundle_dir) / CRATE_METADATA
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))["@graph"]
        files, referenced = {}, {}
        for entity in graph:
            types = entity.get("@type")
            types = types if isinstance(types, list) else [types]
            if "File" in types:
                files[unquote(entity["@id"])] = {"sha256": entity["sha256"], "contentSize": entity["contentSize"]}
            elif entity.get("additionalType") == REFERENCED_TYPE:
                referenced[entity["name"]] = {"sha256": entity["sha256"], "contentSize": entity["contentSize"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise VerifyError(f"{path} is corrupt ({type(exc).__name__}: {exc}); the bundle cannot be verified") from None
    return files, referenced


def verify_study(study_dir: str | Path) -> list[str]:
    """Re-hash a study folder (or unpacked bundle) against its manifest.

    A folder with ``ro-crate-metadata.json`` is an unpacked bundle
    (:mod:`radaug.bundle`), checked wherever it lies: every manifest artifact
    present is re-hashed; one absent must be referenced by the crate with the
    manifest's sha256; every other file the crate lists (``manifest.json``,
    ``bundle/*``) is re-hashed against the crate; any other file is unexpected.
    In a study folder, ``logs/``, ``publish/`` and ``bundle.zip`` are not artifacts.

    Returns
    -------
    list of str
        One line per problem (changed, missing, unexpected file, wrong study version);
        empty when the study verifies.
    """
    study_dir = Path(study_dir)
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise VerifyError(f"{manifest_path} does not exist: is {study_dir} a finished radaug study?")
    try:
        manifest = read_json(manifest_path)
        artifacts = manifest["artifacts"]
        recorded_version = manifest["study_version"]
        version = study_version(artifacts)
    except (ValueError, KeyError, TypeError) as exc:
        raise VerifyError(f"{manifest_path} is corrupt ({type(exc).__name__}: {exc}); the study cannot be verified.") from None
    crate_path = study_dir / CRATE_METADATA
    in_crate, referenced = crate_files(study_dir) if crate_path.is_file() else ({}, {})  # an unpacked bundle
    problems = []
    listed, intact = set(), set()
    root = study_dir.resolve()
    for art in artifacts:
        path = study_dir / art["path"]
        listed.add(art["path"])
        if not path.resolve().is_relative_to(root):
            problems.append(f"escapes: {art['path']} points outside the study folder")
        elif not path.is_file():
            ref = referenced.get(art["path"])
            if ref is None:
                problems.append(f"missing: {art['path']}")
            elif ref["sha256"] != art["sha256"]:
                problems.append(f"changed: {art['path']} (the bundle references another sha256 than the manifest)")
        elif sha256_file(path) != art["sha256"]:
            problems.append(f"changed: {art['path']} (sha256 differs from the manifest)")
        else:
            intact.add(art["path"])
    by_path = {art["path"]: art for art in artifacts}
    for name, entry in sorted(in_crate.items()):
        path = study_dir / name
        if name in by_path:  # re-hashed above against the manifest; the two records must agree
            if by_path[name]["sha256"] != entry["sha256"]:
                problems.append(f"changed: {name} (ro-crate-metadata.json and the manifest disagree on its sha256)")
        elif not path.resolve().is_relative_to(root):
            problems.append(f"escapes: {name} points outside the bundle folder")
        elif not path.is_file():
            problems.append(f"missing: {name} (listed in ro-crate-metadata.json)")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"changed: {name} (sha256 differs from ro-crate-metadata.json)")
    for f in sorted(study_dir.rglob("*")):
        rel = f.relative_to(study_dir).as_posix()
        if in_crate:  # a bundle: every file but the crate metadata itself is described in it
            untracked = rel == crate_path.name
        else:
            untracked = (rel in (MANIFEST, BUNDLE_FILE) or f.name == SNAKEMAKE_MARKER
                         or rel.split("/")[0] in UNTRACKED_DIRS)
        if f.is_file() and not untracked and rel not in listed and rel not in in_crate:
            problems.append(f"unexpected: {rel} (not in the manifest)")
    if version != recorded_version:
        problems.append("manifest: study_version does not match its artifact list (manifest edited)")
    trusted = {art["path"] for art in artifacts if art.get("kind") == "provenance" and art["path"] in intact}
    problems += _record_disagreements(study_dir, manifest, trusted)
    return problems


_JOB_FIELDS = ("rule", "wildcards", "code_version", "seconds")


def _record_disagreements(study_dir: Path, manifest: dict, trusted: set[str]) -> list[str]:
    """Manifest entries that the job records contradict.

    The sha256 of each artifact is checked against the file; this checks the rest
    of the manifest (sizes, producing rules, job list) against the job records it
    was built from (:func:`build_manifest`), so an edit to any field is found. Only
    records in ``trusted`` (present, matching their manifest sha256) are read: a
    record that changed is reported already.
    """
    problems = []
    jobs = {job.get("provenance"): job for job in manifest.get("jobs", [])}
    by_record: dict[str, list[dict]] = {}
    artifact_of = {art["path"]: art for art in manifest["artifacts"]}
    for art in manifest["artifacts"]:
        if art.get("provenance") not in jobs:
            problems.append(f"manifest: {art['path']} names no job of the manifest (manifest edited)")
        elif art.get("kind") == "data":
            by_record.setdefault(art["provenance"], []).append(art)
        elif art.get("kind") != "provenance" or art["path"] != art["provenance"]:
            problems.append(f"manifest: {art['path']} has kind {art.get('kind')!r} (manifest edited)")
    for rel_prov, job in sorted(jobs.items(), key=lambda kv: str(kv[0])):
        if rel_prov not in trusted:
            continue
        record = read_json(study_dir / rel_prov)
        for field in _JOB_FIELDS:
            if job.get(field) != record.get(field):
                problems.append(f"manifest: {field} of job {rel_prov} differs from its record (manifest edited)")
        size = (study_dir / rel_prov).stat().st_size
        if (artifact_of[rel_prov].get("bytes"), artifact_of[rel_prov].get("rule")) != (size, record.get("rule")):
            problems.append(f"manifest: the entry of {rel_prov} differs from the record (manifest edited)")
        outputs = record.get("outputs", [])
        for art in by_record.get(rel_prov, []):
            # Records hold paths as the job saw them (the study folder's path then, a common
            # prefix); the shortest output path ending in the artifact's relative path is its own.
            matches = [o for o in outputs if o["path"] == art["path"] or o["path"].endswith("/" + art["path"])]
            out = min(matches, key=lambda o: len(o["path"])) if matches else None
            if out is None:
                problems.append(f"manifest: {art['path']} is not an output of its job record {rel_prov} "
                                "(manifest edited)")
            elif (out["sha256"], out["bytes"], record["rule"]) != (art["sha256"], art.get("bytes"), art.get("rule")):
                problems.append(f"manifest: the entry of {art['path']} differs from its job record {rel_prov} "
                                "(manifest edited)")
    return problems
