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
inside a child and inside a draw of a loop already on workers, every loop runs
in the calling process. What a child adds
to a cache the caller names (``keep``) is merged back, so a forest computed
in a child is not grown again by the parent.

Conditions on ``task``: a pure function of its index (its randomness from the
index, no state carried from one draw to the next), returning a picklable
value, and no BLAS threads (:func:`use_workers` holds BLAS and OpenMP at one
thread: a child forked while their threads run could deadlock, and the thread
count could change a decomposition's last bits). Fork is POSIX only; elsewhere the loop
runs in the calling process.
"""

from __future__ import annotations

import contextlib
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

_BUSY = False
"""True while this process runs a :func:`map_draws` with workers."""


def workers() -> int:
    """How many processes :func:`map_draws` may use here: the innermost :func:`use_workers`, else 1."""
    if _IN_CHILD or _BUSY or not _WORKERS or not hasattr(os, "fork"):
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
    without a whole answer (killed) raises :class:`RuntimeError`. Whatever
    ends the call early (a failing draw, a signal), the children still running
    are killed and reaped; and children die with the caller (Linux:
    ``PR_SET_PDEATHSIG``), so a killed job leaves none behind.
    """
    global _BUSY
    k = min(workers(), n)
    if k <= 1:
        return [task(i) for i in range(n)]
    children: list[tuple[int, int]] = []  # (pid, read end) of the children not yet reaped
    parent = os.getpid()
    _BUSY = True  # a draw of this process that calls map_draws computes it here (no second set of workers)
    try:
        for w in range(1, k):
            read_end, write_end = os.pipe()
            sys.stdout.flush(), sys.stderr.flush()  # no buffered text written twice
            try:
                pid = os.fork()
            except BaseException:
                os.close(read_end), os.close(write_end)
                raise
            if pid == 0:  # pragma: no cover - the child's side is measured by its answer
                os.close(read_end)
                for _, other in children:  # the read ends of earlier siblings are the caller's alone
                    os.close(other)
                _child(task, range(w, n, k), write_end, keep, parent)
            os.close(write_end)
            children.append((pid, read_end))
        mine = [task(i) for i in range(0, n, k)]
        answers = []
        while children:
            pid, read_end = children[0]
            data = _read_all(read_end)
            os.close(read_end)
            children.pop(0)  # reaped here, whatever its answer
            answers.append(_answer(pid, data, _reap(pid)))
    finally:
        for pid, read_end in children:  # ended early: stop, close and reap the children still listed
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(read_end)
            _reap(pid)
        _BUSY = False
    values: list[Any] = [None] * n
    values[0::k] = mine
    for w, (theirs, added) in enumerate(answers, start=1):
        values[w::k] = theirs
        if keep is not None:
            keep.update(added)
    return values


def _child(task: Callable[[int], Any], draws: range, write_end: int, keep: MutableMapping | None,
           parent: int) -> None:
    """A forked child: compute ``draws``, send ``("ok", (values, added cache entries))`` or
    ``("error", (exception or None, traceback text))``, and exit."""
    global _IN_CHILD
    _IN_CHILD = True
    _die_with(parent)
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
        with contextlib.suppress(Exception):
            sys.stdout.flush(), sys.stderr.flush()
        os._exit(status)  # never return into the caller's stack, nor run its exit handlers


def _die_with(parent: int) -> None:
    """Have Linux kill this child when ``parent`` (the process, strictly its thread, that forked it) ends;
    end now if it already has. A no-op elsewhere."""
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the request: nobody waits for this child's draws
        os._exit(1)


def _read_all(read_end: int) -> bytes:
    """Everything a child writes to its pipe, up to the child's end (EOF); the pipe is left open."""
    chunks = []
    while chunk := os.read(read_end, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _reap(pid: int) -> int:
    """Wait for child ``pid``; its wait status (0 if it was reaped already)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _answer(pid: int, data: bytes, status: int) -> tuple[list, dict]:
    """The values and cache entries child ``pid`` sent (``data``), given its wait ``status``; its failure
    raised here."""
    code = os.waitstatus_to_exitcode(status) if status else 0
    try:
        kind, payload = pickle.loads(data) if data and code >= 0 else (None, None)
    except Exception:  # noqa: BLE001 - a truncated answer
        kind, payload = None, None
    if kind is None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise RuntimeError(f"a worker process of map_draws (pid {pid}) ended without a whole answer ({how}, "
                           f"{len(data)} bytes sent; killed, e.g. out of memory?)")
    if kind == "error":
        error, text = payload
        if error is None:
            raise RuntimeError(f"a worker process of map_draws (pid {pid}) failed:\n{text}")
        error.add_note(f"raised in a worker process of map_draws (pid {pid}):\n{text}")
        raise error
    return payload


def share_of_cores(index: int, jobs: int, cores: int | None, most: int = 4) -> int:
    """Threads for job ``index`` of ``jobs`` jobs of about equal cost that use their threads fully, on ``cores``.

    The jobs of whole rounds (as many jobs as cores) get one thread each; the jobs
    of the last, partial round share the cores (three jobs on two cores: 1, 1, 2;
    two jobs on eight: 4, 4 with ``most`` 4). A heuristic: Snakemake need not start
    the jobs in this order, and a job of two threads waits for two free cores. At
    most ``most`` threads (the draws' parallel efficiency falls with more workers);
    an unknown core count (None: a cluster executor without --cores) gives 1.
    """
    if not isinstance(cores, int) or cores < 1 or jobs < 1:
        return 1
    whole = jobs - jobs % cores
    if index < whole:
        return 1
    return max(1, min(most, cores // (jobs - whole)))
