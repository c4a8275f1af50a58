"""The plan of a matrix run: the command's configuration (RunConfig) expanded into its jobs
(spec x sweep point x seed x backend x compile mode), each with its resume key. Writes
nothing."""

from __future__ import annotations

import fnmatch
from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from typing import Any

from harness.errors import UsageError
from harness.latency.variants.catalog import check_compile_modes
from harness.run import options
from harness.run.job import Job, new_job
from harness.run.sweeps import Override, apply_point, check_job_count, grid, parse_set, point_count
from harness.spec import ModelSpec, SpecError, SpecProblem, list_specs, load_spec, spec_hash
from harness.spec.loader import ALL_ZOOS
from harness.training import COMPILE_MODES, EAGER, EPOCH_TIMING


@dataclass(frozen=True)
class SpecGroup:
    """Specs that run with the same seeds (None: each spec's own train.seed)."""

    specs: list[str]
    seeds: list[int] | None = None


def _default(name: str) -> Any:
    """A RunConfig field's default, from its option (harness.run.options)."""
    return field(default_factory=partial(options.default, name))


@dataclass(frozen=True)
class RunConfig:
    """What `harness run` was asked, field by field; each field's option and default:
    harness.run.options."""

    specs: list[str]
    backends: list[str]
    providers: list[str] = _default("providers")
    batch_sizes: list[int] = _default("batch_sizes")
    seeds: list[int] | None = _default("seeds")  # None: each spec's own train.seed
    epochs: int | None = _default("epochs")
    limit: int | None = _default("limit")
    limit_test: int | None = _default("limit_test")
    threads: int | None = _default("threads")
    device: str = _default("device")
    sets: list[str] = _default("sets")
    data_dir: str | None = _default("data_dir")
    # missing dataset files: harness.data.ensure_files' download
    download: bool | None = _default("download")
    opset: int = _default("opset")
    latency_warmup: int = 5  # no option: untimed calls before each latency figure
    latency_min_runs: int = _default("latency_min_runs")
    latency_min_seconds: float = _default("latency_min_seconds")
    # a device ORT session with nodes on the CPU is not timed
    strict_providers: bool = _default("strict_providers")
    tf32: bool = _default("tf32")  # TF32 maths in both frameworks (harness.training.TrainConfig)
    layout: str = _default("layout")  # PyTorch's CNN memory layout
    # harness.latency.variants, timed and scored in each job's latency step beside the float32
    # export
    ort_variants: list[str] = _default("ort_variants")
    # a job per mode (harness.training.COMPILE_MODES): training and native latency in it
    compile_modes: list[str] = _default("compile_modes")
    accuracy_gate: float = _default("accuracy_gate")  # of the float32 model's accuracy
    groups: list[SpecGroup] = field(default_factory=list)  # a plan's groups: replace specs, seeds

    def spec_groups(self) -> list[SpecGroup]:
        return self.groups or [SpecGroup(self.specs, self.seeds)]


STUDY_PREFIX = "study:"
ZOO_PREFIX = "zoo:"


def _study(name: str, zoo: list[str]) -> list[str]:
    """The zoo specs whose `reference.study` is `name`."""
    studies: dict[str, list[str]] = {}
    for spec_name in zoo:
        reference = load_spec(spec_name).reference
        if reference is not None and reference.study:
            studies.setdefault(reference.study, []).append(spec_name)
    if name not in studies:
        raise UsageError(f"--specs: {STUDY_PREFIX}{name}: no such study; expected one of "
                         f"{sorted(studies)}")
    return studies[name]


def resolve_specs(patterns: list[str]) -> list[str]:
    """Names, globs over the zoos, `study:NAME`, `all` (the MNIST zoo), `zoo:NAME`, or paths
    of YAML files -> references."""
    zoo, chosen = list_specs(ALL_ZOOS), []
    for pattern in patterns:
        if pattern == "all":
            matches = list_specs()
        elif pattern.startswith(ZOO_PREFIX):
            matches = list_specs(pattern.removeprefix(ZOO_PREFIX))
        elif pattern.startswith(STUDY_PREFIX):
            matches = _study(pattern.removeprefix(STUDY_PREFIX), zoo)
        elif any(ch in pattern for ch in "*?["):
            matches = fnmatch.filter(zoo, pattern)
        else:
            matches = [pattern]
        if not matches:
            raise SpecError([SpecProblem("", f"--specs {pattern!r} matches no zoo spec")])
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


@dataclass(frozen=True)
class Plan:
    specs: dict[str, ModelSpec]  # by name; written to RUN_DIR/specs/<name>.yaml
    jobs: list[Job]


@dataclass(frozen=True)
class _PlannedSpec:
    source: str  # the --specs entry (and sweep point) it comes from, for messages
    base_name: str
    point: dict[str, Any]
    spec: ModelSpec


def _point_specs(ref: str, points: list[dict[str, Any]]) -> list[_PlannedSpec]:
    base = load_spec(ref)
    planned = []
    for point in points:
        spec = apply_point(base, point)
        source = f"{ref} with --set {point}" if point else ref
        planned.append(_PlannedSpec(source, base.name, point, spec))
    return planned


