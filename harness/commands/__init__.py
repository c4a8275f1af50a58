"""The subcommands of `harness` (harness.cli assembles them): each module registers its
commands' parsers and holds their `cmd_*` functions."""
