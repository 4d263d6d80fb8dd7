"""Messages to frames and back (no I/O): one msgspec pass each way, every message
type registered once, errors that name the field at fault."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from chatroom.errors import InvalidField, LocalProtocolError, MalformedHeader, UnknownMessageType

# Every message class is defined before ``_register`` indexes them: the catalogue first.
from chatroom.protocol import files, messages, roles  # noqa: F401
from chatroom.protocol.base import ENCODER, MESSAGE_TYPES, Message, _FieldProblem
from chatroom.protocol.framing import BODY_KEY, MAX_BODY_SIZE, MAX_HEADER_SIZE, PREFIX, Frame, pack_frame, parse_header
from chatroom.text import unencodable

__all__ = [
    "encode_message",
    "encode_plain",
    "decode_message",
    "message_from_header",
    "claimed_id",
]


# --------------------------------------------------------------------------- encode / decode


def _register() -> None:
    """Index every message class by its type, and note which fields need care."""
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__dict__.get("ALIAS"):  # (another class's type, with more fields: TaggedChat)
            continue
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str)  # (every message names its type)
        cls.TYPE = tag
        fields = msgspec.structs.fields(cls)
        cls._NESTED = frozenset(f.name for f in fields if _holds_records(f.type))
        cls._HAS_BODY = any(f.name == "data" for f in fields)
        MESSAGE_TYPES[tag] = cls


def _holds_records(tp: Any) -> bool:
    text = repr(tp)
    return any(name in text for name in ("MemberInfo", "RoomInfo", "Chat", "ModeChange", "RoomBanInfo"))


_register()

#: One decoder per message type: the frame's envelope already said which.
#: type name -> (class, its decoder, whether it carries a body): one lookup per frame.
_DECODING = {name: (cls, msgspec.json.Decoder(cls), cls._HAS_BODY) for name, cls in MESSAGE_TYPES.items()}


def encode_message(
    msg: Message, *, max_header: int = MAX_HEADER_SIZE, max_body: int = MAX_BODY_SIZE
) -> bytes:
    """The complete wire frame for ``msg``."""
    body = b""
    try:
        if not msg._NESTED and not msg._HAS_BODY and None not in msgspec.structs.astuple(msg):
            data = ENCODER.encode(msg)  # nothing to leave out: the struct as it is (most chats, acks)
        else:
            header = msg.to_header()
            body = msg.data if msg._HAS_BODY else b""  # type: ignore[attr-defined]
            if body:
                header[BODY_KEY] = len(body)
            data = ENCODER.encode(header)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"header cannot be encoded: {exc}") from None
    return pack_frame(data, body, max_header=max_header, max_body=max_body)


def encode_plain(msg: Message, max_header: int = MAX_HEADER_SIZE) -> bytes:
    """:func:`encode_message` for a message with every field set -- no None to leave
    out, no body, no records (a chat the server stamped, its ack): one C pass and the
    prefix, for the hot path.  The caller vouches for that; the result is the same."""
    data = ENCODER.encode(msg)
    size = len(data)
    if size > max_header:
        raise LocalProtocolError(f"header of {size} bytes is over {max_header}")
    return (_PREFIXES[size] if size < _PREFIXED else PREFIX.pack(size)) + data


#: The length prefixes of short headers, made once (a chat is a few hundred bytes).
_PREFIXED = 4096
_PREFIXES = tuple(PREFIX.pack(size) for size in range(_PREFIXED))


def decode_message(frame: Frame) -> Message:
    """The typed message carried by ``frame``."""
    return _decode(frame.type, frame.raw_header, frame.body, frame.declares_body)


def message_from_header(header: dict[str, Any], body: bytes = b"") -> Message:
    """Validate a decoded header (and body) and build its typed message."""
    try:
        raw = json.dumps(header, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidField(str(header.get("type")), "", f"not JSON: {exc}") from None
    return _decode(header.get("type"), raw, body, BODY_KEY in header)


def _decode(type_name: object, raw: bytes, body: bytes, declares_body: bool) -> Message:
    entry = _DECODING.get(type_name) if isinstance(type_name, str) else None
    if entry is None:
        raise UnknownMessageType(type_name)
    cls, decoder, has_body = entry
    if (body or declares_body) and not has_body:
        raise InvalidField(cls.TYPE, BODY_KEY, "this message carries no body")
    try:
        msg = decoder.decode(raw)
        if has_body:
            msg = msgspec.structs.replace(msg, data=body)
    except _FieldProblem as exc:
        raise InvalidField(cls.TYPE, exc.field, exc.problem) from None
    except msgspec.ValidationError as exc:
        raise _invalid(cls.TYPE, str(exc)) from None
    except msgspec.DecodeError:
        raise _undecodable(cls.TYPE, raw) from None
    return msg


_AT = re.compile(r"(.*?)(?: - at `\$\.?(.*)`)?")


#: msgspec's wording -> ours (the range first: it begins like the type).
_PROBLEMS = (
    ("Expected `int` <= 9223372036854775807", "integer out of range"),
    ("Expected `int` >= -9223372036854775808", "integer out of range"),
    ("Expected `int` >= 0", "must not be negative"),
    ("Expected `str`", "expected a string"),
    ("Expected `int`", "expected an integer"),
    ("Expected `bool`", "expected true or false"),
    ("Expected `float`", "expected a number"),
    ("Expected `array`", "expected a list"),
    ("Expected `object`", "expected an object"),
    ("Invalid enum value", "not one of the allowed values:"),
    ("Integer value out of range", "integer out of range"),
)


def _invalid(type_name: str, text: str) -> InvalidField:
    """msgspec's "Expected `int`, got `str` - at `$.seq`" as an InvalidField."""
    match = _AT.fullmatch(text)
    problem, path = (match.group(1), match.group(2) or "") if match else (text, "")
    missing = re.fullmatch(r"Object missing required field `(\w+)`", problem)
    if missing:
        return InvalidField(type_name, f"{path}.{missing.group(1)}" if path else missing.group(1), "missing")
    for theirs, ours in _PROBLEMS:
        problem = problem.replace(theirs, ours)
    return InvalidField(type_name, path, problem)


def _undecodable(type_name: str, raw: bytes) -> InvalidField:
    """msgspec refused JSON that the framing accepted: a lone surrogate (``"\\ud83d"``)
    or a NaN/Infinity.  Find the field that holds it, to name it."""
    try:
        header = parse_header(raw)
    except MalformedHeader as exc:  # e.g. also a number too long for Python's own parser
        return InvalidField(type_name, "", str(exc))
    for name, value in header.items():
        problem = _unrepresentable(value)
        if problem is not None:
            return InvalidField(type_name, name, problem)
    return InvalidField(type_name, "", "cannot be decoded")


class _Claimed(msgspec.Struct):
    id: Any = None


_CLAIMED = msgspec.json.Decoder(_Claimed)


def claimed_id(frame: Frame) -> Any:
    """The ``id`` a frame's header holds, whatever it is, for echoing in an error about
    it (the caller checks that it is a sane id); None if it has none or is unreadable."""
    try:
        return _CLAIMED.decode(frame.raw_header).id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        try:
            return parse_header(frame.raw_header).get("id")
        except MalformedHeader:
            return None


def _unrepresentable(value: Any) -> str | None:
    if isinstance(value, str):
        at = unencodable(value)
        if at is not None:
            return f"not valid Unicode: a lone surrogate U+{ord(value[at]):04X} at character {at}"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"expected a number, got {value}"
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = _unrepresentable(k) or _unrepresentable(v)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _unrepresentable(v)
            if problem is not None:
                return problem
    return None
