"""Independent draws of one computation on a job's cores, in forked worker processes.

A validation job's cost is hundreds of null draws, each a pure function of its
index: the draw seeds its own generator (``stream_rng(..., draw=draw)``,
:mod:`radaug.seeds`) and reads the job's arrays without changing them. Such a
loop gives the same values whichever process computes a draw, so it can be
split over processes without changing a bit of the result.

:func:`map_draws` is that loop: ``[task(0), ..., task(n - 1)]``, computed by up
to :func:`workers` processes: the calling process and ``workers - 1`` children
forked for the call (copy-on-write: they read the parent's arrays and caches
without copying or pickling them). Draw ``i`` goes to process ``i % k``, so a
loop whose first draws are the costly ones (the detection AUC's forests) still
spreads them; each child sends its values back pickled through a pipe.
Threads, not processes, would leave most of this work (small numpy and
scikit-learn calls, Python in between) serialised on the interpreter lock.

The number of workers is the job's: :func:`use_workers` sets it for a block
(the validation scripts pass Snakemake's ``threads``); outside such a block,
and inside a child, every loop runs in the calling process. What a child adds
to a cache the caller names (``keep``) is merged back, so a forest computed
in a child is not grown again by the parent.

Conditions on ``task``: a pure function of its index (its randomness from the
index, no state carried from one draw to the next), returning a picklable
value, and no BLAS threads (the callers hold ``threadpool_limits(1)``: a
child forked while BLAS threads run could deadlock, and the thread count could
change a decomposition's last bits). Fork is POSIX only; elsewhere the loop
runs in the calling process.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar

T = TypeVar("T")

_WORKERS: list[int] = []
"""The stack of :func:`use_workers` blocks (innermost last); empty: one process."""

_IN_CHILD = False


def workers() -> int:
    """How many processes :func:`map_draws` may use here: the innermost :func:`use_workers`, else 1."""
    if _IN_CHILD or not _WORKERS or not hasattr(os, "fork"):
        return 1
    return _WORKERS[-1]


@contextlib.contextmanager
def use_workers(n: int) -> Iterator[None]:
    """Within the block, :func:`map_draws` computes on up to ``n`` processes (the job's threads), and
    BLAS and OpenMP on one thread in each.

    Snakemake gives a job of ``n`` threads ``OPENBLAS_NUM_THREADS=n``; a
    validation job's values would then depend on its thread count (the last
    bits of its eigendecompositions and distances), and its BLAS threads would
    spin beside the workers. One BLAS thread keeps the values of a one-thread
    job on any number of threads.
    """
    from threadpoolctl import threadpool_limits

    n = int(n)
    if n < 1:
        raise ValueError(f"use_workers: need at least one worker, got {n}")
    _WORKERS.append(n)
    try:
        with threadpool_limits(limits=1):  # BLAS and OpenMP (whose pools are not fork-safe either)
            yield
    finally:
        _WORKERS.pop()


def map_draws(task: Callable[[int], T], n: int, *, keep: MutableMapping | None = None) -> list[T]:
    """``[task(i) for i in range(n)]``, computed on up to :func:`workers` processes.

    ``keep``: a cache ``task`` may add entries to; the entries a child adds are
    added to the caller's after the loop (the caller's own draws add theirs as
    they run). A child's exception is raised here (its traceback in a note;
    as :class:`RuntimeError` if it cannot be pickled); a child that dies
    without an answer (killed) raises :class:`RuntimeError`. Children die with
    the caller (Linux: ``PR_SET_PDEATHSIG``), so a killed job leaves none behind.
    """
    k = min(workers(), n)
    if k <= 1:
        return [task(i) for i in range(n)]
    children: list[tuple[int, int]] = []  # (pid, read end) of the children not yet answered
    gc.freeze()  # the collector of a child then leaves the parent's objects (and their pages) alone
    try:
        for w in range(1, k):
            read_end, write_end = os.pipe()
            sys.stdout.flush(), sys.stderr.flush()  # no buffered text written twice
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's side is measured by its answer
                os.close(read_end)
                _child(task, range(w, n, k), write_end, keep)
            os.close(write_end)
            children.append((pid, read_end))
        mine = [task(i) for i in range(0, n, k)]
        answers = []
        while children:
            answers.append(_answer(*children.pop(0)))
    finally:
        for pid, read_end in children:  # a draw failed: stop and reap the children still running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            os.close(read_end)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        gc.unfreeze()
    values: list[Any] = [None] * n
    values[0::k] = mine
    for w, (theirs, added) in enumerate(answers, start=1):
        values[w::k] = theirs
        if keep is not None:
            keep.update(added)
    return values


def _child(task: Callable[[int], Any], draws: range, write_end: int, keep: MutableMapping | None) -> None:
    """A forked child: compute ``draws``, send ``("ok", (values, added cache entries))`` or
    ``("error", (exception or None, traceback text))``, and exit."""
    global _IN_CHILD
    _IN_CHILD = True
    _die_with_parent()
    status = 0
    try:
        before = set(keep) if keep is not None else set()
        values = [task(i) for i in draws]
        added = {key: value for key, value in keep.items() if key not in before} if keep is not None else {}
        payload = pickle.dumps(("ok", (values, added)), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the caller
        import traceback

        status = 1
        text = "".join(traceback.format_exception(error))
        try:
            payload = pickle.dumps(("error", (error, text)), protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)  # an exception that pickles but cannot be rebuilt goes as text
        except Exception:  # noqa: BLE001
            payload = pickle.dumps(("error", (None, text)), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(status)  # never return into the caller's stack, nor run its exit handlers


def _die_with_parent() -> None:
    """Ask Linux to kill this child when the process that forked it ends (a no-op elsewhere)."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    # (a parent that ended before the request is the orphaned child's parent no more: the pipe's
    # reader is gone too, and the child's write fails and ends it)


def _answer(pid: int, read_end: int) -> tuple[list, dict]:
    """The values and cache entries of child ``pid``, read from ``read_end``; its failure raised here."""
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"a worker process of map_draws (pid {pid}) ended without an answer "
                           f"(wait status {status}; killed, e.g. out of memory?)")
    kind, payload = pickle.loads(data)
    if kind == "error":
        error, text = payload
        if error is None:
            raise RuntimeError(f"a worker process of map_draws (pid {pid}) failed:\n{text}")
        error.add_note(f"raised in a worker process of map_draws (pid {pid}):\n{text}")
        raise error
    return payload
