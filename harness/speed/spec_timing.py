"""Every comparison of one spec with the protocol (harness.measure.protocol): training steps of
each backend against the reference (native PyTorch), native inference likewise, ONNX Runtime
against each framework's own predictor, and, for the noise floor, the reference against a
second copy of itself (A/A)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.backends import REGISTRY, reference_backend
from harness.measure.environment import environment, utc_now
from harness.measure.protocol import Protocol, Side, calibrate, comparison
from harness.measure.speed_records import Comparison, Estimate, SpecSpeed
from harness.spec import ModelSpec, spec_hash, training_hash
from harness.spec.loader import dump_spec
from harness.speed.worker import Worker, WorkerError, WorkerSetup

REFERENCE = reference_backend()  # what every other backend is compared with, when it is timed
ONNX_RUNTIME = "onnxruntime"
AA_FIRST, AA_SECOND = "#1", "#2"
DEFAULT_BATCH_SIZES = (1, 32)
_MODES = {"graph": "graph mode, XLA off", "xla": "XLA (jit_compile)", "eager": "eager",
          "jit": "jit (XLA)", "torch.compile": "torch.compile"}


def describe_backend(name: str, backend_environment: dict) -> str:
    """How a backend ran, in words: "Keras 3 on TensorFlow, graph mode, XLA off"."""
    mode = str(backend_environment.get("compile_mode") or "")
    framework = REGISTRY[name].framework if name in REGISTRY else name
    return ", ".join(part for part in (framework, _MODES.get(mode, mode)) if part)


@dataclass
class SpecTiming:
    """What to time for one spec."""

    spec: ModelSpec
    backends: Sequence[str]
    threads: int | None
    data_dir: str | None
    seed: int
    noise: bool = False  # also time the reference against itself (A/A)
    aliases: Sequence[str] = ()
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES
    limit: int | None = None  # training images, as the run used them
    device: str = "cpu"  # where the frameworks run, and ONNX Runtime's provider
    training: bool = True  # False: inference comparisons only


def _pairs(backends: Sequence[str]) -> list[tuple[str, str]]:
    reference = REFERENCE if REFERENCE in backends else backends[0]
    return [(name, reference) for name in backends if name != reference]


class _Timer:
    """The workers of one spec and the calibrated sides built on them."""

    def __init__(self, work: SpecTiming, protocol: Protocol, log: Callable[[str], None]):
        self.work, self.protocol, self.log = work, protocol, log
        text = dump_spec(work.spec)
        labels = list(work.backends)
        self.aa = (REFERENCE if REFERENCE in labels else labels[0]) if work.noise else None
        if self.aa is not None:
            labels.append(self.aa + AA_SECOND)
        self.workers = {label: Worker(label, WorkerSetup(label.split("#")[0], text,
                                                         work.threads, work.data_dir,
                                                         work.seed, work.limit,
                                                         work.device))
                        for label in labels}
        self.comparisons: list[Comparison] = []
        self.problems: list[str] = []

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()

    def side(self, label: str, command: str, batch: int | None = None) -> Side:
        worker = self.workers[label.removesuffix(AA_FIRST)]
        if command == "train":
            return Side(label, lambda units: tuple(worker.request("train", units)))
        return Side(label, lambda units: tuple(worker.request("calls", command, batch, units)))

    def calibrated(self, sides: list[Side], training: bool
                   ) -> tuple[dict[str, int], dict[str, float]]:
        p = self.protocol
        units, warmup = {}, {}
        for side in sides:
            units[side.label], warmup[side.label] = calibrate(
                side.window, p.warmup_steps if training else p.warmup_calls,
                p.training_seconds if training else p.latency_seconds, p.margin)
        return units, warmup

    def compare(self, kind: str, a: Side, b: Side, batch: int, aa: bool = False) -> None:
        training = kind == "training"
        self.log(f"  {kind} {a.label} vs {b.label}" + ("" if training else f", batch {batch}"))
        try:
            units, warmup = self.calibrated([a, b], training)
            if aa:  # the same work on both sides: two copies that stay in the same state
                units = dict.fromkeys(units, max(units.values()))
            self.comparisons.append(comparison(kind, "step" if training else "call", batch,
                                               a, b, units, warmup, self.protocol, aa=aa))
        except WorkerError as exc:
            if training:
                raise
            self.problems.append(f"{kind} {a.label} vs {b.label}, batch {batch}: {exc}")
            self.log(f"  not timed: {exc}")


def _epoch_estimates(comparisons: list[Comparison], steps: int) -> dict[str, Estimate]:
    """steps per epoch x the median time per step, per training label (not the A/A copies)."""
    estimates: dict[str, Estimate] = {}
    for c in comparisons:
        if c.kind != "training" or c.aa:
            continue
        for label, per_step in ((c.a, c.a_seconds_per_unit), (c.b, c.b_seconds_per_unit)):
            estimates.setdefault(label, Estimate(
                estimate=per_step.estimate * steps, ci_low=per_step.ci_low * steps,
                ci_high=per_step.ci_high * steps, n=per_step.n,
                method=f"{steps} steps per epoch x median step time; 95% percentile bootstrap"))
    return estimates


def _run_comparisons(timer: _Timer, steps: int) -> None:
    work = timer.work
    # A/A first, from the same initial state, the same steps on both copies: their training
    # state (and with it the speed of its arithmetic, e.g. denormal optimizer state) stays
    # alike, so whatever differs between them is the machine's noise
    if timer.aa is not None and work.training:
        timer.compare("training", timer.side(timer.aa + AA_FIRST, "train"),
                      timer.side(timer.aa + AA_SECOND, "train"), work.spec.train.batch_size,
                      aa=True)
    for a, b in _pairs(work.backends) if work.training else ():
        timer.compare("training", timer.side(a, "train"), timer.side(b, "train"),
                      work.spec.train.batch_size)
    for batch in work.batch_sizes:
        for a, b in _pairs(work.backends):
            timer.compare("native", timer.side(a, "predict", batch),
                          timer.side(b, "predict", batch), batch)
        if timer.aa is not None:
            timer.compare("native", timer.side(timer.aa + AA_FIRST, "predict", batch),
                          timer.side(timer.aa + AA_SECOND, "predict", batch), batch, aa=True)
        for name in work.backends:
            worker = timer.workers[name]
            ort = Side(ONNX_RUNTIME, lambda units, w=worker, n=batch:
                       tuple(w.request("calls", ONNX_RUNTIME, n, units)))
            timer.compare(ONNX_RUNTIME, timer.side(name, "predict", batch), ort, batch)


def time_spec(work: SpecTiming, protocol: Protocol, log: Callable[[str], None] = print
              ) -> SpecSpeed:
    """Every comparison of `work.spec`; WorkerError when a worker cannot start or train."""
    started = utc_now()
    timer = _Timer(work, protocol, log)
    try:
        described = {label: worker.request("describe")
                     for label, worker in timer.workers.items()}
        steps = described[work.backends[0]]["steps_per_epoch"]
        _run_comparisons(timer, steps)
    finally:
        timer.close()
    env = environment({label: d["environment"] for label, d in described.items()})
    return SpecSpeed(
        spec=work.spec.name, spec_hash=spec_hash(work.spec),
        training_hash=training_hash(work.spec), aliases=list(work.aliases),
        backends={name: describe_backend(name, described[name]["environment"])
                  for name in work.backends},
        threads=work.threads or 0, steps_per_epoch=steps,
        batch_size=work.spec.train.batch_size,
        epoch_estimate=_epoch_estimates(timer.comparisons, steps),
        comparisons=timer.comparisons, problems=timer.problems,
        protocol={**protocol.as_dict(), "batch_sizes": list(work.batch_sizes),
                  "threads": work.threads, "onnxruntime_graph_optimization": "all",
                  "timed_region": {
                      "training": "the backend's train_epoch over the window's batches "
                                  "(forward, loss, backward, optimizer update), data already "
                                  "in framework memory; no data set-up, no validation",
                      "native": "calls of the framework's predictor on one batch already in "
                                "framework memory, each blocking until its result is ready",
                      "onnxruntime": "session.run calls with a feed dict prepared once "
                                     f"({work.device.upper()} execution provider; inputs "
                                     "from host memory)"}},
        environment=env, started_utc=started, finished_utc=utc_now(), commit=env["commit"])
