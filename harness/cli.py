"""`harness` command line: each subcommand parses its arguments and calls one library function.

The subcommands live in harness.commands, one module per group; this module assembles their
parsers and maps errors to exit statuses. Frameworks are imported only by the commands that
need them, so `harness list` starts fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib.metadata
import os
import sys

from harness.commands import args as opt
from harness.commands import (
    bench,
    export,
    importing,
    report,
    retime,
    run,
    spec_commands,
    train,
)
from harness.commands.common import err_console, print_error
from harness.errors import UsageError
from harness.run.job import FULL_DISK
from harness.spec import SpecError

# OSErrors that say a resource is lacking (space, quota: FULL_DISK; write access), not that
# the harness is wrong: one line and exit 3, as an unavailable framework or dataset
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES})
# what is kept when a command stopped for want of space is run again
KEPT_ON_RERUN = {"run": ": finished jobs are kept", "retime": ": finished re-timings are kept"}


def build_parser() -> argparse.ArgumentParser:
    parser = opt.Parser(
        prog="harness", description="Compare Keras and PyTorch honestly: one framework-neutral "
        "spec, the same weights, batches and maths in both, ONNX Runtime latency, one report.")
    parser.add_argument("--version", action="version", version=f"harness {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command_group in (spec_commands, train, export, run, retime, report, bench,
                          importing):
        command_group.register(sub)
    return parser


def package_version() -> str:
    """The installed package's version (a source tree that is not installed has none)."""
    try:
        return importlib.metadata.version("harness")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: version unknown)"


def resource_error(exc: OSError, command: str) -> str:
    """The one line for an OSError of FULL_DISK or NOT_WRITABLE: the path, what happened,
    what to do."""
    what = exc.strerror or os.strerror(exc.errno or 0)
    if exc.errno in FULL_DISK:
        hint = f"free space, then run the same command again{KEPT_ON_RERUN.get(command, '')}"
    else:
        hint = "give write access to it, or write elsewhere (--out)"
    where = exc.filename if exc.filename is not None else "a file it writes"
    return f"{where}: {what[:1].lower()}{what[1:]} ({hint})"


def main(argv: list[str] | None = None) -> int:
    from harness.backends import BackendUnavailable
    from harness.data import DataError
    from harness.export.driver import ExportError
    from harness.ort import ProviderUnavailable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "plan", None) is not None:
            args = run.with_plan(parser, args, sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except (SpecError, UsageError) as exc:  # a spec: one line per problem, naming the file
        print_error(str(exc))
        return 2
    except (BackendUnavailable, DataError, ProviderUnavailable) as exc:
        print_error(str(exc))
        return 3
    except ExportError as exc:
        print_error(str(exc))
        return 1
    except OSError as exc:
        if exc.errno not in FULL_DISK | NOT_WRITABLE:
            raise
        print_error(resource_error(exc, args.command))
        return 3
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
