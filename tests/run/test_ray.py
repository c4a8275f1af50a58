"""`harness run --executor ray` on a local Ray cluster (2 CPUs) started here: every job exactly
once, a lost worker retried and, past its retries, recorded as failed; the folders come back
to the driver, and the run reports as a local one does."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.records import folders
from harness.records.io import read_json
from harness.run.executors.local import LocalExecutor
from harness.run.matrix import run_matrix
from harness.run.plan import RunConfig

from .stand_in import StandIn

CONFIG = RunConfig(specs=["mlp2", "mlp3"], backends=["keras", "torch"], batch_sizes=[1])
LOST_ONCE, LOST_ALWAYS = "mlp2--torch--seed0", "mlp3--keras--seed0"


def test_without_ray_the_executor_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    out = tmp_path / "run"
    assert main(["run", "--specs", "mlp2", "--executor", "ray", "--out", str(out)]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert 'Ray is not installed; install it with: pip install -e ".[ray]"' in err
    assert "Traceback" not in err and not out.exists()


@pytest.fixture(scope="module")
def ray_cluster() -> object:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _jobs(run_dir: Path) -> dict[str, dict]:
    return {p.name: read_json(p / folders.JOB_FILE) for p in folders.finished_job_dirs(run_dir)}


def _table(run_dir: Path) -> list[tuple]:
    """The report's view of the jobs, less where and when they ran."""
    from harness.report.load import load_run

    jobs = load_run(run_dir).jobs.drop(columns=["job_dir", "started_utc", "finished_utc",
                                                "weights_file"])
    return sorted(tuple(str(value) for value in row) for row in jobs.itertuples(index=False))


def test_ray_runs_every_job_once_retries_lost_workers_and_reports_like_local(
        tmp_path: Path, ray_cluster: object) -> None:
    from harness.run.executors.ray_cluster import RayExecutor

    stand_in = StandIn(tmp_path)
    stand_in.configure(kill_once=(LOST_ONCE,), kill_always=(LOST_ALWAYS,))
    out, lines = tmp_path / "ray", []
    executor = RayExecutor(max_retries=1, command=stand_in.command)
    summary = run_matrix(CONFIG, out, show=lines.append, executor=executor)

    jobs = _jobs(out)
    assert sorted(jobs) == sorted(p.name for p in (out / folders.JOBS_DIR).iterdir())  # no partial
    assert len(jobs) == 4 and summary["ok"] == 3
    calls = stand_in.calls()
    assert calls.count(LOST_ONCE) == 2 and calls.count(LOST_ALWAYS) == 2  # 1 retry each
    assert {c for c in calls if c not in (LOST_ONCE, LOST_ALWAYS)} == set(jobs) - {
        LOST_ONCE, LOST_ALWAYS} and len(calls) == 6
    lost = jobs[LOST_ALWAYS]
    assert lost["status"] == "failed" and "lost on Ray after 2 attempt(s)" in lost["error"]
    assert lost["placement"]["executor"] == "ray"
    done = folders.job_dir(out, LOST_ONCE)
    assert jobs[LOST_ONCE]["status"] == "ok" and jobs[LOST_ONCE]["placement"]["executor"] == "ray"
    assert {p.name for p in done.iterdir()} == {  # no model file unless asked for
        folders.JOB_FILE, folders.METRICS_FILE, folders.ONNX_FILE, "final_weights.npz",
        folders.EXPORT_RECORD_FILE, folders.LATENCY_FILE, folders.JOB_LOG_FILE}
    assert "step train" in (done / folders.JOB_LOG_FILE).read_text()
    failed_line = next(line for line in lines if f"{LOST_ALWAYS}: FAILED" in line)
    assert failed_line.endswith(": " + lost["error"]) and "at None" not in failed_line

    stand_in.configure()  # the cluster is healthy again: the failed job alone re-runs
    lines.clear()
    summary = run_matrix(CONFIG, out, show=lines.append,
                         executor=RayExecutor(keep_models=True, command=stand_in.command))
    assert summary["ok"] == 4 and "4 jobs: 3 already finished, 1 to run" in lines
    assert stand_in.calls().count(LOST_ALWAYS) == 3
    assert (folders.job_dir(out, LOST_ALWAYS) / "model.pt").is_file()  # asked for

    local = tmp_path / "local"
    run_matrix(CONFIG, local, show=lambda line: None,
               executor=LocalExecutor(command=stand_in.command))
    assert _table(local) == [tuple(item.replace(str(out), str(local)) for item in row)
                             for row in _table(out)]


