"""The report compares every backend that ran: Keras on JAX and on PyTorch beside Keras (on
TensorFlow) and PyTorch, each against PyTorch, on a synthetic run (hand-set numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")  # the report extras; absent in a minimal install
pytest.importorskip("matplotlib")

from harness.report import write_report  # noqa: E402
from harness.report.reproduction import AGREE, DIFFERS  # noqa: E402

from .fakes import write_study_job  # noqa: E402

# test accuracy and steady epoch seconds per backend, mlp2 (one seed each)
RUNS = {"keras": (0.970, 2.0), "keras-jax": (0.973, 0.5), "keras-torch": (0.9, 3.0),
        "torch": (0.971, 1.0)}
LATENCY_MS = {"onnxruntime": {1: 0.05, 32: 0.4}, "native": {1: 0.3, 32: 1.0}}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("four") / "run"
    for backend, (accuracy, epoch_s) in RUNS.items():
        write_study_job(run, "mlp2", backend, 0, accuracy, epoch_s, LATENCY_MS)
    return write_report(run)


def _table(report: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / f"{name}.csv", keep_default_na=False,
                       na_values=[""])


def test_study_tables_compare_each_keras_backend_with_pytorch(report: Path) -> None:
    speed = _table(report, "study_mlp_depth_bn_dropout_speed").iloc[0]
    for backend, (_, epoch_s) in RUNS.items():
        if backend != "torch":
            assert speed[f"{backend}_over_torch_epoch_ratio"] == pytest.approx(epoch_s)
    study = _table(report, "study_mlp_depth_bn_dropout")
    row = study[study["spec"] == "mlp2"].iloc[0]
    assert row["delta_pp_keras-jax_vs_torch"] == pytest.approx(0.2)
    assert row["verdict_keras-jax_vs_torch"] == AGREE  # within the 0.5 pp floor
    assert row["delta_pp_keras-torch_vs_torch"] == pytest.approx(-7.1)
    assert row["verdict_keras-torch_vs_torch"] == DIFFERS
    assert row["verdict_frameworks"] == AGREE  # Keras − PyTorch, as before


def test_findings_name_all_four_and_compare_them_with_pytorch(report: Path) -> None:
    text = (report / "report.md").read_text(encoding="utf-8")
    assert "finished in Keras, PyTorch, Keras on JAX and Keras on PyTorch" in text
    jax = next(line for line in text.splitlines()
               if line.startswith("- Keras on JAX − PyTorch"))
    assert "[+0.20 pp]" in jax and "a steady Keras on JAX epoch takes [0.50×]" in jax
    torch = next(line for line in text.splitlines()
                 if line.startswith("- Keras on PyTorch − PyTorch"))
    assert "[-7.10 pp]" in torch and "[0](" in torch and "[3.00×]" in torch
    assert "over Keras on JAX" in text and "over Keras on PyTorch" in text  # ONNX Runtime
    framework = _table(report, "framework")
    assert {f"steady_epoch_s_{backend}" for backend in RUNS} <= set(framework.columns)
