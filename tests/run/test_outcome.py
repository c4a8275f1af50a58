"""The lines `harness run` ends with: each job's accuracy, loss, steady epoch with its interval
over epochs (or why there is none), steady step with its interval over the step windows (from
one epoch too), ONNX parity, each framework's step time over PyTorch's, and the next
commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands.run import print_outcomes
from harness.records import folders
from harness.records.io import write_json_atomic
from harness.run.outcome import run_outcomes


def _windows(step_seconds: float, windows: int = 10) -> dict[str, list]:
    """One epoch's windows: a first call (compilation, 0.5 s) then `windows` windows of 10 steps
    each taking `step_seconds` per step, spread by ±4 %."""
    spread = [1.0 + 0.04 * ((i % 5) - 2) / 2 for i in range(windows)]
    return {"window_seconds": [0.5] + [10 * step_seconds * s for s in spread],
            "window_steps": [1] + [10] * windows,
            "window_first_call": [True] + [False] * windows}


def _job(run_dir: Path, job_id: str, epochs: list[float], parity: bool | None = True,
         step_seconds: float | None = None) -> None:
    spec, backend, seed = job_id.split("--")
    folder = folders.job_dir(run_dir, job_id)
    write_json_atomic(folder / folders.JOB_FILE, {
        "schema_version": 1, "kind": "job", "status": "ok",
        "config": {"spec": spec, "backend": backend, "seed": int(seed.removeprefix("seed"))}})
    write_json_atomic(folder / folders.METRICS_FILE, {
        "schema_version": 1, "kind": "train", "test_accuracy": 0.9751, "test_loss": 0.0812,
        "history": [{"epoch": i + 1, "seconds": s,
                     **(_windows(step_seconds) if step_seconds else {})}
                    for i, s in enumerate(epochs)]})
    if parity is not None:
        write_json_atomic(folder / folders.EXPORT_RECORD_FILE, {
            "schema_version": 1, "kind": "export",
            "parity": {"passed": parity, "max_abs_diff": 2.3e-6}})


def test_outcomes_give_the_steady_median_and_its_interval_only_with_enough_epochs(
        tmp_path: Path) -> None:
    _job(tmp_path, "mlp2--torch--seed0", [3.0, 1.0, 1.2, 1.1, 0.9, 1.0])
    _job(tmp_path, "mlp2--keras--seed0", [3.0, 1.5], parity=False)
    _job(tmp_path, "mlp3--keras--seed0", [4.0], parity=None)
    torch, keras, one = run_outcomes(
        tmp_path, ["mlp2--torch--seed0", "mlp2--keras--seed0", "mlp3--keras--seed0",
                   "never--torch--seed0"])
    assert torch.steady_epoch_s == pytest.approx(1.0) and torch.epochs == 6
    low, high = torch.steady_interval
    assert 0.9 <= low <= 1.0 <= high <= 1.2
    assert keras.steady_epoch_s == 1.5 and keras.steady_interval is None
    assert keras.parity == "FAILED (max |Δ| 2.3e-06)" and torch.parity.startswith("passed")
    assert one.steady_epoch_s is None and one.first_epoch_s == 4.0 and one.parity == ""


def test_run_ends_with_the_table_and_the_next_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _job(tmp_path, "mlp2--torch--seed0", [3.0, 1.0, 1.2, 1.1], step_seconds=0.002)
    _job(tmp_path, "mlp2--keras--seed0", [4.0], parity=None, step_seconds=0.003)
    write_json_atomic(tmp_path / folders.RUN_FILE, {
        "schema_version": 1, "kind": "run",
        "jobs": [{"job_id": "mlp2--torch--seed0"}, {"job_id": "mlp2--keras--seed0"}]})
    print_outcomes(tmp_path)
    out = capsys.readouterr().out
    assert "mlp2--torch--seed0" in out and "0.9751" in out and "0.0812" in out
    assert "1.1 s [" in out and "(median of 3)" in out
    assert "1 epoch: no steady one" in out
    assert "2.00 ms [" in out and "3.00 ms [" in out  # one epoch is enough for a step figure
    ratio = next(line for line in out.splitlines() if line.startswith("mlp2: "))
    assert ratio.startswith("mlp2: Keras ÷ PyTorch per training step 1.50x (95 % CI ")
    assert "from separate jobs, not interleaved: an estimate, no verdict" in ratio
    assert f"harness report {tmp_path}" in out and f"harness retime {tmp_path}" in out


def test_step_time_leaves_compilation_and_warm_up_out_and_old_records_have_none(
        tmp_path: Path) -> None:
    _job(tmp_path, "mlp2--torch--seed0", [3.0], step_seconds=0.002)
    _job(tmp_path, "mlp2--keras--seed0", [3.0])  # a record written before step windows
    windowed, old = run_outcomes(tmp_path, ["mlp2--torch--seed0", "mlp2--keras--seed0"])
    assert windowed.step is not None and old.step is None
    # the 0.5 s first call and the first steady window are out: 9 windows of ~2 ms a step
    assert windowed.step.windows == 9 and windowed.step.excluded == 2
    assert windowed.step.median == pytest.approx(0.002, rel=0.05)
    assert windowed.step.low <= windowed.step.median <= windowed.step.high
