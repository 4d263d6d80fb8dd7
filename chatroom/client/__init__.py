"""The client side, with no terminal in it.

::

    connection.py  ChatClient: the network thread (connect, keepalive, reconnect,
                   resume, pacing, holes); reports everything as events
    handshake.py   ClientHandshake: hello, the password proofs, resume fallback (no I/O)
    session.py     ClientSession: what each server message means -- where we are, the
                   resume replay, holes fetched, every message once and in order (no I/O)
    transfers.py   Transfers: sending and receiving files, verified by SHA-256
    filenames.py   safe names for received files, never overwriting
    commands.py    what a typed line means: chat or a /command          (no I/O)
    controller.py  turns typed lines into ChatClient calls               (no terminal)
    transcript.py  the scrollback model the UIs draw                     (no terminal)

Nothing here imports ``chatroom.server`` or prompt_toolkit; ``chatroom.ui`` draws.
"""
