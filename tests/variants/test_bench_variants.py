"""`harness bench --compile eager,compiled --ort-variants all` on a tiny trained spec: every
combination is printed and written with its accuracy, memory and file, the accuracy gate marks
a deliberately broken variant, and what cannot run here is `unavailable` with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from harness.cli import main  # noqa: E402
from harness.latency.variants import FAILS_ACCURACY, ORT_VARIANTS  # noqa: E402
from harness.records.io import read_json  # noqa: E402

from .conftest import always_class_zero  # noqa: E402

COMMON = ["--backends", "torch", "--providers", "cpu,cuda", "--batch-sizes", "1,2",
          "--warmup", "0", "--min-runs", "1", "--min-seconds", "0", "--threads", "1",
          "--limit-test", "300"]


@pytest.fixture(scope="module")
def every_variant(trained_run: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[int, str, dict[str, Any]]:
    from harness.latency.variants import files

    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(files.BUILDERS, "int8-dynamic", always_class_zero)
        from harness.commands import common

        lines: list[str] = []
        patch.setattr(common.console, "print", lambda *a, **k: lines.append(_text(a)))
        code = main(["bench", "--from", str(trained_run), *COMMON, "--compile",
                     "eager,compiled", "--ort-variants", "all", "--out", str(out)])
    return code, "\n".join(lines), read_json(out / "tiny_mlp.latency.json")


def _text(items: tuple[Any, ...]) -> str:
    """What rich would print for a table or a line, at full width."""
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    Console(file=buffer, width=400).print(*items)
    return buffer.getvalue()


def test_every_combination_is_written_with_accuracy(every_variant) -> None:
    code, _, result = every_variant
    assert code == 0
    entries = {entry["variant"]: entry for entry in result["variants"]}
    assert set(entries) == {*ORT_VARIANTS, "eager", "compiled"}
    records = [*result["records"], *result["variant_records"]]
    combos = {(r["variant"], r["provider"], r["mode"], r["batch_size"]) for r in records}
    for variant in entries:
        modes = ("native",) if variant in ("eager", "compiled") else ("session_run",)
        for batch in (1, 2):
            assert (variant, "cpu", modes[0], batch) in combos
            assert any(c[0] == variant and c[1] == "cuda" and c[3] == batch for c in combos)
    for name, entry in entries.items():
        cpu = entry["accuracy"]["cpu"]
        if name == "fp16":  # a CUDA-provider variant: built and checked, timed on CUDA only
            assert cpu["status"] == "unavailable" and "cuda" in cpu["reason"]
            assert entry["onnx"]["checker"] == "passed (full_check)"
            continue
        assert cpu["status"] == "ok" and cpu["n"] == 300
        assert 0 <= cpu["accuracy"] <= 1 and cpu["loss"] > 0
        assert cpu["gate"]["threshold"] == 0.99
    assert entries["eager"]["reference_accuracy"] > 0.5  # trained: the gate means something


def test_the_gate_marks_the_broken_variant_and_only_it(every_variant) -> None:
    _, printed, result = every_variant
    entries = {entry["variant"]: entry for entry in result["variants"]}
    broken = entries["int8-dynamic"]["accuracy"]["cpu"]
    assert broken["gate"]["passed"] is False and broken["argmax_agreement"] < 0.5
    for name in ("eager", "compiled", "opt-all", "opt-disable"):
        assert entries[name]["accuracy"]["cpu"]["gate"]["passed"] is True
    flagged = {r["variant"] for r in result["variant_records"] if r["fails_accuracy"]}
    assert "int8-dynamic" in flagged and not flagged & {"compiled", "opt-basic"}
    rows = [line for line in printed.splitlines() if "int8-dynamic" in line]
    assert rows and all(FAILS_ACCURACY in row for row in rows if " cpu " in row)
    assert not any(FAILS_ACCURACY in line for line in printed.splitlines()
                   if "opt-basic" in line)


def test_cuda_and_fp16_are_unavailable_with_a_reason_here(every_variant) -> None:
    from conftest import cuda_available

    if cuda_available()[0]:
        pytest.skip("a GPU is present: CUDA records run")
    _, _, result = every_variant
    cuda = [r for r in result["variant_records"] if r["provider"] == "cuda"]
    assert cuda and all(r["status"] == "unavailable" and r["reason"] for r in cuda)
    fp16 = [r for r in result["variant_records"] if r["variant"] == "fp16"]
    assert all(r["status"] == "unavailable" for r in fp16)


def test_compiled_mode_keeps_the_numbers_and_times_its_first_call(every_variant) -> None:
    _, _, result = every_variant
    (compiled,) = [e for e in result["variants"] if e["variant"] == "compiled"]
    assert compiled["accuracy"]["cpu"]["max_abs_diff"] < 1e-5
    assert compiled["compile_seconds"]["cpu"] > 0
    timed = [r for r in result["variant_records"]
             if r["variant"] == "compiled" and r["status"] == "ok"]
    assert timed and all(r["first_call_seconds"] > 0 for r in timed)


def test_records_carry_peak_memory_and_files_their_size(every_variant) -> None:
    _, printed, result = every_variant
    for record in [*result["records"], *result["variant_records"]]:
        if record["status"] == "ok":
            memory = record["memory"]
            assert memory["peak_rss_mb"] >= memory["baseline_rss_mb"] > 0
    sizes = {e["variant"]: e["onnx"]["bytes"] for e in result["variants"] if e.get("onnx")}
    assert sizes["int8-static"] < sizes["opt-all"]
    assert "peak MB" in printed and "file KB" in printed


def test_a_platform_without_a_compiler_gives_unavailable_not_an_error(
        trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.backends.pytorch import backend

    monkeypatch.setattr(backend, "_compiler_problem", lambda device: "no C++ compiler (test)")
    code = main(["bench", "--from", str(trained_run), *COMMON, "--providers", "cpu",
                 "--compile", "compiled", "--out", str(tmp_path)])
    result = read_json(tmp_path / "tiny_mlp.latency.json")
    compiled = [r for r in result["variant_records"] if r["variant"] == "compiled"]
    assert code == 0
    assert compiled and {(r["status"], r["reason"]) for r in compiled} == {
        ("unavailable", "no C++ compiler (test)")}


@pytest.mark.parametrize("option, value, message", [
    ("--ort-variants", "int4", "unknown 'int4'"),
    ("--compile", "jit", "unknown 'jit'"),
    ("--accuracy-gate", "1.5", "1.5: expected a finite number >= 0 and <= 1"),
])
def test_bad_variant_options_are_one_line_and_exit_2(option: str, value: str, message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--spec", "mlp2", option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and message in err
