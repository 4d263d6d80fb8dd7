"""PROTOCOL.md stays in step with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chatroom.protocol import (
    MESSAGE_TYPES,
    ErrorCode,
    FrameDecoder,
    decode_message,
    encode_message,
    message_from_header,
)

DOC = (Path(__file__).resolve().parents[2] / "PROTOCOL.md").read_text(encoding="utf-8")


def block_after(marker: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\s*```\w*\n(.*?)```", DOC, re.DOTALL)
    assert match, f"no block marked {marker} in PROTOCOL.md"
    return match.group(1)


def test_the_hex_example_decodes_to_the_message_the_document_shows():
    data = bytes.fromhex(block_after("example-frame:hex"))
    expected = message_from_header(json.loads(block_after("example-frame:message")))
    decoder = FrameDecoder()
    (frame,) = decoder.feed(data)
    decoder.feed_eof()
    assert decode_message(frame) == expected
    assert encode_message(expected) == data
    assert f"is {len(data)} bytes on the wire" in DOC


def test_every_message_type_and_error_code_is_documented():
    for name in MESSAGE_TYPES:
        assert f"| `{name}` |" in DOC, f"message {name} is not in PROTOCOL.md"
    for code in ErrorCode:
        assert f"| `{code.value}` |" in DOC, f"error code {code.value} is not in PROTOCOL.md"
