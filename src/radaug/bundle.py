"""The publishable study bundle: one deterministic zip that is an RO-Crate.

:func:`write_bundle` packs a finished study (one with ``manifest.json``) into
``bundle.zip``, a `Research Object Crate <https://w3id.org/ro/crate>`_ (Soiland-Reyes
et al. 2022, doi:10.3233/DS-210053) written with the ``rocrate`` package:

* every artifact of the manifest (summaries, per-fold tables, feature tables,
  report, job records) at its study-relative path, plus ``manifest.json``;
* large intermediates (:data:`INTERMEDIATE_DIRS`: checkpoints, synthetic sets,
  preprocessed patches, generated phantom images) either included too or, by
  default, only *referenced*: listed in the crate with their sha256 and size;
* ``bundle/config.yaml`` (the resolved study configuration),
  ``bundle/environment.json`` (Python, platform and every installed package with
  its version) and ``bundle/code.json`` (radaug version, git commit and the sha256
  of the library and workflow sources);
* ``ro-crate-metadata.json``, describing every file with its sha256 and size.

The zip is deterministic: entries sorted by name, a fixed timestamp and mode, and
fixed compression, and the crate's ``datePublished`` is the end time of the
study's last job, so packing the same study folder twice gives the same bytes.
``radaug verify`` accepts the unpacked bundle in any folder
(:func:`radaug.provenance.verify_study`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

from .errors import VerifyError
from .io import atomic_path, read_json, sha256_file, write_text
from .provenance import BUNDLE_FILE as BUNDLE
from .provenance import CRATE_METADATA, MANIFEST, REFERENCED_TYPE

BUNDLE_DIR = "bundle"
"""Folder, inside the bundle, of the files that are not study artifacts (config, environment, code)."""
INTERMEDIATE_DIRS = ("models", "synthetic", "cases", "phantom", "report")
"""Top-level study folders of large intermediates: included only with ``include_intermediates``."""
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def environment() -> dict:
    """The resolved software environment: Python, platform and every installed distribution."""
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name] = dist.version
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
    }


def code_identity(repo_dir: str | Path) -> dict:
    """The code a study ran with: radaug version, git commit and a hash of the sources.

    ``sources_sha256`` covers ``src/radaug/**/*.py``, ``workflow/**`` and ``Snakefile``
    (path and content), so it identifies the code even without git. ``git_commit``
    and ``git_dirty`` are ``None`` when ``repo_dir`` is not a git checkout.
    """
    repo_dir = Path(repo_dir)
    files = sorted(
        [*repo_dir.glob("src/radaug/**/*.py"), *(p for p in repo_dir.glob("workflow/**/*") if p.is_file()),
         *repo_dir.glob("Snakefile")],
        key=lambda p: p.relative_to(repo_dir).as_posix(),
    )
    digest = hashlib.sha256()
    for f in files:
        if "__pycache__" in f.parts:
            continue
        digest.update(f.relative_to(repo_dir).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    commit = dirty = None
    try:
        commit = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                text=True, encoding="utf-8", errors="replace", check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--", "src", "workflow",
                                 "Snakefile"], capture_output=True, text=True, encoding="utf-8", errors="replace",
                                check=True).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        version = importlib.metadata.version("radaug")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"radaug": version, "git_commit": commit, "git_dirty": dirty, "sources_sha256": digest.hexdigest()}


def _is_intermediate(path: str) -> bool:
    return path.split("/", 1)[0] in INTERMEDIATE_DIRS


def _date_published(study_dir: Path, manifest: dict) -> str:
    """End time of the study's last job (from the job records): reproducible for a given study."""
    ends = []
    for job in manifest.get("jobs", []):
        record = study_dir / job["provenance"]
        if record.is_file():
            ends.append(read_json(record).get("finished", ""))
    return max(ends) if ends and max(ends) else "1980-01-01T00:00:00+0000"


def bundle_entries(study_dir: str | Path, *, include_intermediates: bool = False) -> tuple[list[dict], list[dict]]:
    """The manifest artifacts a bundle includes and those it only references.

    Returns
    -------
    included, referenced : list of dict
        Manifest artifact entries (``path, sha256, bytes, rule, kind``), sorted by path.

    Raises
    ------
    VerifyError
        The study has no manifest, or an artifact no longer matches it (run
        ``radaug verify`` and rerun the study).
    """
    study_dir = Path(study_dir)
    manifest_path = study_dir / MANIFEST
    if not manifest_path.is_file():
        raise VerifyError(f"{manifest_path} does not exist: finish the study (snakemake) before publishing it")
    artifacts = sorted(read_json(manifest_path)["artifacts"], key=lambda a: a["path"])
    included, referenced = [], []
    for art in artifacts:
        if _is_intermediate(art["path"]) and not include_intermediates:
            referenced.append(art)
            continue
        path = study_dir / art["path"]
        if not path.is_file() or sha256_file(path) != art["sha256"]:
            raise VerifyError(
                f"{art['path']} is missing or differs from {MANIFEST}; run 'radaug verify {study_dir}' "
                "and rerun the study before publishing"
            )
        included.append(art)
    return included, referenced


