"""A stand-in for the job process (`python -m harness.run.job_process WORK_DIR`), so tests of
the run machinery - executors, placement, retries, resume - take seconds, not training.

It records ok with the job it was given, writes small stand-ins of a job's files (its records,
as small as resume accepts them, an ONNX file, weights, a framework model file named in
metrics.json), and notes each call.
Its settings file (beside it) can make it kill its parent - the Ray worker running it - the
first time it runs a job (`kill_once`) or every time (`kill_always`).
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path


def write_finished_records(work: Path, **metrics: object) -> None:
    """A finished job's records beside its job.json, as small as resume accepts them
    (harness.records.checks); `metrics`: more fields of its metrics.json."""
    import hashlib

    from harness.records import folders
    from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic

    onnx = b"onnx"
    (work / folders.ONNX_FILE).write_bytes(onnx)
    version = {"schema_version": RESULT_SCHEMA_VERSION}
    write_json_atomic(work / folders.METRICS_FILE, {**version, "kind": "train", "history": [],
                                                   "test_accuracy": 0.5, **metrics})
    write_json_atomic(work / folders.EXPORT_RECORD_FILE, {
        **version, "kind": "export", "passed": True,
        "onnx": {"bytes": len(onnx), "sha256": hashlib.sha256(onnx).hexdigest()}})
    write_json_atomic(work / folders.LATENCY_FILE, {**version, "kind": "latency", "records": []})


# write_finished_records for the stand-in scripts: the text they start with
FINISHED_RECORDS = ("from __future__ import annotations\n"
                    + inspect.getsource(write_finished_records) + "\n\n")

SCRIPT = FINISHED_RECORDS + '''\
import json, os, signal, sys, time
from pathlib import Path
from harness.measure.environment import utc_now
from harness.records.io import RESULT_SCHEMA_VERSION, write_json_atomic
from harness.records import folders
from harness.run.job import Job
from harness.spec import initial_weights
from harness.spec.initializers import save_weights
from harness.spec.loader import parse_spec

settings = json.loads(Path(__file__).with_suffix(".json").read_text())
work, given = Path(sys.argv[1]), json.load(sys.stdin)
job = Job.model_validate(given["job"])
with open(settings["calls"], "a", encoding="utf-8") as calls:
    calls.write(job.job_id + "\\n")
print("step train", flush=True)
print("a framework notice the terminal does not show", flush=True)
marker = Path(settings["calls"]).with_name(job.job_id + ".killed")
if job.job_id in settings["kill_always"] or (job.job_id in settings["kill_once"]
                                              and not marker.exists()):
    marker.touch()
    os.kill(os.getppid(), signal.SIGKILL)  # the worker is lost mid-job
    time.sleep(60)  # the kernel ends this process with its parent (PR_SET_PDEATHSIG)
time.sleep(settings["seconds"])
save_weights(initial_weights(parse_spec(given["spec"]), job.seed),
             str(work / "final_weights.npz"))  # as a trained job's weights look
(work / "model.pt").write_bytes(b"model")
write_finished_records(work, model_file="model.pt", initial_weights_file="initial_weights.npz")
write_json_atomic(work / folders.JOB_FILE, {
    "schema_version": RESULT_SCHEMA_VERSION, "kind": "job", "job_id": job.job_id,
    "status": "ok", "error": None, "failed_step": None, "started_utc": utc_now(),
    "config": job.record(), "placement": {**given["placement"],
                                          "affinity": sorted(os.sched_getaffinity(0))},
    "phases": {"total": settings["seconds"]}, "finished_utc": utc_now(), "seconds": 0.0})
'''


class StandIn:
    """The stand-in script in `folder`, and what it was asked to run."""

    def __init__(self, folder: Path, seconds: float = 0.0) -> None:
        self.script, self.calls_file = folder / "stand_in_job.py", folder / "calls.txt"
        self.script.write_text(SCRIPT, encoding="utf-8")
        self.configure(seconds=seconds)

    def configure(self, seconds: float = 0.0, kill_once: tuple[str, ...] = (),
                  kill_always: tuple[str, ...] = ()) -> None:
        self.script.with_suffix(".json").write_text(json.dumps({
            "calls": str(self.calls_file), "seconds": seconds, "kill_once": list(kill_once),
            "kill_always": list(kill_always)}), encoding="utf-8")

    @property
    def command(self) -> list[str]:
        return [sys.executable, str(self.script)]

    def calls(self) -> list[str]:
        return self.calls_file.read_text().split() if self.calls_file.is_file() else []
