"""The decoder's prefix shortcut reads ``re``'s private parser: this says so loudly when a Python release moves it."""

from __future__ import annotations

import re

from sentinel.decode.engine import regex_internals, start_texts

# What _item_texts in decode/engine.py reads from the opcode constants.
USED_CONSTANTS = ("LITERAL", "AT", "AT_BEGINNING", "AT_BEGINNING_STRING", "IN", "SUBPATTERN", "BRANCH",
                  "MAX_REPEAT", "MIN_REPEAT")


def test_the_private_parser_still_has_what_the_decoder_reads() -> None:
    parse, constants = regex_internals()
    missing = [name for name in USED_CONSTANTS if not hasattr(constants, name)]
    assert not missing, f"re._constants lost {missing}: decode/engine.py's start_texts must follow this Python"
    items = list(parse("ab", 0))
    assert items == [(constants.LITERAL, ord("a")), (constants.LITERAL, ord("b"))], items


def test_the_shortcut_still_works_through_it() -> None:
    # Were the parser's shape to change, start_texts would quietly give None (every pattern tried on every line).
    assert start_texts(re.compile(r"(?:error: )?Failed", re.DOTALL)) == frozenset({"er", "Fa"})
