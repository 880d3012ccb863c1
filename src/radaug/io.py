"""File I/O at the edges: atomic writes, deterministic array archives, hashing.

Two rules hold for every artifact radaug writes:

* **Atomic**: content goes to a temporary file in the destination folder, is
  flushed to disk and renamed into place only when complete, so an interrupted
  job never leaves a half-written file that looks finished. A write that fails
  for lack of space or permission raises :class:`~radaug.errors.StorageError`
  naming the file and the fix, and leaves the previous file (if any) untouched.
* **Byte-deterministic**: the same content gives the same bytes (no timestamps in
  archives, sorted keys in JSON), so hashes compare across runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import StorageError

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, keep_extension: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    With ``keep_extension`` the temporary name ends in the real extension (e.g.
    ``.nii.gz``), for writers such as SimpleITK that choose the format from it.
    """
    path = Path(path)
    suffix = ".tmp." + path.name.split(".", 1)[1] if keep_extension and "." in path.name else ".tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise _storage_error(exc, path) from exc
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the mode any new file would
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            raise _storage_error(exc, path) from exc
        raise


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of ``path`` left by a killed writer (SIGKILL skips cleanup).

    Only names :func:`atomic_path` itself makes for this exact target match
    (``.<name>.<8 mkstemp characters>.tmp[.<ext>]``), and a Snakemake job is the
    only writer of its outputs, so no live write is touched.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp(\..+)?")
    with os.scandir(path.parent) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and pattern.fullmatch(entry.name):
                Path(entry.path).unlink(missing_ok=True)


# Errors of the storage rather than of the content: reported as StorageError with a fix.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _storage_error(exc: OSError, path: Path) -> OSError | StorageError:
    if exc.errno not in _STORAGE_ERRNOS:
        return exc
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space (or raise the quota) on that file system and rerun; finished artifacts are kept"
    else:
        fix = "make the results folder writable (or run the study in a writable working directory) and rerun"
    return StorageError(f"cannot write {path}: {os.strerror(exc.errno)}; nothing was replaced. Fix: {fix}.")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically, flushed to disk (fsync) before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def canonical_json(obj) -> str:
    """JSON with sorted keys and fixed separators: equal objects give equal text."""
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False, default=_json_default) + "\n"


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, canonical_json(obj))


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# Columns that are identifiers or labels: always text, even when they look like
# numbers ("001", a class called "1", an all-digit hash), and "" when empty.
TEXT_COLUMNS = ("case_id", "patient_id", "sample_id", "group", "label", "class", "arm", "source", "modality",
                "domain", "image", "mask", "phash", "dup_hash", "dup_thumb", "content_sha256", "image_sha256", "mask_sha256",
                "model_sha256", "spacing", "fold_key")


def read_table(path: str | os.PathLike, contract: str | None = None):
    """Read a radaug CSV table, keeping :data:`TEXT_COLUMNS` as text (empty cells as "").

    ``contract`` names the table's entry in :data:`radaug.tables.CONTRACTS`
    (``"folds"``, ``"arm_verdicts"``, ...): the table is checked to have its
    columns, each of its kind, and a :class:`radaug.tables.TableError` names the
    file and the column otherwise. The check changes nothing that is read.
    """
    import pandas as pd

    table = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False, na_values=[""])
    text = [c for c in TEXT_COLUMNS if c in table.columns]
    table[text] = table[text].fillna("")
    if contract is not None:
        from radaug.tables import check_table

        check_table(table, contract, source=str(path))
    return table


def read_tables(paths, contract: str | None = None):
    """:func:`read_table` of each path, concatenated in order; tables without columns are skipped.

    An empty DataFrame when no path has a table with columns. ``contract``: as
    :func:`read_table`, checked on each table that has columns.
    """
    import pandas as pd

    read = [(path, read_table(path)) for path in paths]
    frames = [table for _, table in read if len(table.columns)]
    if contract is not None:
        from radaug.tables import check_table

        for path, table in read:
            if len(table.columns):
                check_table(table, contract, source=str(path))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


#: What a flag read back from CSV counts as true, in any case and ignoring surrounding spaces:
#: pandas' ``True``, the workflow's ``true`` (``arm_verdicts.csv``), numbers ``1``/``1.0``, ``yes``.
#: Everything else (``False``, ``0``, ``""``, NaN) is false. :func:`truthy` and :func:`is_true` are
#: the one boolean parser: never ``astype(bool)`` a column read from CSV (the text ``"False"`` is true).
TRUE_TEXTS = ("true", "1", "1.0", "yes")


def truthy(values):
    """Booleans of a flag column read from CSV as bool, number or text (:data:`TRUE_TEXTS`).

    A pandas Series keeps its index, so the result can mask or be assigned to its table.

    >>> truthy(["True", "false", 1, "1.0", "", None, "yes", False]).tolist()
    [True, False, True, True, False, False, True, False]
    """
    import pandas as pd

    return pd.Series(values).astype(str).str.strip().str.lower().isin(TRUE_TEXTS)


def is_true(value) -> bool:
    """One flag read from CSV (a cell of a row), as :func:`truthy`.

    >>> is_true("True"), is_true("false"), is_true(float("nan"))
    (True, False, False)
    """
    return str(value).strip().lower() in TRUE_TEXTS


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV atomically, with a fixed float format."""
    write_text(path, frame.to_csv(index=False, lineterminator="\n", float_format="%.10g"))


def concat_csv_text(paths) -> str:
    """The CSV files ``paths`` (each written by :func:`write_csv`) as one CSV text: one header, rows in order.

    Joined as text, not re-read and re-written: every row keeps its exact
    characters (a value re-parsed and re-formatted could change, e.g. a text
    ``1.0`` read as the number 1), so parts of one table written by separate
    jobs join to the bytes one job would have written, given that each column
    has the same type in every part. A part with no rows adds nothing.

    Parameters
    ----------
    paths
        CSV files with the same header line, in the order their rows should appear.

    Returns
    -------
    str
        The first file's header line and every file's rows (also when a row's
        quoted text holds a newline: only the header line is split off).

    Raises
    ------
    RadaugError
        If ``paths`` is empty or the header lines differ (naming both files).
    """
    from .errors import RadaugError

    paths = [Path(p) for p in paths]
    if not paths:
        raise RadaugError("concat_csv_text: no CSV files to join; pass the parts of one table.")
    header, parts = None, []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        first, newline, body = text.partition("\n")
        if header is None:
            header, first_path = first, path
        elif first != header:
            raise RadaugError(f"concat_csv_text: {path} has the header {first[:200]!r}, but {first_path} has "
                              f"{header[:200]!r}; the parts of one table must have the same columns "
                              "(were they written by different code versions? rerun the jobs that wrote them).")
        parts.append(body if newline else "")
    return header + "\n" + "".join(parts)


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save arrays as an ``.npz`` readable by :func:`numpy.load`, byte-deterministically.

    ``numpy.savez`` stamps the current time into the zip headers, so equal arrays
    give different files; here every entry gets a fixed timestamp. Object arrays
    are refused (they would need pickle, which radaug never loads).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; radaug stores no pickled data")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            zf.writestr(info, member.getvalue())
    write_bytes(path, buffer.getvalue())


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` written by :func:`save_arrays` (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_array(arr: np.ndarray) -> str:
    """Content hash of an array: dtype, shape and bytes (layout-independent)."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()
