"""What the user typed, judged before anything is sent: each command's usage errors."""

from __future__ import annotations

import pytest

from chatroom.client.commands import Command, Invalid, parse_input


@pytest.mark.parametrize(("typed", "says"), [
    ("/me", "usage: /me ACTION"),
    ("/msg bob", "usage: /msg NICK TEXT"),
    ("/nick", "usage: /nick"),
    ("/nick a b", "usage: /nick"),
    ("/kick", "usage: /kick"),
    ("/window two", "usage: /window N"),
    ("/bell loud", "usage: /bell on|off|mentions"),
    ("/send", "usage: /send [NICK] PATH"),
    ("/accept x", "usage: /accept [N]"),
    ("/cancel 1 2", "usage: /cancel [N]"),
    ("/gban bob forever", "'forever' is not a time like 30m"),
    ("/mode +z", "no mode z"),
    ("/mode +l", "l needs a value"),
    ("/join a b c", "usage: /join ROOM [KEY]"),
])
def test_a_command_typed_wrong_says_its_usage(typed: str, says: str) -> None:
    result = parse_input(typed)
    assert isinstance(result, Invalid), result
    assert says in result.reason


@pytest.mark.parametrize("typed", ["/me waves", "/msg bob hi", "/nick ann", "/window 2", "/bell mentions",
                                   "/send notes.txt", "/accept", "/accept 3", "/ban bob 2h", "/mute bob",
                                   "/join dev"])
def test_a_command_typed_right_is_a_command(typed: str) -> None:
    assert isinstance(parse_input(typed), Command)
