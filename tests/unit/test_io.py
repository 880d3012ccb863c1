import numpy as np
import pandas as pd
import pytest

from radaug.errors import RadaugError
from radaug.io import (
    atomic_path,
    concat_csv_text,
    load_arrays,
    save_arrays,
    sha256_file,
    write_csv,
    write_json,
    write_text,
)


def test_save_arrays_is_byte_deterministic(tmp_path):
    arrays = {"image": np.arange(12, dtype=np.float32).reshape(3, 4), "case_id": np.array(["a", "bb", "c"])}
    save_arrays(tmp_path / "a.npz", **arrays)
    save_arrays(tmp_path / "b.npz", **arrays)
    assert sha256_file(tmp_path / "a.npz") == sha256_file(tmp_path / "b.npz")
    back = load_arrays(tmp_path / "a.npz")
    np.testing.assert_array_equal(back["image"], arrays["image"])
    assert back["case_id"].tolist() == ["a", "bb", "c"]


def test_save_arrays_refuses_objects(tmp_path):
    with pytest.raises(TypeError, match="pickled"):
        save_arrays(tmp_path / "x.npz", bad=np.array([{}, 1], dtype=object))


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_json_is_canonical(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_atomic_path_can_keep_the_extension(tmp_path):
    with atomic_path(tmp_path / "image.nii.gz", keep_extension=True) as tmp:
        assert tmp.name.endswith(".tmp.nii.gz") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "image.nii.gz").read_bytes() == b"x"


# --- storage faults: a real full or read-only file system ------------------------------------

def test_disk_full_is_a_storage_error_and_keeps_the_old_file(tmp_path):
    from radaug.errors import StorageError
    from radaug.io import write_bytes

    from ..mounts import tmpfs

    with tmpfs(tmp_path / "small", size="256k") as small:
        target = small / "artifact.csv"
        write_bytes(target, b"finished content\n")
        with pytest.raises(StorageError, match=r"cannot write .*artifact\.csv: No space left.*free space"):
            write_bytes(target, b"x" * (1 << 20))
        assert target.read_bytes() == b"finished content\n"
        assert sorted(p.name for p in small.iterdir()) == ["artifact.csv"]  # no temporary file left


def test_read_only_folder_is_a_storage_error(tmp_path):
    from radaug.errors import StorageError
    from radaug.io import save_arrays

    from ..mounts import remount_read_only, tmpfs

    with tmpfs(tmp_path / "ro", size="256k") as folder:
        save_arrays(folder / "a.npz", x=np.arange(3))
        before = (folder / "a.npz").read_bytes()
        remount_read_only(folder)
        with pytest.raises(StorageError, match=r"cannot write .*a\.npz: Read-only file system.*make the results folder "
                                               r"writable"):
            save_arrays(folder / "a.npz", x=np.arange(5))
        with pytest.raises(StorageError, match=r"b\.csv"):
            write_text(folder / "sub" / "b.csv", "x\n")
        assert (folder / "a.npz").read_bytes() == before


def test_temporaries_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    """SIGKILL skips atomic_path's cleanup; the rerun's write of the same file removes the leftover."""
    from radaug.io import write_text

    stale = tmp_path / ".table.csv.ab12cd_9.tmp"
    stale_ext = tmp_path / ".img.nii.gz.zz99yy00.tmp.nii.gz"
    other = tmp_path / ".table.csv.x.ab12cd_9.tmp"  # a temporary of another file, table.csv.x
    for p in (stale, stale_ext, other):
        p.write_text("half")
    write_text(tmp_path / "table.csv", "a\n")
    with atomic_path(tmp_path / "img.nii.gz", keep_extension=True) as tmp:
        tmp.write_text("image")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".table.csv.x.ab12cd_9.tmp", "img.nii.gz", "table.csv"]


def test_artifacts_get_the_permissions_of_any_new_file(tmp_path):
    """mkstemp creates 0600; a study's results must stay readable for the group (shared clusters)."""
    import os
    import stat

    from radaug.io import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.csv", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o644


def test_csv_parts_join_to_the_bytes_of_the_whole_table(tmp_path):
    whole = pd.DataFrame({"fold": ["r0f0", "r0f0", "r0f1", "r0f2"], "value": [0.1, 1 / 3, np.nan, 2.0],
                          "note": ["a", "line one\nline two", "", "1.0"], "n": [1, 2, 3, 4]})
    write_csv(tmp_path / "whole.csv", whole)
    parts = []
    for key in ("r0f0", "r0f1", "r0f2", "r0f3"):  # r0f3: a part with no rows
        parts.append(tmp_path / f"{key}.csv")
        write_csv(parts[-1], whole[whole["fold"] == key])
    assert concat_csv_text(parts) == (tmp_path / "whole.csv").read_text()
    assert concat_csv_text(parts[-1:]) == "fold,value,note,n\n"


def test_csv_parts_with_other_columns_are_refused(tmp_path):
    write_csv(tmp_path / "a.csv", pd.DataFrame({"x": [1]}))
    write_csv(tmp_path / "b.csv", pd.DataFrame({"y": [1]}))
    with pytest.raises(RadaugError, match="b.csv has the header 'y'.*a.csv has 'x'"):
        concat_csv_text([tmp_path / "a.csv", tmp_path / "b.csv"])
    with pytest.raises(RadaugError, match="no CSV files"):
        concat_csv_text([])
