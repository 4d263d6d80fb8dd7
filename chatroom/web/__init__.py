"""The web door: a browser joins from a page the server itself serves, with nothing to
install.  ``pages`` serves the page (files shipped in ``static/``, a strict
Content-Security-Policy); ``wire`` carries the framed protocol one frame per binary
WebSocket message (websockets' sans-I/O layer makes the WebSocket frames); ``door``
runs one browser connection on the same room core as every other client.  PROTOCOL.md
stays the one specification.
"""
