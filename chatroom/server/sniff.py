"""Which door a connection came to, from its first bytes.  No I/O.

One port speaks three protocols: the framed one (a frame's first byte is always 0: its
length prefix, and a header is never 16 MiB long), HTTP (a request starts with a method
and a space) and IRC (a command word, or ``@`` and IRCv3 tags).  TLS is unwrapped
before this.  TCP may deliver the first bytes in pieces -- ``G``, then ``ET / HTTP/1.1``
-- so a door is chosen only once the prefix is decisive: until then the caller reads
more (at most ``MAX_SNIFF`` bytes are ever needed).

Each door says of a prefix whether it is its own (True), not (False), or cannot tell
yet (None).  In the order given, the first door that claims it wins -- unless a door
before it cannot tell yet: then nothing is chosen, and the caller reads more.  A prefix
no door claims is the framed protocol's (whose decoder says what is wrong with it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["FRAMED_DOOR", "MAX_SNIFF", "Claim", "choose"]

#: What the framed protocol is called among the doors.
FRAMED_DOOR = "framed"

#: No door needs more than this to decide ("OPTIONS " is 8 bytes); past it, whatever
#: claims the prefix (or the framed protocol) gets it.
MAX_SNIFF = 16

#: A door's answer to "is this prefix yours?": True, False, or None (cannot tell yet).
Claim = Callable[[bytes], "bool | None"]

def choose(prefix: bytes, doors: Sequence[tuple[str, Claim]]) -> str | None:
    """The door ``prefix`` (a connection's first bytes, at least one) belongs to, or
    None while it cannot be told: read more and ask again."""
    undecided = False
    for name, claims in doors:
        claim = claims(prefix)
        if claim is None:
            undecided = True
        elif claim and not undecided:
            return name
    if undecided and len(prefix) < MAX_SNIFF:
        return None
    for name, claims in doors:  # (only past MAX_SNIFF: a door that still cannot tell)
        if claims(prefix) is not False:
            return name
    return FRAMED_DOOR