def _check_job_count(groups: list[tuple[list[str], list[int] | None]],
                     overrides: list[Override], jobs_per_seed: int) -> None:
    """Refuse a matrix past MAX_JOBS by arithmetic, before the grid is expanded and each point
    applied to each spec (a spec in several groups is counted in each: at most a few
    too many)."""
    seeded = sum(len(refs) * len(seeds or [None]) for refs, seeds in groups)
    check_job_count(seeded * point_count(overrides) * jobs_per_seed,
                    "--specs x --seeds x --set x --backends x --compile")


def _unique_specs(config: RunConfig, jobs_per_seed: int
                  ) -> dict[str, tuple[_PlannedSpec, list[int]]]:
    """Every spec to run by name (the start of its job ids), with its seeds (a spec in several
    groups runs with all their seeds). Two sources of one name and different contents would
    overwrite each other's spec file and jobs: refused. `jobs_per_seed`: backends x modes."""
    overrides = [parse_set(text) for text in config.sets]
    groups = [(resolve_specs(group.specs), group.seeds) for group in config.spec_groups()]
    _check_job_count(groups, overrides, jobs_per_seed)
    points = grid(overrides)
    chosen: dict[str, tuple[_PlannedSpec, list[int]]] = {}
    for refs, seeds in groups:
        for ref in refs:
            for planned in _point_specs(ref, points):
                _add_planned(chosen, planned, seeds or [planned.spec.train.seed])
    return chosen


def _add_planned(chosen: dict[str, tuple[_PlannedSpec, list[int]]], planned: _PlannedSpec,
                 seeds: list[int]) -> None:
    name = planned.spec.name
    if name not in chosen:
        chosen[name] = (planned, list(dict.fromkeys(seeds)))
        return
    first, known = chosen[name]
    if spec_hash(first.spec) != spec_hash(planned.spec):
        raise UsageError(
            f"--specs: spec name {name!r}: given by both {first.source!r} and "
            f"{planned.source!r} with different contents: job ids must be unique; "
            "rename one (its `name:` field) or leave one out")
    known.extend(seed for seed in seeds if seed not in known)


def job_options(config: RunConfig) -> dict[str, Any]:
    """The run options every job of `config` carries: RunConfig's fields that are Job fields."""
    return {name: getattr(config, name) for name in sorted(_OPTION_NAMES)}


def _compile_modes(config: RunConfig) -> list[str]:
    try:
        modes = check_compile_modes(config.compile_modes)
    except ValueError as exc:
        raise UsageError(f"--compile: {exc}") from None
    if not modes:
        raise UsageError(f"--compile: no mode given; expected some of {list(COMPILE_MODES)}")
    return modes


def job_id(spec_name: str, backend: str, seed: int, compile_mode: str) -> str:
    """The job's folder name; the mode only when not eager, so the ids of runs made before
    compile modes existed stay the same."""
    mode = "" if compile_mode == EAGER else f"--{compile_mode}"
    return f"{spec_name}--{backend}--seed{seed}{mode}"


def plan_jobs(config: RunConfig) -> Plan:
    """Expand the matrix (spec x sweep point x seed x backend x compile mode); writes
    nothing."""
    options, modes = job_options(config), _compile_modes(config)
    backends = list(dict.fromkeys(config.backends))
    planned = _unique_specs(config, len(backends) * len(modes))
    jobs = []
    for name, (item, seeds) in planned.items():
        for seed in seeds:
            for backend in backends:
                jobs += [new_job(
                    job_id=job_id(name, backend, seed, mode), spec=name,
                    base_spec=item.base_name, spec_hash=spec_hash(item.spec),
                    overrides=item.point,
                    study=item.spec.reference.study if item.spec.reference else None,
                    backend=backend, seed=seed, compile=mode, **options,
                    epoch_timing=EPOCH_TIMING) for mode in modes]
    return Plan({name: item.spec for name, (item, _) in planned.items()}, jobs)


def option_defaults() -> dict[str, Any]:
    """Each run option's default, and each job field of a matrix dimension added later: the
    behaviour of a job recorded before the option or dimension existed. (So a new option must
    default to what the harness did before it, which keeps long runs resumable across
    versions; an option that changes old behaviour needs a new job field.)"""
    defaults = {item.name: item.default if item.default is not MISSING
                else item.default_factory()
                for item in fields(RunConfig)
                if item.default is not MISSING or item.default_factory is not MISSING}
    return {**defaults, **_DIMENSION_DEFAULTS}


# RunConfig fields that say which jobs exist (their ids) rather than how each one runs.
# run-wide, not a job's: what to plan, and `download` (the up-front data check's alone)
_NOT_OPTIONS = frozenset({"specs", "backends", "seeds", "sets", "groups", "compile_modes",
                          "download"})
# Job fields of dimensions added after runs were recorded: a job without one ran in this value.
_DIMENSION_DEFAULTS = {"compile": EAGER}
_OPTION_NAMES = frozenset(item.name for item in fields(RunConfig)) - _NOT_OPTIONS
