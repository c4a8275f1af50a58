"""Where everything of a matrix run lives. `harness run` writes it; `harness report` and
`harness compare` read it. Every JSON file carries `schema_version` and `kind`.

    RUN_DIR/
      .lock                    held (flock) by the one `harness run` writing the folder; holds
                               its pid, host and start time
      run.json                 kind "run": the last command's configuration and job list,
                               `created_utc` (the folder's first `harness run`) and
                               `resumed_utc` (when each later one started)
      specs/<spec>.yaml        each job's spec, sweep overrides applied
      summary.json             kind "summary": counts of ok / failed / unavailable jobs,
                               written at the end
      jobs/<job_id>/           one folder per finished job (renamed into place when complete
                               from jobs/.<job_id>.partial, where it is written); the id is
                               <spec>--<backend>--seed<S>, plus --compiled for a compiled job
        job.json               kind "job": status ok|failed|unavailable (a compile mode this
                               platform cannot run: `error` says why), error, times, the job's
                               config (harness.run.job.Job), its placement (executor, host, cores,
                               GPU, threads), `phases`: seconds of each part of the job (this
                               process's), and `resumed` (None, or after which epoch its
                               training resumed from its checkpoint and the earlier
                               processes' training seconds)
        metrics.json           kind "train" (harness.training): history, test metrics, timing,
                               confusion_matrix, params, environment
        spec.yaml, initial_weights.npz, final_weights.npz, test_outputs.npz (the trained
                               model's test-set probabilities: the export's native side)
                               (jobs run by Ray: the framework's model file and
                               initial_weights.npz only with --fetch-models)
        model.onnx, model.onnx.json   kind "export" (harness.export.driver): onnx info, parity
        test_data_set_0/       input_0.pb, output_0.pb: test images and the framework's outputs
                               for them (ONNX TensorProto, the ONNX backend test data layout),
                               so the export can be replayed outside the harness
        model.variants/<variant>/   with --ort-variants: each quantised or float16 file
                               (harness.latency.variants), model.onnx with its own test_data_set_0/
        latency.json           kind "latency" (harness.latency.bench): ONNX Runtime and native
        records;
                               with variants also `variants` (files, accuracy, the gate) and
                               `variant_records`
        job.log                the job's own output (stdout and stderr)
                               An ok job counts as finished when job.json, metrics.json,
                               model.onnx.json and latency.json read back whole and the model
                               files present do too (harness.records.checks): a committed folder
                               keeps its records and drops its model files
      jobs/.<job_id>.checkpoint/   a job's training state after its last finished epoch
                               (harness.training.checkpoint): a job cut short (a stopped run,
                               a killed process) resumes there when the run is started again;
                               removed once its training ends (jobs run by Ray keep theirs on
                               the worker for the task's life only)
      servers/<backend>-worker<N>.log   what each warm job server printed (framework
                               import notices); its jobs' own output is in their job.log
      retime/                  written by `harness retime` (harness.run.retime): a run folder
                               of quiet re-timings (run.json of kind "retime", specs/, jobs/)
                               whose timings `harness report` shows in place of busy ones
      report/                  written by `harness report`

Every path a record gives to a file of the run is relative to the folder that holds the record
(only `data_dir`, the inputs' folder outside the run, is absolute), so a run folder can be
moved, copied or archived and still reports and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = ".lock"
RUN_FILE = "run.json"
SPECS_DIR = "specs"
SUMMARY_FILE = "summary.json"
JOBS_DIR = "jobs"
JOB_FILE = "job.json"
METRICS_FILE = "metrics.json"  # the training record (harness.training)
SPEC_FILE = "spec.yaml"  # the exact spec trained, so a run can be exported or re-run later
FINAL_WEIGHTS_FILE = "final_weights.npz"  # canonical layout: loads into any backend
# The trained model's class probabilities on the test set, with its labels: the confusion
# matrix's source, and the native side of the export's parity check (harness.export.driver), so
# the test set is not run through the framework again.
TEST_OUTPUTS_FILE = "test_outputs.npz"
ONNX_FILE = "model.onnx"
EXPORT_RECORD_FILE = "model.onnx.json"
LATENCY_FILE = "latency.json"
JOB_LOG_FILE = "job.log"
REPORT_DIR = "report"
GPU_MANIFEST = "gpu-check.json"  # scripts/gpu_check.sh's record of its steps (its folder)
RETIME_DIR = "retime"  # harness.run.retime
SERVERS_DIR = "servers"  # what the warm job servers printed (harness.run.job_server)
# job.json `status` of a job whose compile mode this platform cannot run: recorded, not failed
UNAVAILABLE = "unavailable"
# job.json `phases`: seconds of each part of a job, in order, with their `total` (from the
# job's process start to its record); harness.run.job_process measures them.
JOB_PHASES = {
    "start": "from asking for the job's process to its first line of work: the interpreter "
             "and the harness's imports, or a fork of a warm job server (whose first job "
             "waits for the server's imports)",
    "imports": "the framework, ONNX and ONNX Runtime imports",
    "train_setup": "data, model build, initial weights and saving the trained model",
    "epochs": "the training epochs as metrics.json times them (optimizer steps only)",
    "evaluation": "validation and test-set passes of the train step",
    "export": "ONNX conversion and its checks",
    "parity": "native vs ONNX Runtime on the test set",
    "latency": "ONNX Runtime and native latency: sessions, warm-up, timed runs",
}


def spec_file(run_dir: Path, spec_name: str) -> Path:
    return Path(run_dir) / SPECS_DIR / f"{spec_name}.yaml"


@dataclass(frozen=True)
class JobFolder:
    """One job's folder and the name of each of its files: a finished job's (`of`), a job's
    in flight (`partial`), or any folder a job's files were written into (a Ray worker's)."""

    path: Path

    @classmethod
    def of(cls, run_dir: Path, job_id: str) -> JobFolder:
        return cls(Path(run_dir) / JOBS_DIR / job_id)

    @classmethod
    def partial(cls, run_dir: Path, job_id: str) -> JobFolder:
        """Where a job in flight is written, renamed to `of` when complete."""
        return cls(Path(run_dir) / JOBS_DIR / f".{job_id}.partial")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def job(self) -> Path:
        return self.path / JOB_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def onnx(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def export_record(self) -> Path:
        return self.path / EXPORT_RECORD_FILE

    @property
    def latency(self) -> Path:
        return self.path / LATENCY_FILE

    @property
    def log(self) -> Path:
        return self.path / JOB_LOG_FILE

    @property
    def spec(self) -> Path:
        return self.path / SPEC_FILE

    @property
    def final_weights(self) -> Path:
        return self.path / FINAL_WEIGHTS_FILE

    @property
    def test_outputs(self) -> Path:
        return self.path / TEST_OUTPUTS_FILE

    def file(self, name: str) -> Path:
        """Any other file of the folder, by name (a model file a record names)."""
        return self.path / name


def job_dir(run_dir: Path, job_id: str) -> Path:
    return JobFolder.of(run_dir, job_id).path


def checkpoint_dir(run_dir: Path, job_id: str) -> Path:
    """The job's training checkpoint, kept across restarts of the run (not a partial folder)."""
    return Path(run_dir) / JOBS_DIR / f".{job_id}.checkpoint"


def finished_jobs(run_dir: Path) -> list[JobFolder]:
    """Job folders that hold a job.json (ok or failed), sorted by name. A job still in flight
    works in a hidden `.<job_id>.partial` folder, which is never one of them."""
    jobs = Path(run_dir) / JOBS_DIR
    if not jobs.is_dir():
        return []
    found = (JobFolder(p) for p in sorted(jobs.iterdir())
             if p.is_dir() and not p.name.startswith("."))
    return [folder for folder in found if folder.job.is_file()]


def finished_job_dirs(run_dir: Path) -> list[Path]:
    """finished_jobs' paths."""
    return [folder.path for folder in finished_jobs(run_dir)]
