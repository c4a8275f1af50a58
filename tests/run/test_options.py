"""`harness run`'s options, defined once (harness.run.options): the command line, RunConfig's
defaults and the report's reproduce commands all agree with the table."""

from __future__ import annotations

from dataclasses import MISSING, fields

from harness.cli import build_parser
from harness.commands import args as opt
from harness.report.reproduce import option_tokens, run_command
from harness.run.options import BY_FIELD, RUN_OPTIONS
from harness.run.plan import RunConfig

# RunConfig fields that no option sets: a plan's groups, and one the harness fixes
NO_OPTION = {"groups", "latency_warmup"}


def _run_parser_defaults() -> dict[str, object]:
    args = build_parser().parse_args(["run", "--specs", "mlp2"])
    return vars(args)


def test_every_config_field_has_one_option_and_its_default() -> None:
    assert set(BY_FIELD) == {item.name for item in fields(RunConfig)} - NO_OPTION
    config = RunConfig(specs=[], backends=[])
    parsed = _run_parser_defaults()
    for option in RUN_OPTIONS:
        assert option.check in opt.CHECKS
        if option.field not in ("specs", "backends"):
            assert getattr(config, option.field) == option.default
        if option.field != "specs":
            assert parsed[option.dest] == option.default, option.flag
    item = next(item for item in fields(RunConfig) if item.name == "batch_sizes")
    assert item.default is MISSING  # a list default: a fresh one per config
    assert RunConfig([], []).batch_sizes is not RunConfig([], []).batch_sizes


def test_help_and_defaults_users_see() -> None:
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    helps = {action.dest: action.help for action in run._actions}
    assert helps["opset"] == "ONNX opset (default: 18)"
    assert helps["accuracy_gate"].endswith("(default 0.99)")
    assert helps["limit_test"] == "use the first N test images (default: all 10,000)"
    assert {"plan", "dataset", "out", "executor", "workers"} <= set(helps)


def test_a_reproduce_command_parses_back_to_the_settings() -> None:
    settings = {"providers": ["cpu", "cuda"], "batch_sizes": [8], "epochs": 3, "limit": 100,
                "limit_test": 50, "threads": 2, "device": "cpu", "opset": 17,
                "latency_min_runs": 5, "latency_min_seconds": 0.1, "compile": "compiled",
                "ort_variants": ["fp16"], "accuracy_gate": 0.5, "strict_providers": True,
                "tf32": True, "layout": "nchw", "download": True, "data_dir": "/somewhere",
                "job_id": "x", "epoch_timing": "steady", "latency_warmup": 5}
    assert option_tokens({"compile": "eager", "batch_sizes": [1, 32, 256], "tf32": False}) == []
    command = run_command(settings, ["mlp2"], ["torch"], [1, 2], "out")
    args = build_parser().parse_args(command.split()[1:])
    assert args.compile == ["compiled"] and args.data_dir is None and args.seeds == [1, 2]
    for key, value in settings.items():
        if key in ("compile", "data_dir") or not hasattr(args, key):
            continue
        assert getattr(args, key) == value, key
