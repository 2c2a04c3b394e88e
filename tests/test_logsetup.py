"""The daemon's log formatters mask the secrets they are handed, in text and JSON lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest

from sentinel.cli.logsetup import setup_logging
from sentinel.credentials import SECRETS, Secrets


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_formatter_masks_what_its_secrets_know(fmt: str, capsys: pytest.CaptureFixture[str],
                                                   restore_logging: None) -> None:
    secrets = Secrets()
    secrets.remember("tok-only-this-object-knows")
    secrets.remember("abc")  # too short to mask without mangling ordinary words
    setup_logging("INFO", fmt, secrets)
    try:
        raise RuntimeError("failed with tok-only-this-object-knows")
    except RuntimeError:
        logging.getLogger("sentinel.test").exception("sending to json://h/x?token=tok-only-this-object-knows abc")
    err = capsys.readouterr().err
    assert "tok-only-this-object-knows" not in err
    assert "token=*** abc" in err and "RuntimeError: failed with ***" in err
    if fmt == "json":
        doc = orjson.loads(err.splitlines()[0])
        assert doc["msg"] == "sending to json://h/x?token=*** abc" and "***" in doc["exc"]
    # Another Secrets object is another memory: the process's own never learnt this value.
    assert SECRETS.mask("tok-only-this-object-knows") == "tok-only-this-object-knows"
