"""The server side: rooms and their rules, the file relay, and the sockets.

What decides, with no I/O (tested with no sockets, threads or clocks)::

    session.py    ServerSession: one connection's protocol state -- framing, what is
                  legal in which phase, rate limits, deadlines, keepalive, closing
    room.py       ChatState: rooms, members, nicks, history, sessions     (the chat's rules)
    relay.py      Relay: file transfers in rounds, under credit            (the file rules)
    bans.py       BanList: bans of an address or of a person
    ratelimit.py  RateLimiter: burst, then throttle, then disconnect
    guard.py      AuthGuard: slows down password and operator-token guessing
    wire.py       wire formats: each message encoded once per format in use
    memstore.py   MemoryStore: --memory's bounded history (no I/O either)

What does I/O::

    store.py      HistoryStore: SQLite history, sessions' ids, bans (and ``Store``,
                  what the server needs of either store)
    outbox.py     Outbox and Flusher: bounded per-client output, one writer thread
    hub.py        Hub: the one lock around ChatState, and the fan-out of what it decides
    tcp.py        ChatServer / ChatHandler: socketserver, one reader thread per
                  connection, a pump around its ServerSession

Nothing here imports ``chatroom.client`` or ``chatroom.ui``.  (No re-exports either:
importing ``chatroom.server.room`` must not pull in sockets and threads.)
"""
