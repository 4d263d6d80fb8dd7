"""The IRC door: IRC clients (irssi, weechat, HexChat...) in the same rooms as everyone.

``lines`` parses and writes IRC lines (no I/O); ``numerics`` names the replies;
``wire`` turns the rooms' messages into IRC lines (a wire format of the hub's fan-out);
``session`` is one IRC connection's state: registration, capabilities, what each
command asks for (no I/O); ``door`` carries that out on the room core.  IRC.md says
what subset of IRC is spoken.
"""
