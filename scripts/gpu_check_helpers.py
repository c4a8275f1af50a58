"""The Python half of scripts/gpu_check.sh: its manifest, the machine's facts, the study's
parts, the ONNX node placement and the packing of its output folder.

    python3 scripts/gpu_check_helpers.py COMMAND ARGS...

`start` and `step` use the standard library only (they run before anything is installed); the
others import the harness and, where they say so, a framework. Each prints at most a few lines
and exits 0, or 1 with one line saying what failed (2 for a wrong call).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

MANIFEST = "gpu-check.json"  # harness.report.gpu reads it (GPU_MANIFEST)
KIND = "gpu-check"
SCHEMA_VERSION = 1
FACTS_DIR = "facts"
VERSIONS_FILE = "versions.json"
PLACEMENT_FILE = "placement.json"
STUDY_DIR = "study"
STUDY = "cnn_depth_kernel"
# What a job folder keeps once packed: its records and log (model files stay behind, as in the
# committed results/: `harness report` reads a folder without them).
HEAVY_SUFFIXES = (".npz", ".onnx", ".pt", ".keras", ".pb", ".data")
HEAVY_DIRS = ("test_data_set_0", ".checkpoint", "model.variants")
# A Keras-on-JAX job fails its export where TensorFlow is not installed (the GPU machine): its
# training, the point of the study, is complete. Such a failure is expected, not a fault.
EXPECTED_EXPORT_FAILURE = "exports to ONNX through Keras on TensorFlow"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON into `path` atomically (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- the manifest ------------------------------------------------------------------------------

def cmd_start(args: argparse.Namespace) -> int:
    """A new manifest: the mode, the command, the budget and the commit of the tree."""
    out = Path(args.out)
    write_json(out / MANIFEST, {
        "schema_version": SCHEMA_VERSION, "kind": KIND, "mode": args.mode,
        "started_utc": utc_now(), "finished_utc": None, "budget_seconds": args.budget,
        "command": args.invocation, "commit": args.commit or None,
        "host": platform.node(), "python": platform.python_version(),
        "cpu_reference": args.cpu_reference, "settings": json.loads(args.settings or "{}"),
        "steps": [],
    })
    return 0


def cmd_step(args: argparse.Namespace) -> int:
    """Add one finished step (name, status, exit code, seconds, log) to the manifest."""
    path = Path(args.out) / MANIFEST
    manifest = read_json(path)
    manifest["steps"].append({"name": args.name, "status": args.status, "rc": args.rc,
                              "seconds": round(args.seconds, 1), "log": args.log or None,
                              "note": args.note or None})
    if args.finish:
        manifest["finished_utc"] = utc_now()
    write_json(path, manifest)
    return 0


# -- facts -------------------------------------------------------------------------------------

def _guarded(function: Any) -> dict[str, Any]:
    """`function()`, or what went wrong (one line): a missing framework is a fact too."""
    try:
        return function()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the facts
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}


def _torch_facts() -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda,
                             "cudnn": torch.backends.cudnn.version(),
                             "cuda_available": torch.cuda.is_available()}
    if facts["cuda_available"]:
        facts["device"] = torch.cuda.get_device_name(0)
        facts["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        facts["tf32_matmul_default"] = torch.backends.cuda.matmul.allow_tf32
    return facts


def _jax_facts() -> dict[str, Any]:
    import jax

    return {"version": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(device) for device in jax.devices()]}


def _ort_facts() -> dict[str, Any]:
    from harness.measure.environment import onnxruntime_build

    build = onnxruntime_build() or {"error": "onnxruntime not installed"}
    import onnxruntime as ort

    build["module"] = str(Path(ort.__file__).parent)
    return build


def _versions() -> dict[str, Any]:
    from harness.measure.environment import gpus, package_versions

    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": package_versions(), "gpu": gpus()}


def cmd_facts(args: argparse.Namespace) -> int:
    """OUT/facts/versions.json: library versions, what PyTorch, JAX and ONNX Runtime see."""
    folder = Path(args.out) / FACTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    facts = {"recorded_utc": utc_now(), "versions": _guarded(_versions),
             "torch": _guarded(_torch_facts), "jax": _guarded(_jax_facts),
             "onnxruntime": _guarded(_ort_facts)}
    write_json(folder / VERSIONS_FILE, facts)
    for name in ("torch", "jax", "onnxruntime"):
        print(f"{name}: {json.dumps(facts[name], default=str)[:200]}")
    return 0


# -- the study ---------------------------------------------------------------------------------

def study_specs(study: str = STUDY) -> list[str]:
    """The zoo specs of `study`, largest model first (multiply-accumulates per image)."""
    from harness.report.reproduction import zoo_studies

    names = list(zoo_studies().get(study, ()))
    if not names:
        raise SystemExit(f"no zoo study named {study!r}")
    return names


def cmd_study_chunks(args: argparse.Namespace) -> int:
    """The study's specs in `chunks` comma-separated lines, each as costly as the others as far
    as round-robin over the kernel sizes gives (the 7x7 specs are the slow ones)."""
    names = sorted(study_specs(args.study), key=lambda name: (name.split("_k")[-1], name),
                   reverse=True)
    if args.first:
        names = sorted(names)[:args.first]
    chunks = [names[index::args.chunks] for index in range(args.chunks)]
    for chunk in chunks:
        if chunk:
            print(",".join(chunk))
    return 0


def _job_states(part: Path) -> list[dict[str, Any]]:
    states = []
    for job_file in sorted((part / "jobs").glob("*/job.json")):
        try:
            states.append(read_json(job_file))
        except (OSError, ValueError):
            states.append({"job_id": job_file.parent.name, "status": "damaged"})
    return states


def cmd_check_part(args: argparse.Namespace) -> int:
    """Whether a part of the study came to what it should: every job ok, or failed only at an
    export this machine cannot make (Keras on JAX without TensorFlow) with its training done."""
    part = Path(args.part)
    states = _job_states(part)
    expected = [s for s in states if s.get("status") == "failed"
                and EXPECTED_EXPORT_FAILURE in str(s.get("error"))
                and (part / "jobs" / s["job_id"] / "metrics.json").is_file()]
    bad = [s for s in states if s.get("status") != "ok" and s not in expected]
    print(f"{part.name}: {len(states)} jobs finished of {args.jobs}, "
          f"{sum(s.get('status') == 'ok' for s in states)} ok, {len(expected)} trained but not "
          f"exported (no TensorFlow here), {len(bad)} failed"
          + (": " + ", ".join(s["job_id"] for s in bad) if bad else ""))
    return 1 if bad or len(states) < args.jobs else 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Move every part's job folders into one folder `harness report` reads (jobs/, specs/),
    and keep each part's run.json and summary.json under parts/."""
    target = Path(args.target)
    (target / "jobs").mkdir(parents=True, exist_ok=True)
    (target / "specs").mkdir(exist_ok=True)
    (target / "parts").mkdir(exist_ok=True)
    moved = 0
    for part in map(Path, args.parts):
        for job in sorted((part / "jobs").glob("[!.]*")):
            if job.is_dir() and not (target / "jobs" / job.name).exists():
                shutil.move(str(job), target / "jobs" / job.name)
                moved += 1
        for spec in (part / "specs").glob("*"):
            shutil.copy2(spec, target / "specs" / spec.name)
        for record in ("run.json", "summary.json"):
            if (part / record).is_file():
                shutil.copy2(part / record, target / "parts" / f"{part.name}.{record}")
    print(f"{moved} job folders in {target}")
    return 0 if moved else 1


