"""radaug.parallel: a job's null draws on forked workers, the values of one process on any number."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from radaug import parallel
from radaug.parallel import map_draws, use_workers


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 50])
def test_the_draws_come_back_in_order_whatever_the_workers(workers, n):
    with use_workers(workers):
        assert map_draws(lambda i: (i, i * i), n) == [(i, i * i) for i in range(n)]
    assert _no_child_left()


def test_draws_run_in_forked_processes_only_inside_a_block_and_never_nest():
    me = os.getpid()
    assert set(map_draws(lambda i: os.getpid(), 6)) == {me}  # outside a block: this process
    with use_workers(3):
        pids = map_draws(lambda i: os.getpid(), 6)
        assert pids[0::3] == [me, me] and len(set(pids)) == 3  # draw i in process i % 3
        # a draw may not fork again, in a child or in the caller: one set of workers
        assert map_draws(lambda i: parallel.workers(), 6) == [1] * 6
        nested = map_draws(lambda i: set(map_draws(lambda j: os.getpid(), 3)), 3)
        assert all(len(pids) == 1 for pids in nested)
        with use_workers(1):
            assert set(map_draws(lambda i: os.getpid(), 4)) == {me}
    assert parallel.workers() == 1
    with pytest.raises(ValueError, match="at least one worker"):
        with use_workers(0):
            pass


def test_a_block_holds_blas_to_one_thread_and_gives_it_back():
    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with use_workers(2):
        assert set(blas_threads()) <= {1}
        assert map_draws(lambda i: blas_threads(), 2)[1] == [1] * len(before)  # in the child too
    assert blas_threads() == before


def test_a_childs_error_is_raised_in_the_caller_with_its_traceback():
    def task(i):
        if i == 1:
            raise KeyError(f"draw {i} failed")
        return i

    with use_workers(2), pytest.raises(KeyError, match="draw 1 failed") as raised:
        map_draws(task, 4)
    assert any("raised in a worker process" in note and "task" in note for note in raised.value.__notes__)
    assert _no_child_left()

    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    def bad(i):
        if i == 1:
            raise Unpicklable("local")
        return i

    with use_workers(2), pytest.raises(RuntimeError, match="(?s)failed:.*Unpicklable"):
        map_draws(bad, 2)
    assert _no_child_left()


def test_a_killed_child_and_a_failing_caller_leave_no_process_behind():
    def killed(i):
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return i

    with use_workers(2), pytest.raises(RuntimeError, match="ended without a whole answer .killed by signal 9"):
        map_draws(killed, 2)
    assert _no_child_left()

    def caller_fails(i):
        if i == 0:
            raise ValueError("the caller's own draw")
        import time

        time.sleep(30)  # a child still working when the caller fails: killed, not waited for
        return i

    import time

    started = time.monotonic()
    with use_workers(2), pytest.raises(ValueError, match="own draw"):
        map_draws(caller_fails, 2)
    assert time.monotonic() - started < 10
    assert _no_child_left()


def test_a_signal_that_ends_the_wait_kills_and_reaps_the_children():
    import time

    def raise_alarm(signum, frame):
        raise TimeoutError("alarm")

    def slow(i):
        if i:
            time.sleep(30)
        return i

    previous = signal.signal(signal.SIGALRM, raise_alarm)
    started = time.monotonic()
    try:
        signal.alarm(1)
        with use_workers(3), pytest.raises(TimeoutError):
            map_draws(slow, 3)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10
    assert _no_child_left()


def test_a_truncated_or_missing_answer_names_how_the_child_ended():
    import pickle

    whole = pickle.dumps(("ok", ([1.0, 2.0], {})))
    assert parallel._answer(1, whole, 0) == ([1.0, 2.0], {})
    with pytest.raises(RuntimeError, match=r"without a whole answer \(killed by signal 9, 5 bytes sent"):
        parallel._answer(1, whole[:5], 9)  # wait status 9: killed by SIGKILL
    with pytest.raises(RuntimeError, match=r"without a whole answer \(exit code 0, 5 bytes sent"):
        parallel._answer(1, whole[:5], 0)
    with pytest.raises(RuntimeError, match=r"exit code 3, 0 bytes"):
        parallel._answer(1, b"", 3 << 8)


@pytest.mark.parametrize("jobs, cores, threads", [
    (3, 2, [1, 1, 2]), (5, 2, [1, 1, 1, 1, 2]), (4, 2, [1, 1, 1, 1]), (5, 4, [1, 1, 1, 1, 4]),
    (6, 4, [1, 1, 1, 1, 2, 2]), (2, 8, [4, 4]), (1, 2, [2]), (3, None, [1, 1, 1]), (3, 1, [1, 1, 1]),
])
def test_the_last_partial_round_of_jobs_shares_the_cores(jobs, cores, threads):
    assert [parallel.share_of_cores(i, jobs, cores) for i in range(jobs)] == threads


def test_what_children_add_to_a_named_cache_comes_back():
    cache = {"old": 0}

    def task(i):
        cache[f"draw{i}"] = i * 10
        return i

    with use_workers(3):
        assert map_draws(task, 5, keep=cache) == list(range(5))
    assert cache == {"old": 0, **{f"draw{i}": i * 10 for i in range(5)}}


def test_a_validation_cell_gives_the_same_table_on_one_and_on_three_workers():
    """Every null path of a cell (permutation, exchange, split null, power with forests, the comparisons), with
    patches, other classes and the detection AUC: bit for bit the values of one process."""
    from radaug.validate import summary
    from radaug.validate.summary import Patches, split_null_arrays, validate_arm

    rng = np.random.default_rng(5)
    features = [f"f{i}" for i in range(4)]

    def rows(n, shift=0.0):
        z = rng.normal(size=(n, 1))
        return pd.DataFrame(shift + z + 0.5 * rng.normal(size=(n, 4)), columns=features)

    def patch_cell(n, size=8):
        grid = np.hypot(*np.meshgrid(np.arange(size) - size / 2, np.arange(size) - size / 2))
        masks = (grid[None] <= rng.uniform(1.5, 3.5, size=n)[:, None, None]).astype(np.uint8)
        return 40 + 10 * rng.normal(size=(n, size, size)) + 30 * masks, masks

    train, holdout, cand, other = rows(24), rows(10), rows(24, 0.4), rows(24, 1.0)
    (ti, tm), (hi, hm), (ci, cm) = (patch_cell(n) for n in (24, 10, 24))
    options = dict(feature_columns=features, seed=4, train_other=other, patches=Patches(ti, tm, hi, hm, ci, cm, None),
                   detection=True, null_splits=30, power_repeats=4, null_detection_splits=4, rule="null")
    tables, nulls = [], []
    for workers in (1, 3):
        summary.clear_caches()
        with summary.shared_split_nulls() as shared, use_workers(workers):
            tables.append(validate_arm(train, holdout, cand, **options))
        nulls.append(split_null_arrays(shared))
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert nulls[0].keys() == nulls[1].keys() and nulls[0]
    for key in nulls[0]:
        np.testing.assert_array_equal(nulls[0][key], nulls[1][key], err_msg=key)
    judged = tables[0].set_index("metric")
    assert judged.loc["detection_auc", "verdict_rule"] == "null" and judged["min_detectable"].astype(bool).any()
    assert _no_child_left()


def test_the_workflow_reads_the_core_count_without_requiring_one():
    """``workflow.cores`` raises without --cores (a cluster executor): a rule's threads built on it would stop
    a SLURM run at its first validation job. The rules read ``resource_settings.cores`` (None there)."""
    from ..conftest import REPO

    rules = [REPO / "Snakefile", *(REPO / "workflow/rules").glob("*.smk")]
    read = [path.name for path in rules  # (named in a docstring as ``workflow.cores``: not a read)
            if re.search(r"(?<!`)\bworkflow\.cores\b(?!`)", path.read_text(encoding="utf-8"))]
    assert not read
    assert "share_of_cores(index, jobs, workflow.resource_settings.cores)" in (
        REPO / "workflow/rules/common.smk").read_text(encoding="utf-8")