def test_a_real_job_on_ray_comes_back_whole_and_trains_as_locally(
        tmp_path: Path, ray_cluster: object) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    if not (Path(os.environ.get("HARNESS_DATA_DIR", "")) / "mnist").is_dir():
        pytest.skip("needs the MNIST files (HARNESS_DATA_DIR)")
    from harness.report.load import load_run
    from harness.run.executors.ray_cluster import RayExecutor

    config = RunConfig(specs=["mlp2"], backends=["torch"], batch_sizes=[1], epochs=1,
                       limit=200, limit_test=100, threads=1, latency_warmup=0,
                       latency_min_runs=2, latency_min_seconds=0.0)
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    assert run_matrix(config, on_ray, show=lambda line: None,
                      executor=RayExecutor())["ok"] == 1
    assert run_matrix(config, local, show=lambda line: None)["ok"] == 1
    job = "mlp2--torch--seed0"
    files = {p.name for p in folders.job_dir(local, job).iterdir()}
    assert {p.name for p in folders.job_dir(on_ray, job).iterdir()} == \
        files - {"model.pt", "initial_weights.npz"}  # model files stay on the worker
    record = read_json(folders.job_dir(on_ray, job) / folders.JOB_FILE)
    assert record["placement"]["executor"] == "ray" and record["placement"]["threads"] == 1
    columns = ["job_id", "status", "test_accuracy", "test_loss", "final_train_loss",
               "parity_passed", "n_test"]
    assert load_run(on_ray).jobs[columns].to_dict("records") == \
        load_run(local).jobs[columns].to_dict("records")


def test_a_job_folder_travels_whole_and_nothing_outside_it(tmp_path: Path) -> None:
    from harness.run.executors.ray_task import pack, unpack

    work, back = tmp_path / "work", tmp_path / "back"
    (work / "test_data_set_0").mkdir(parents=True)
    (work / "test_data_set_0" / "input_0.pb").write_bytes(b"tensor")
    (work / folders.METRICS_FILE).write_text('{"model_file": "model.pt"}')
    (work / "model.pt").write_bytes(b"model")
    back.mkdir()
    unpack(pack(work, keep_models=False), back)
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*") if p.is_file()) == [
        folders.METRICS_FILE, "test_data_set_0/input_0.pb"]
    assert (back / "test_data_set_0" / "input_0.pb").read_bytes() == b"tensor"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="unexpected entry '../outside.txt'"):
        unpack(evil.getvalue(), back)
    assert not (tmp_path / "outside.txt").exists()


# Starts a local cluster as `harness run --executor ray` does (Ray first imported by the
# executor), runs a task so a worker listens too, and prints every listening socket of this
# process and its descendants: Ray's driver, GCS, raylet, agents and workers.
LISTENERS = """
import json, psutil
from harness.run.executors.ray_cluster import RayExecutor
executor = RayExecutor()
assert executor.slots >= 1
ray = executor.ray
def one():
    return 1
assert ray.get(ray.remote(one).remote()) == 1
listening = []
for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
    try:
        listening += [[process.name(), c.laddr.ip] for c in process.net_connections("inet")
                      if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        continue
print(json.dumps(listening))
ray.shutdown()
"""


def test_a_local_cluster_listens_on_loopback_only() -> None:
    import ipaddress
    import json
    import subprocess

    pytest.importorskip("ray")
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", LISTENERS], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    listening = json.loads(done.stdout.strip().splitlines()[-1])
    names = {name for name, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening
    exposed = [(name, ip) for name, ip in listening
               if not ipaddress.ip_address(ip.removeprefix("::ffff:")).is_loopback]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_a_local_cluster_that_would_listen_beyond_loopback_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run.executors import ExecutorUnavailable
    from harness.run.executors.ray_cluster import LOCAL_ONLY_ENV, RayExecutor

    ray = pytest.importorskip("ray")
    monkeypatch.setenv(LOCAL_ONLY_ENV, "1")  # restored after the test, whatever sets it
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    executor = RayExecutor()
    # Ray imported before the executor set its switch: the node address is the public one
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "192.0.2.7")
    with pytest.raises(ExecutorUnavailable, match="would listen on 192.0.2.7, not on loopback"):
        _ = executor.slots