# -- placement of every ONNX node --------------------------------------------------------------

def _node_placement(path: Path, provider: str) -> dict[str, Any]:
    """Run the model once in a profiled session on `provider` (harness.ort's, which refuses a
    session that would not run there) and list where ONNX Runtime ran each node."""
    import tempfile

    import numpy as np
    import onnx

    from harness.ort.sessions import COPY_OPS, CPU_EP, FLOAT_TYPES, create_session

    model = onnx.load(str(path), load_external_data=False)
    dims = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
    with tempfile.TemporaryDirectory(prefix="harness-gpu-placement-") as folder:
        session = create_session(path, provider, threads=2,
                                 profile_prefix=str(Path(folder) / "p"))
        session.run(None, {session.get_inputs()[0].name: np.zeros(dims, np.float32)})
        events = read_json(Path(session.end_profiling()))
        providers = session.get_providers()
        del session
    nodes: dict[str, dict[str, Any]] = {}
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        info = event.get("args") or {}
        types = {key for entry in [*(info.get("input_type_shape") or []),
                                   *(info.get("output_type_shape") or [])]
                 if isinstance(entry, dict) for key in entry}
        compute = info.get("op_name") not in COPY_OPS and (not types or bool(types & FLOAT_TYPES))
        ran_on = str(info.get("provider") or "unknown")
        nodes[name.removesuffix("_kernel_time")] = {
            "op": info.get("op_name"), "provider": ran_on, "compute": compute,
            "fallback": provider != "cpu" and ran_on == CPU_EP and compute}
    return {"session_providers": providers, "nodes": [
        {"node": node, **fields} for node, fields in sorted(nodes.items())]}


