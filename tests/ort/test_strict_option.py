"""`--strict-providers` on `harness bench` and `harness run` reaches the latency code: bench's
call, the run's config, every job (and its resume key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.latency import bench
from harness.run import matrix, plan


@pytest.mark.parametrize(("flag", "expected"), [([], False), (["--strict-providers"], True)])
def test_bench_passes_strict_providers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       flag: list[str], expected: bool) -> None:
    calls: list[dict[str, Any]] = []

    def fake_bench_spec(spec: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"spec": {"name": "mlp2"}, "records": [], "speedups": [], "variants": [],
                "variant_records": []}  # as bench_spec's result: no variants asked for

    monkeypatch.setattr(bench, "bench_spec", fake_bench_spec)
    code = main(["bench", "--spec", "mlp2", "--providers", "cuda", "--out", str(tmp_path),
                 *flag])
    assert code == 3  # nothing ran: the fake recorded nothing
    assert [call["strict_providers"] for call in calls] == [expected]


def test_run_puts_strict_providers_in_every_job(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    configs: list[plan.RunConfig] = []

    def fake_run_matrix(config: plan.RunConfig, out: Path, **options: Any) -> dict[str, Any]:
        configs.append(config)
        return {"ok": 0, "jobs": 0, "failed": [], "unavailable": []}

    monkeypatch.setattr(matrix, "run_matrix", fake_run_matrix)
    assert main(["run", "--specs", "mlp2", "--backends", "torch", "--providers", "cpu,cuda",
                 "--strict-providers", "--out", str(tmp_path)]) == 0
    (config,) = configs
    assert config.strict_providers is True
    strict_jobs = plan.plan_jobs(config).jobs
    plain_jobs = plan.plan_jobs(plan.RunConfig(specs=["mlp2"], backends=["torch"],
                                                   providers=["cpu", "cuda"])).jobs
    assert [job.strict_providers for job in strict_jobs + plain_jobs] == [True, False]
    # a strict run does not reuse the results of a plain one, nor the other way round
    assert strict_jobs[0].config_hash != plain_jobs[0].config_hash
