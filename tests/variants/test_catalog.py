"""Variant names, settings validation, accuracy scores and the gate, and the printed table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.latency.variants import (
    FAILS_ACCURACY,
    ORT_VARIANTS,
    VariantSettings,
    expand_ort_variants,
)
from harness.latency.variants.accuracy import gate, not_measured, scores
from harness.latency.variants.catalog import check_accuracy_gate, check_compile_modes
from harness.latency.variants.table import VARIANT_COLUMNS, variant_problems, variant_rows


def test_all_expands_to_every_variant_in_catalog_order() -> None:
    assert expand_ort_variants(["all"]) == list(ORT_VARIANTS)
    assert expand_ort_variants(["fp16", "opt-basic", "fp16"]) == ["opt-basic", "fp16"]


@pytest.mark.parametrize("call, value, message", [
    (expand_ort_variants, ["int4"], "unknown ONNX Runtime variant 'int4'"),
    (check_compile_modes, ["jit"], "unknown compile mode 'jit'"),
    (check_accuracy_gate, 1.01, "fraction from 0 to 1"),
    (check_accuracy_gate, True, "fraction from 0 to 1"),
])
def test_bad_values_are_value_errors_naming_them(call: Any, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(value)


def test_settings_are_validated_and_active_only_with_something_to_do() -> None:
    assert not VariantSettings().active
    assert VariantSettings(compile_modes=("compiled", "eager")).compile_modes == (
        "eager", "compiled")
    assert VariantSettings(ort_variants=("all",)).active
    with pytest.raises(ValueError):
        VariantSettings(accuracy_gate=2.0)


def test_scores_and_gate() -> None:
    reference = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    probabilities = reference.copy()
    probabilities[3] = np.eye(10, dtype=np.float32)[5]  # one wrong answer
    result = scores(probabilities, np.array([0, 1, 2, 3]), reference)
    assert result["accuracy"] == 0.75 and result["argmax_agreement"] == 0.75
    assert result["max_abs_diff"] == 1.0
    assert result["loss"] == pytest.approx(-np.log(1e-7) / 4)  # the floor, not infinity
    assert gate(result, 0.76, 0.99)["passed"] is False
    assert gate(result, 0.75, 0.99)["passed"] is True
    assert gate(not_measured("unavailable", "no GPU"), 0.9, 0.99)["passed"] is None
    alone = scores(probabilities, np.array([0, 1, 2, 3]), None)  # no float32 reference ran
    assert alone["accuracy"] == 0.75 and alone["argmax_agreement"] is None


def latency_record(variant: str, runtime: str, p50: float | None, **fields: Any) -> dict[str, Any]:
    ok = p50 is not None
    return {"backend": "torch", "runtime": runtime, "variant": variant, "provider": "cpu",
            "provider_used": "cpu" if ok else None, "mode": "native" if runtime == "native"
            else "session_run", "batch_size": 1, "status": "ok" if ok else "unavailable",
            "reason": None if ok else "why", "stats": {"p50_ms": p50} if ok else None,
            "memory": {"peak_rss_mb": 500.0, "increase_mb": 2.0} if ok else None, **fields}


def test_the_printed_table_marks_the_gate_and_the_speed_up() -> None:
    entry = {"backend": "torch", "reference_accuracy": 0.9, "status": "ok", "reason": None}
    result = {
        "records": [latency_record("eager", "native", 2.0, accuracy=0.9, fails_accuracy=False)],
        "variant_records": [
            latency_record("int8-static", "onnxruntime", 0.5, accuracy=0.5, fails_accuracy=True),
            latency_record("fp16", "onnxruntime", None, accuracy=None, fails_accuracy=False)],
        "variants": [
            {**entry, "variant": "eager", "accuracy": {"cpu": {
                "accuracy": 0.9, "argmax_agreement": 1.0, "status": "ok"}}},
            {**entry, "variant": "int8-static", "onnx": {"bytes": 2048}, "accuracy": {"cpu": {
                "accuracy": 0.5, "argmax_agreement": 0.55, "status": "ok"}}},
            {**entry, "variant": "fp16", "accuracy": {"cpu": {
                "accuracy": None, "status": "unavailable", "reason": "cuda only"}}}]}
    rows = {row[1]: dict(zip(VARIANT_COLUMNS, row, strict=True))
            for row in variant_rows(result)}
    assert rows["int8-static"]["vs eager"] == "4.00x"
    assert rows["int8-static"]["Δ acc"] == "-0.4000"
    assert rows["int8-static"]["gate"] == FAILS_ACCURACY
    assert rows["int8-static"]["file KB"] == "2.0"
    assert rows["eager"]["gate"] == "ok" and rows["eager"]["peak MB (+own)"] == "500 (+2)"
    assert rows["fp16"]["p50 ms"] == "unavailable" and rows["fp16"]["gate"] == ""
    assert variant_problems(result) == ["torch fp16 on cpu: unavailable: cuda only"]
