"""The overview's wall time: the run's span from first start to last finish, beside the sum of
the job times, which jobs run at once (`--workers N`, Ray) make larger than the span."""

from __future__ import annotations

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install

from harness.report.extras import wall_time_text  # noqa: E402


def jobs(*spans: tuple[str | None, str | None, float]) -> pd.DataFrame:
    return pd.DataFrame([{"started_utc": start, "finished_utc": finish, "job_seconds": seconds}
                         for start, finish, seconds in spans])


def test_overlapping_jobs_give_the_span_and_the_larger_sum() -> None:
    text = wall_time_text(jobs(("2024-05-01T10:00:00Z", "2024-05-01T10:02:00Z", 120.0),
                               ("2024-05-01T10:00:00Z", "2024-05-01T10:03:00Z", 180.0)))
    assert text.startswith("3 min 00 s run wall time, first start 2024-05-01 10:00 UTC to last "
                           "finish 2024-05-01 10:03 UTC")
    assert "5 min 00 s sum of job times in 2 jobs" in text


def test_without_start_and_finish_times_only_the_sum_is_given() -> None:
    text = wall_time_text(jobs((None, None, 12.0)))
    assert text.startswith("12.0 s sum of job times in 1 jobs") and "wall time" not in text


def test_no_jobs_no_wall_time() -> None:
    assert wall_time_text(jobs()) == "–"
