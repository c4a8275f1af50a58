"""The sections of the GPU check's report (harness.report.gpu): what ran, the machine, the CNN
study beside the CPU, ONNX Runtime on CUDA against PyTorch on CUDA, and ONNX node placement.

A dry run (on the CPU) gets the same sections, saying plainly that nothing was measured on a
GPU: a CUDA figure is never shown where none was taken.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.report.blocks import Section, Table
from harness.report.gpu import NO_GPU, STUDY, GpuCheck
from harness.report.gpu_latency import MISSING, as_text, latency_section, placement_section
from harness.report.reproduction import PP, is_within, setup_gap, tolerance_pp

# The CPU flagship has no Keras on JAX: a GPU backend is set beside this CPU one.
CPU_PEER = {"torch": "torch", "keras-jax": "keras", "keras": "keras", "keras-torch": "keras"}
PACKAGES = ("torch", "jax", "jaxlib", "keras", "onnx", "onnxruntime", "onnxruntime-gpu",
            "numpy", "pydantic", "tensorflow")


def _table(name: str, frame: pd.DataFrame, caption: str = "") -> Table:
    return Table(name, frame, as_text(frame), caption)


def run_section(check: GpuCheck) -> Section:
    steps = list(check.manifest.get("steps", []))
    frame = pd.DataFrame(steps, columns=["name", "status", "rc", "seconds", "log", "note"])
    failed = check.failed_steps()
    where = ("on a GPU" if check.on_gpu else
             "on the CPU (dry run): no GPU was used and no CUDA figure was measured")
    intro = (f"scripts/gpu_check.sh ran {where}; {len(steps)} steps recorded, "
             f"{len(failed)} failed" + (": " + ", ".join(
                 f"{s['name']} (exit status {s['rc']}, log {s['log']})" for s in failed)
                 if failed else "") + ".")
    return Section("What ran", "gpu-run", intro, [_table("gpu_steps", frame)])


def _fact(facts: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        facts = facts.get(key) if isinstance(facts, dict) else None
    return facts


def machine_rows(check: GpuCheck) -> list[tuple[str, Any]]:
    """(what, value) rows: the GPU from nvidia-smi, CUDA as each library was built, versions."""
    v, smi = check.versions, check.smi[0] if check.smi else {}
    device = smi.get("name") or (NO_GPU + " (nvidia-smi found no GPU)" if not check.on_gpu
                                 else "unknown: nvidia-smi facts missing")
    rows: list[tuple[str, Any]] = [
        ("device", device + (f" (and {len(check.smi) - 1} more)" if len(check.smi) > 1 else "")),
        ("driver", smi.get("driver_version") or MISSING),
        ("GPU memory", smi.get("memory.total [MiB]") or MISSING),
        ("compute capability", smi.get("compute_cap") or MISSING),
        ("CUDA (PyTorch build)", _fact(v, "torch", "cuda_build") or MISSING),
        ("cuDNN (PyTorch)", _fact(v, "torch", "cudnn") or MISSING),
        ("PyTorch sees CUDA", _fact(v, "torch", "cuda_available")),
        ("CUDA (ONNX Runtime build)", _fact(v, "onnxruntime", "cuda_version") or MISSING),
        ("ONNX Runtime package", _fact(v, "onnxruntime", "package") or
         _fact(v, "onnxruntime", "error") or MISSING),
        ("ONNX Runtime providers", ", ".join(_fact(v, "onnxruntime", "available_providers")
                                             or []) or MISSING),
        ("JAX backend", _fact(v, "jax", "backend") or _fact(v, "jax", "error") or MISSING),
        ("JAX devices", ", ".join(_fact(v, "jax", "devices") or []) or MISSING),
        ("Python", _fact(v, "versions", "python") or check.manifest.get("python")),
    ]
    packages = _fact(v, "versions", "packages") or {}
    rows += [(name, packages[name]) for name in PACKAGES if name in packages]
    return rows


def machine_section(check: GpuCheck) -> Section:
    frame = pd.DataFrame(machine_rows(check), columns=["what", "value"])
    intro = ("The GPU as nvidia-smi reported it, CUDA as each library was built for it, and "
             "the library versions (facts/versions.json, facts/nvidia-smi.csv).")
    return Section("Machine", "gpu-machine", intro, [_table("gpu_machine", frame)])


def _study_jobs(run: Any) -> pd.DataFrame:
    if run is None:
        return pd.DataFrame(columns=["spec", "backend", "seed", "test_accuracy"])
    jobs = run.jobs[run.jobs["has_metrics"].fillna(False).astype(bool)]
    return jobs[jobs["study"] == STUDY]


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna().astype(float)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return (float(values.mean()) if len(values) else math.nan), std, len(values)


def _spread_text(mean: float, std: float, n: int) -> str:
    if n == 0:
        return "not run"
    text = f"{mean * PP:.2f} %"
    return text + (f" ± {std * PP:.2f}" if not math.isnan(std) else "") + f" (n={n})"


def study_rows(check: GpuCheck) -> list[dict[str, Any]]:
    """One row per spec x GPU backend: its accuracy over seeds beside the CPU run's."""
    gpu, cpu = _study_jobs(check.study), _study_jobs(check.cpu)
    rows = []
    for (spec, backend), group in gpu.groupby(["spec", "backend"]):
        peer = CPU_PEER.get(backend, backend)
        g_mean, g_std, g_n = _mean_std(group["test_accuracy"])
        c_mean, c_std, c_n = _mean_std(cpu[(cpu["spec"] == spec) & (cpu["backend"] == peer)]
                                       ["test_accuracy"])
        gap = setup_gap(check.study, (spec, ""), backend)
        delta = (g_mean - c_mean) * PP
        if gap:
            judged = f"not comparable ({gap})"
        elif c_n == 0 or math.isnan(delta):
            judged = "no CPU figure"
        else:
            stds = [s * PP for s in (g_std, c_std) if not math.isnan(s)]
            tolerance = tolerance_pp(max(stds) if stds else None)
            judged = "agree" if is_within(delta, tolerance) else "differ"
            judged += f" (tolerance {tolerance:.2f} pp)"
        rows.append({"spec": spec, "backend": backend,
                     "device": _device_of(group), "accuracy": _spread_text(g_mean, g_std, g_n),
                     "cpu_backend": peer, "cpu_accuracy": _spread_text(c_mean, c_std, c_n),
                     "delta_pp": round(delta, 2) if not gap and c_n else math.nan,
                     "comparison": judged, "accuracy_mean": g_mean, "accuracy_std": g_std,
                     "cpu_mean": c_mean, "cpu_std": c_std})
    return rows


