"""Importing this module registers every sub-command."""

from sentinel.cli import cmd_alerts, cmd_analyzer, cmd_check, cmd_demo, cmd_ingest, cmd_ops, cmd_rules, cmd_search  # noqa: F401
