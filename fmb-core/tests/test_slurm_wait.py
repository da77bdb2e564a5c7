"""``fmb run --executor slurm --wait``: polling with a back-off, one batched squeue per poll (no cluster)."""

from itertools import islice
from types import SimpleNamespace

import pytest

from fmb.executors import slurm as S


def test_poll_delays_grow_by_half_and_stop_at_the_cap():
    got = list(islice(S.poll_delays(), 12))
    want, d = [], 3.0
    for _ in range(12):  # computed independently: 3 * 1.5**i, capped at 60
        want.append(min(d, 60.0))
        d *= 1.5
    assert got == pytest.approx(want)
    assert got[:3] == pytest.approx([3.0, 4.5, 6.75]) and got[-1] == 60.0 and max(got) == 60.0
    assert list(islice(S.poll_delays(2, 2, 5), 4)) == [2, 4, 5, 5]


@pytest.mark.parametrize("bad", [(0, 1.5, 60), (3, 0.9, 60), (3, 1.5, 1)])
def test_poll_delays_refuse_bad_settings(bad):
    with pytest.raises(ValueError):
        next(S.poll_delays(*bad))


def test_wait_polls_once_per_delay_with_one_batched_query(monkeypatch):
    plan = SimpleNamespace(submissions=[{"embed": {"u": {"job": "11"}}, "detect": "12", "analysis": None}])
    queries, slept = [], []
    running = {"job": "12", "task": "", "id": "12", "state": "RUNNING", "reason": "None"}

    def fake_queue(jobs):
        queries.append(list(jobs))
        return [running] if len(queries) < 5 else []  # the jobs end at the fifth poll

    monkeypatch.setattr(S, "queue_states", fake_queue)
    S.wait(plan, sleep=slept.append)
    assert queries == [["11", "12"]] * 5  # every poll asks about all the jobs at once
    assert slept == pytest.approx([3.0, 4.5, 6.75, 10.125])


def test_wait_timeout_is_a_one_line_error(monkeypatch):
    plan = SimpleNamespace(submissions=[{"embed": {}, "detect": "7", "analysis": None}])
    monkeypatch.setattr(S, "queue_states", lambda jobs: [{"state": "PENDING", "reason": "Priority", "id": "7"}])
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(S.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(S.UsageError, match="still running after 25 s"):
        S.wait(plan, timeout=25, sleep=lambda s: None)
