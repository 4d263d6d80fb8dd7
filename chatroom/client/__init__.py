"""The client side, with no terminal in it.

::

    connection.py  ChatClient: the network thread (connect, handshake, keepalive,
                   reconnect, resume, pacing); reports everything as events
    transfers.py   Transfers: sending and receiving files, verified by SHA-256
    filenames.py   safe names for received files, never overwriting
    commands.py    what a typed line means: chat or a /command          (no I/O)
    controller.py  turns typed lines into ChatClient calls               (no terminal)
    transcript.py  the scrollback model the UIs draw                     (no terminal)

Nothing here imports ``chatroom.server`` or prompt_toolkit; ``chatroom.ui`` draws.
"""
