"""The ETA of a run from the work its jobs have left, not from their count.

A job's work is epochs x training images x the model's multiply-accumulates per image (dense
layers: their weights; convolutions: their weights at every output position). Its seconds are
about a fixed part (process start, imports, export, latency) plus a rate times its work; both
are learned per backend and kind of model from the jobs that finish (least squares), so a run
whose small jobs come first does not promise the big ones at the small ones' pace, and
convolutions, which do many more multiply-accumulates per second than small dense layers, are
never estimated at an MLP's rate, nor MLPs at a CNN's (another backend's job of the same kind
serves). Until a job of each kind left has finished the ETA says "learning" (with the time the
jobs it can estimate need, when some can): an estimate from the wrong kind is off many times
over, and showed "ETA 0m00s" with jobs still to run. A resumed run also learns from the jobs
its folder already holds (their records' seconds), so it has an ETA from its start.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from harness.data import SPLIT_SIZES
from harness.run.job import Job
from harness.spec import ModelSpec, infer
from harness.spec.layers import Conv1D, Conv2D, DepthwiseConv2D, Inferred, SeparableConv2D


def macs_per_image(spec: ModelSpec) -> int:
    """Multiply-accumulates of one forward pass, about (at least the parameter count)."""
    total = 0
    for info in infer(spec).layers:
        total += info.params * info.layer.positions(Inferred(info.output_shape, info.padding))
    return max(total, 1)


def model_kind(spec: ModelSpec) -> str:
    """'conv' for a model with a convolution, else 'dense': their seconds per work differ."""
    convolutions = (Conv2D, DepthwiseConv2D, SeparableConv2D, Conv1D)
    return "conv" if any(isinstance(layer, convolutions) for layer in spec.layers) else "dense"


def _npz_training_size(spec: ModelSpec) -> int:
    """The training samples of a spec's .npz, from its header (1 where it cannot be read: the
    job's own check says why)."""
    from harness.data.npz import BadNpz, read_headers

    npz = spec.input.npz
    try:
        return read_headers(npz.resolved)["x_train"].shape[0] if npz is not None else 1
    except BadNpz:
        return 1


def expected_work(job: Job, spec: ModelSpec, epochs_done: int = 0) -> float:
    """The job's work; `epochs_done`: epochs its checkpoint already holds (not to do again)."""
    images = job.limit or SPLIT_SIZES.get(spec.input.dataset_name, {}).get("training") \
        or _npz_training_size(spec)
    epochs = max((job.epochs or spec.train.epochs) - epochs_done, 0)
    return float(epochs * images * macs_per_image(spec))


@dataclass(frozen=True)
class _Fit:
    overhead: float
    rate: float  # seconds per unit of work

    def predict(self, work: float) -> float:
        return self.overhead + self.rate * work


def _fit(points: list[tuple[float, float]]) -> _Fit | None:
    """seconds = overhead + rate x work over (work, seconds) points, both at least 0."""
    if not points:
        return None
    works = [w for w, _ in points]
    mean_w, mean_s = sum(works) / len(points), sum(s for _, s in points) / len(points)
    spread = sum((w - mean_w) ** 2 for w in works)
    if spread == 0:  # one size of job seen: proportional to work
        return _Fit(0.0, mean_s / mean_w if mean_w else 0.0)
    rate = sum((w - mean_w) * (s - mean_s) for w, s in points) / spread
    if rate < 0:
        return _Fit(mean_s, 0.0)
    overhead = mean_s - rate * mean_w
    if overhead < 0:  # through the origin
        return _Fit(0.0, sum(w * s for w, s in points) / sum(w * w for w in works))
    return _Fit(overhead, rate)


@dataclass
class Eta:
    """Learns job seconds from finished jobs; estimates the time the rest needs on `slots`
    jobs at once."""

    work: dict[str, float]  # job_id -> expected work
    backend: dict[str, str]  # job_id -> backend
    kind: dict[str, str] = field(default_factory=dict)  # job_id -> model_kind (default dense)
    slots: int = 1
    _seen: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)

    def started(self, job_id: str) -> None:
        self._started[job_id] = time.monotonic()

    def finished(self, job_id: str, recorded: float | None = None) -> None:
        """The job's seconds as the driver saw them, else as its record says (`recorded`)."""
        began = self._started.pop(job_id, None)
        seconds = recorded if began is None else time.monotonic() - began
        if seconds is not None:
            self._seen.setdefault(self._group(job_id), []).append((self.work[job_id], seconds))

    def learn(self, backend: str, kind: str, work: float, seconds: float) -> None:
        """A job finished before this run started: `seconds` for `work` (the work its
        process did: a resumed training's epochs after its checkpoint)."""
        self._seen.setdefault((backend, kind), []).append((work, seconds))

    def _group(self, job_id: str) -> tuple[str, str]:
        return self.backend[job_id], self.kind.get(job_id, "dense")

    def _left(self, pending: list[str]) -> tuple[float, bool]:
        """(seconds the jobs in flight and `pending` need on `slots` jobs at once, counting
        those with an estimate; whether some job has none: no job of its kind finished)."""
        fits = {group: _fit(points) for group, points in self._seen.items()}
        kinds = {kind: _fit([p for (_, seen), points in self._seen.items() if seen == kind
                             for p in points]) for _, kind in self._seen}

        def predict(job_id: str) -> float | None:
            backend, kind = self._group(job_id)
            fit = fits.get((backend, kind)) or kinds.get(kind)
            return None if fit is None else fit.predict(self.work[job_id])

        now = time.monotonic()
        left = [predict(job_id) for job_id in pending]
        for job_id, began in self._started.items():  # in flight: less the time it has run
            seconds = predict(job_id)
            left.append(None if seconds is None else max(seconds - (now - began), 0.0))
        known = sum(seconds for seconds in left if seconds is not None)
        return known / max(self.slots, 1), None in left

    def seconds_left(self, pending: list[str]) -> float | None:
        """Seconds until the jobs in flight and `pending` are done; None while some of them
        has no finished job of its kind to be estimated from."""
        seconds, learning = self._left(pending)
        return None if learning else seconds

    def text(self, pending: list[str]) -> str:
        seconds, learning = self._left(pending)
        if learning:
            return f"ETA learning, >{_duration(int(seconds))}" if seconds >= 1 else "ETA learning"
        if seconds == 0 and (pending or self._started):  # each job left outran its estimate
            return "ETA learning"
        return f"ETA {_duration(math.ceil(seconds))}"


def _duration(seconds: int) -> str:
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s"