def _device_of(group: pd.DataFrame) -> str:
    return ", ".join(sorted(str(d) for d in group["device"].dropna().unique())) or MISSING


def study_section(check: GpuCheck) -> Section:
    rows = study_rows(check)
    columns = ["spec", "backend", "device", "accuracy", "cpu_backend", "cpu_accuracy",
               "delta_pp", "comparison"]
    frame = pd.DataFrame(rows, columns=[*columns, "accuracy_mean", "accuracy_std", "cpu_mean",
                                        "cpu_std"])
    if check.study is None:
        intro = "The CNN study did not run: no study/ folder (see the study step's log)."
    else:
        device = ("on the GPU" if check.on_gpu else
                  f"on the CPU (dry run; {NO_GPU}), a few hundred images: a check of the "
                  "steps, not a result")
        intro = (f"The CNN depth x kernel study ({STUDY}) trained {device}: test accuracy, "
                 "mean ± standard deviation over seeds, beside the committed CPU run "
                 "(results/mnist-studies; Keras on JAX is set beside Keras on TensorFlow, the "
                 "CPU run's Keras). Agreement: within max(0.5 pp, 2 x the larger seed std).")
    table = Table("gpu_study", frame, as_text(frame[columns]))
    return Section("CNN study: GPU beside CPU", "gpu-study", intro, [table])


def build_gpu_sections(check: GpuCheck) -> list[Section]:
    return [run_section(check), machine_section(check), study_section(check),
            latency_section(check), placement_section(check)]


def gpu_warnings(check: GpuCheck) -> list[str]:
    """What a reader must see first: a dry run is no GPU result; a failed step left a hole."""
    warnings = []
    if not check.on_gpu:
        warnings.append("Dry run on the CPU: no GPU was used; every CUDA figure is "
                        f"'{NO_GPU}', and the study's accuracies are a check of the steps on a "
                        "few hundred images, not results.")
    for step in check.failed_steps():
        warnings.append(f"step {step['name']} failed (exit status {step['rc']}); its log: "
                        f"{step['log']}")
    if check.manifest.get("finished_utc") is None:
        warnings.append("scripts/gpu_check.sh did not finish (no end recorded): the folder "
                        "holds what it wrote until it stopped.")
    return warnings
