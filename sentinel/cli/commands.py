"""Importing this module registers every sub-command."""

from sentinel.cli import (  # noqa: F401
    cmd_alerts,
    cmd_analyzer,
    cmd_check,
    cmd_demo,
    cmd_ingest,
    cmd_init,
    cmd_ops,
    cmd_rules,
    cmd_search,
)
