"""Importing this module registers every sub-command."""

from sentinel.cli import cmd_check, cmd_ingest, cmd_search  # noqa: F401