def _crate_metadata(study_name: str, manifest: dict, date: str, files: dict[str, Path],
                    described: dict[str, dict], referenced: list[dict]) -> str:
    """``ro-crate-metadata.json`` text for the files (archive path → source), built with rocrate."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    root = crate.root_dataset
    root["name"] = f"radaug study {study_name}"
    root["description"] = (
        "Radiomics data-augmentation study made with radaug: configuration, manifest with every "
        "artifact's sha256, evaluation and validation summaries, report, environment and code version."
    )
    root["identifier"] = manifest["study_version"]
    root["version"] = manifest["study_version"]
    root["datePublished"] = date
    for arcname in sorted(files):
        props = {"name": arcname, "sha256": sha256_file(files[arcname]),
                 "contentSize": files[arcname].stat().st_size, **described.get(arcname, {})}
        crate.add_file(str(files[arcname]), dest_path=arcname, properties=props)
    for art in referenced:
        crate.add(ContextEntity(crate, f"#artifact/{art['path']}", properties={
            "@type": "CreativeWork", "additionalType": REFERENCED_TYPE, "name": art["path"],
            "sha256": art["sha256"], "contentSize": art["bytes"],
            "description": f"Not included (written by rule {art['rule']}); identified by its sha256.",
        }))
    metadata = crate.metadata.generate()
    return json.dumps(metadata, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_bundle(
    study_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    config: dict,
    include_intermediates: bool = False,
    env: dict | None = None,
    code: dict | None = None,
) -> dict:
    """Pack a finished study into a deterministic RO-Crate zip.

    Parameters
    ----------
    study_dir
        The study folder (``results/<study>``) with ``manifest.json``.
    out_path
        The zip to write (atomically); default ``<study_dir>/bundle.zip``.
    config
        The resolved study configuration (written as ``bundle/config.yaml``).
    include_intermediates
        Include :data:`INTERMEDIATE_DIRS` artifacts rather than referencing them by sha256.
    env, code
        :func:`environment` and :func:`code_identity` records; computed when ``None``.

    Returns
    -------
    dict
        ``path``, ``sha256`` of the zip, ``files`` (entries in it) and ``referenced``
        (artifacts listed by hash only).
    """
    study_dir = Path(study_dir)
    out_path = Path(out_path) if out_path else study_dir / BUNDLE
    included, referenced = bundle_entries(study_dir, include_intermediates=include_intermediates)
    manifest = read_json(study_dir / MANIFEST)
    env = environment() if env is None else env
    code = code_identity(Path(__file__).resolve().parents[2]) if code is None else code
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        extras = {
            f"{BUNDLE_DIR}/config.yaml": yaml.safe_dump(config, sort_keys=True, allow_unicode=True),
            f"{BUNDLE_DIR}/environment.json": json.dumps(env, indent=1, sort_keys=True) + "\n",
            f"{BUNDLE_DIR}/code.json": json.dumps(code, indent=1, sort_keys=True) + "\n",
        }
        files = {a["path"]: study_dir / a["path"] for a in included}
        files[MANIFEST] = study_dir / MANIFEST
        for name, text in extras.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_text(target, text)
            files[name] = target
        described = {
            MANIFEST: {"description": "Every study artifact with sha256, producing rule and job record; "
                                      "study_version is its digest."},
            f"{BUNDLE_DIR}/config.yaml": {"description": "Resolved study configuration (defaults filled in)."},
            f"{BUNDLE_DIR}/environment.json": {"description": "Python, platform and installed package versions."},
            f"{BUNDLE_DIR}/code.json": {"description": "radaug version, git commit and sha256 of the sources."},
        }
        described.update({a["path"]: {"description": f"Written by rule {a['rule']}."} for a in included})
        metadata = _crate_metadata(str(config["study"]["name"]), manifest, _date_published(study_dir, manifest),
                                   files, described, referenced)
        names = sorted([*files, CRATE_METADATA])
        with atomic_path(out_path) as tmp_zip:
            with zipfile.ZipFile(tmp_zip, "w") as archive:
                for name in names:
                    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    info.create_system = 3  # unix, whatever the host
                    if name == CRATE_METADATA:
                        archive.writestr(info, metadata.encode("utf-8"), compresslevel=6)
                    else:
                        with open(files[name], "rb") as src, archive.open(info, "w") as dst:
                            while chunk := src.read(1 << 20):
                                dst.write(chunk)
    return {"path": str(out_path), "sha256": sha256_file(out_path), "files": len(names),
            "referenced": len(referenced)}
