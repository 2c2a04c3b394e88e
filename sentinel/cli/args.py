"""What every sub-command's parser shares: the sub-parsers type and the ``--config`` option."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

# A string: the class is generic only to type checkers, not at run time on Python 3.11.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, default=None,
                   help="path to sentinel.yaml (default: $SENTINEL_CONFIG, /etc/sentinel/sentinel.yaml, "
                        "else the default config shipped in the package)")