def cmd_placement(args: argparse.Namespace) -> int:
    """OUT/placement.json: for each ONNX file under BENCH_DIR and each provider, every node and
    the provider that ran it (or why the provider could not run the file)."""
    from harness.ort.providers import ProviderUnavailable

    files = sorted(Path(args.bench).glob("**/*.onnx"))
    results = []
    for path in files:
        for provider in args.providers.split(","):
            entry: dict[str, Any] = {"file": str(path.relative_to(args.bench)),
                                     "provider": provider}
            try:
                entry.update(status="ok", **_node_placement(path, provider))
            except ProviderUnavailable as exc:
                entry.update(status="unavailable", reason=str(exc))
            except Exception as exc:  # noqa: BLE001 - recorded, the next file goes on
                entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:300])
            results.append(entry)
            print(f"{entry['file']} on {provider}: {entry['status']}"
                  + (f", {len(entry.get('nodes', []))} nodes" if entry["status"] == "ok" else
                     f": {entry.get('reason', '')[:150]}"))
    write_json(Path(args.out) / PLACEMENT_FILE, {"recorded_utc": utc_now(), "files": results})
    return 0 if files and all(r["status"] != "failed" for r in results) else 1


def cmd_pack(args: argparse.Namespace) -> int:
    """Drop model files and test data from OUT, keeping records and logs (what comes back from
    the GPU machine must be small)."""
    freed = 0
    for path in sorted(Path(args.out).rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and (path.name in HEAVY_DIRS or path.name.endswith(HEAVY_DIRS)):
            freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in HEAVY_SUFFIXES:
            freed += path.stat().st_size
            path.unlink()
    print(f"{freed / 1e6:.1f} MB of model files removed")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gpu_check_helpers.py")
    sub = main.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    for flag in ("--out", "--mode", "--invocation", "--commit", "--cpu-reference", "--settings"):
        start.add_argument(flag, required=flag in ("--out", "--mode"))
    start.add_argument("--budget", type=int, required=True)
    step = sub.add_parser("step")
    step.add_argument("out")
    step.add_argument("name")
    step.add_argument("status", choices=("ok", "failed", "skipped"))
    step.add_argument("rc", type=int)
    step.add_argument("seconds", type=float)
    step.add_argument("--log")
    step.add_argument("--note")
    step.add_argument("--finish", action="store_true")
    sub.add_parser("facts").add_argument("out")
    chunks = sub.add_parser("study-chunks")
    chunks.add_argument("chunks", type=int)
    chunks.add_argument("--study", default=STUDY)
    chunks.add_argument("--first", type=int, help="only the first N specs by name")
    check = sub.add_parser("check-part")
    check.add_argument("part")
    check.add_argument("jobs", type=int)
    merge = sub.add_parser("merge")
    merge.add_argument("target")
    merge.add_argument("parts", nargs="+")
    placement = sub.add_parser("placement")
    placement.add_argument("bench")
    placement.add_argument("out")
    placement.add_argument("--providers", default="cpu,cuda")
    sub.add_parser("pack").add_argument("out")
    return main


COMMANDS = {"start": cmd_start, "step": cmd_step, "facts": cmd_facts,
            "study-chunks": cmd_study_chunks, "check-part": cmd_check_part,
            "merge": cmd_merge, "placement": cmd_placement, "pack": cmd_pack}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
