"""chatroom: a LAN chat room -- framed TCP server, full-screen terminal client."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
