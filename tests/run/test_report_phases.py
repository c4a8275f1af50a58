"""The report shows where a job's time goes: each part of it (job.json `phases`), per
backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.records import folders
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig

from .stand_in import StandIn

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def test_the_report_breaks_each_backends_job_time_into_its_parts(tmp_path: Path) -> None:
    from harness.records.io import read_json, write_json_atomic
    from harness.report import write_report

    out, stand_in = tmp_path / "run", StandIn(tmp_path)
    config = RunConfig(specs=["mlp2", "mlp3"], backends=["keras", "torch"], batch_sizes=[1])
    run_matrix(config, out, show=lambda line: None,
               executor=LocalExecutor(command=stand_in.command))
    for number, folder in enumerate(folders.finished_job_dirs(out)):  # as real jobs record
        record = read_json(folder / folders.JOB_FILE)
        record["phases"] = {name: float(number + 1) for name in folders.JOB_PHASES}
        record["phases"]["total"] = float(len(folders.JOB_PHASES) * (number + 1))
        write_json_atomic(folder / folders.JOB_FILE, record)

    report = write_report(out)
    table = pd.read_csv(report / "tables" / "job_phases.csv").set_index("backend")
    # keras jobs are the 1st and 3rd folders (mlp2--keras, mlp3--keras): 1 and 3 s a part
    assert table.loc["keras", "jobs"] == 2 and table.loc["keras", "phase_epochs_s"] == 2.0
    assert table.loc["torch", "phase_total_s"] == 3.0 * len(folders.JOB_PHASES)
    text = (report / "report.md").read_text()
    assert "native vs ONNX Runtime on the test set" in text  # the parts are explained
