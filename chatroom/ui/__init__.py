"""What people see: the full-screen prompt_toolkit app (``tui.py``) and plain mode
(``plain.py``, for pipes, scripts and screen readers).  The UI never touches sockets:
it reads ``chatroom.client`` events and calls ``ChatClient`` methods."""
