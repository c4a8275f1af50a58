"""The whole matrix in one command, resumable: the library behind `harness run`.

Every spec (x sweep point) x backend x seed is a job run in its own process (a crash or a leak
in one framework cannot take the run down or disturb the next job's timings). Finished jobs are
skipped when the same command runs again; a failed job is recorded and the run goes on.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import layout
from harness.env import utc_now
from harness.job import partial_dir
from harness.results import RESULT_SCHEMA_VERSION, read_json, write_json_atomic
from harness.spec import ModelSpec, SpecError, SpecProblem, list_specs, load_spec, spec_hash
from harness.spec.loader import dump_spec
from harness.sweeps import apply_point, grid, parse_set


@dataclass(frozen=True)
class RunConfig:
    specs: list[str]
    backends: list[str]
    providers: list[str] = field(default_factory=lambda: ["cpu"])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32, 256])
    seeds: list[int] | None = None  # None: each spec's own train.seed
    epochs: int | None = None
    limit: int | None = None
    limit_test: int | None = None
    threads: int | None = None
    device: str = "cpu"
    sets: list[str] = field(default_factory=list)
    data_dir: str | None = None
    opset: int = 18
    latency_warmup: int = 5
    latency_min_runs: int = 20
    latency_min_seconds: float = 0.5


def resolve_specs(patterns: list[str]) -> list[str]:
    """Names, globs over the zoo, `all`, or paths of YAML files -> spec references."""
    zoo, chosen = list_specs(), []
    for pattern in patterns:
        if pattern == "all":
            matches = zoo
        elif any(ch in pattern for ch in "*?["):
            matches = fnmatch.filter(zoo, pattern)
        else:
            matches = [pattern]
        if not matches:
            raise SpecError([SpecProblem("", f"--specs {pattern!r} matches no zoo spec")])
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _config_hash(job: dict[str, Any]) -> str:
    keys = ("spec_hash", "backend", "seed", "epochs", "limit", "limit_test", "providers",
            "batch_sizes", "device", "opset")
    canonical = json.dumps({k: job[k] for k in keys}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def plan_jobs(config: RunConfig, run_dir: Path) -> list[dict[str, Any]]:
    """Expand the matrix; write each (possibly overridden) spec to RUN_DIR/specs/."""
    points = grid([parse_set(text) for text in config.sets])
    spec_dir = Path(run_dir) / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for ref in resolve_specs(config.specs):
        base = load_spec(ref)
        for point in points:
            spec: ModelSpec = apply_point(base, point)
            spec_file = spec_dir / f"{spec.name}.yaml"
            spec_file.write_text(dump_spec(spec), encoding="utf-8")
            for seed in config.seeds or [spec.train.seed]:
                for backend in config.backends:
                    job = {"job_id": f"{spec.name}--{backend}--seed{seed}", "spec": spec.name,
                           "base_spec": base.name, "spec_file": str(spec_file.resolve()),
                           "spec_hash": spec_hash(spec), "overrides": point,
                           "study": base.reference.study if base.reference else None,
                           "backend": backend, "seed": seed,
                           **{k: getattr(config, k) for k in (
                               "epochs", "limit", "limit_test", "providers", "batch_sizes",
                               "device", "threads", "data_dir", "opset", "latency_warmup",
                               "latency_min_runs", "latency_min_seconds")}}
                    job["config_hash"] = _config_hash(job)
                    jobs.append(job)
    return jobs


def _finished(run_dir: Path, job: dict[str, Any]) -> bool:
    """Done already: an ok job.json written for the same job configuration."""
    path = layout.job_dir(run_dir, job["job_id"]) / layout.JOB_FILE
    if not path.is_file():
        return False
    record = read_json(path)
    return record.get("status") == "ok" and record["config"].get("config_hash") == \
        job["config_hash"]


@dataclass
class Progress:
    total: int
    done: int = 0
    durations: list[float] = field(default_factory=list)

    def eta(self, remaining: int) -> str:
        if not self.durations:
            return "ETA ?"
        seconds = int(sum(self.durations) / len(self.durations) * remaining)
        return f"ETA {seconds // 60}m{seconds % 60:02d}s"


Printer = Callable[[str], None]


def _die_with_parent() -> None:
    """In the child, before exec: if `harness run` is killed, the kernel kills the job too,
    so no orphan keeps writing into a folder the next run will reuse (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_one(run_dir: Path, job: dict[str, Any], prefix: str, show: Printer) -> dict[str, Any]:
    """Run a job in a child process, stream its progress, and move its folder into place."""
    job_id = job["job_id"]
    work = partial_dir(run_dir, job_id)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with open(work / layout.JOB_LOG_FILE, "w", encoding="utf-8") as log:
        child = subprocess.Popen([sys.executable, "-m", "harness.job", str(run_dir), job_id],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 bufsize=1, preexec_fn=_die_with_parent)
        try:
            for line in child.stdout:
                log.write(line)
                if line.startswith(("epoch ", "step ")):
                    show(f"{prefix} {job_id}: {line.strip()}")
            code = child.wait()
        except BaseException:  # Ctrl-C: stop the child, lose only this job
            child.kill()
            child.wait()
            shutil.rmtree(work, ignore_errors=True)
            raise
    if not (work / layout.JOB_FILE).is_file():  # the child died before recording anything
        write_json_atomic(work / layout.JOB_FILE, {
            "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job_id,
            "status": "failed", "failed_step": None, "config": job,
            "error": f"the job's process exited with status {code} (see {layout.JOB_LOG_FILE})",
            "started_utc": None, "finished_utc": utc_now()})
    final = layout.job_dir(run_dir, job_id)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return read_json(final / layout.JOB_FILE)


def run_matrix(config: RunConfig, run_dir: Path, show: Printer = print) -> dict[str, Any]:
    """Run every job not finished yet; return (and write) the run's summary."""
    run_dir = Path(run_dir)
    jobs = plan_jobs(config, run_dir)
    write_json_atomic(run_dir / layout.RUN_FILE, {
        "schema_version": RESULT_SCHEMA_VERSION, "kind": "run", "created_utc": utc_now(),
        "config": asdict(config), "jobs": jobs})
    for stale in (run_dir / layout.JOBS_DIR).glob(".*.partial"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    todo = [job for job in jobs if not _finished(run_dir, job)]
    progress = Progress(total=len(jobs), done=len(jobs) - len(todo))
    show(f"{len(jobs)} jobs: {progress.done} already finished, {len(todo)} to run")
    for number, job in enumerate(todo, start=progress.done + 1):
        prefix = f"[{number}/{len(jobs)} {progress.eta(len(jobs) - number + 1)}]"
        started = time.perf_counter()
        record = _run_one(run_dir, job, prefix, show)
        progress.durations.append(time.perf_counter() - started)
        status = "ok" if record["status"] == "ok" else f"FAILED at {record.get('failed_step')}: " \
                                                        f"{record['error']}"
        show(f"{prefix} {job['job_id']}: {status}")
    return write_summary(run_dir, jobs)


def write_summary(run_dir: Path, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    records = {}
    for job in jobs:
        path = layout.job_dir(run_dir, job["job_id"]) / layout.JOB_FILE
        records[job["job_id"]] = read_json(path) if path.is_file() else {"status": "missing"}
    failed = [{"job_id": job_id, "failed_step": r.get("failed_step"), "error": r.get("error")}
              for job_id, r in records.items() if r.get("status") != "ok"]
    summary = {"schema_version": RESULT_SCHEMA_VERSION, "kind": "summary",
               "finished_utc": utc_now(), "jobs": len(jobs), "ok": len(jobs) - len(failed),
               "failed": failed}
    write_json_atomic(Path(run_dir) / layout.SUMMARY_FILE, summary)
    return summary
