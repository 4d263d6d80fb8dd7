"""The layers hold: import contracts, read from the source (no imports run).

* ``server/`` imports nothing of the doors (``irc/``, ``web/``), the cluster, the client
  or the UI: only the composition root (``app.py``, and the commands that call it)
  knows them all.  ``client/`` imports nothing of ``server/`` or ``ui/``; the protocol
  nothing above it.
* The pure modules -- protocol, rules, sessions, the client's own state -- do no I/O:
  neither they nor anything of chatroom they import (however deep) imports sockets,
  TLS, threads, selectors, SQLite, Redis or subprocesses.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "chatroom"

#: Modules that must do no I/O, themselves or through what they import.
PURE = [
    "chatroom.protocol", "chatroom.protocol.framing", "chatroom.protocol.messages", "chatroom.protocol.base",
    "chatroom.protocol.files", "chatroom.protocol.codec", "chatroom.errors",
    "chatroom.text", "chatroom.auth", "chatroom.redact",
    "chatroom.server.session", "chatroom.server.room", "chatroom.server.relay", "chatroom.server.bans",
    "chatroom.server.ratelimit", "chatroom.server.guard", "chatroom.server.nicks", "chatroom.server.sniff",
    "chatroom.server.search", "chatroom.server.wire", "chatroom.server.doors", "chatroom.server.chat_path",
    "chatroom.server.fitting", "chatroom.server.members", "chatroom.server.moderation", "chatroom.server.queries",
    "chatroom.server.remote", "chatroom.server.state_base", "chatroom.server.handler_base",
    "chatroom.irc.lines", "chatroom.irc.session", "chatroom.irc.wire", "chatroom.irc.numerics",
    "chatroom.irc.replies", "chatroom.irc.targets", "chatroom.irc.modes",
    "chatroom.web.hosts", "chatroom.web.wire", "chatroom.cluster.mirror",
    "chatroom.client.session", "chatroom.client.handshake", "chatroom.client.events", "chatroom.client.transcript",
    "chatroom.client.windows", "chatroom.client.wrap", "chatroom.client.commands", "chatroom.client.outbound",
    "chatroom.client.keepalive", "chatroom.client.protocol", "chatroom.client.wording", "chatroom.client.finding",
]
#: What no pure module may reach.
IO_MODULES = {"socket", "ssl", "threading", "selectors", "sqlite3", "redis", "asyncio", "subprocess", "socketserver"}

#: package -> the packages of chatroom it must not import.
LAYERS = {
    "chatroom.server": ("chatroom.irc", "chatroom.web", "chatroom.cluster", "chatroom.client", "chatroom.ui",
                        "chatroom.app", "chatroom.cli", "chatroom.demo"),
    "chatroom.client": ("chatroom.server", "chatroom.ui", "chatroom.irc", "chatroom.web", "chatroom.cluster",
                        "chatroom.app"),
    "chatroom.protocol": ("chatroom.server", "chatroom.client", "chatroom.ui", "chatroom.irc", "chatroom.web",
                          "chatroom.cluster", "chatroom.app"),
    "chatroom.irc": ("chatroom.client", "chatroom.ui", "chatroom.web", "chatroom.cluster", "chatroom.app"),
    "chatroom.web": ("chatroom.client", "chatroom.ui", "chatroom.irc", "chatroom.cluster", "chatroom.app"),
    "chatroom.cluster": ("chatroom.client", "chatroom.ui", "chatroom.irc", "chatroom.web", "chatroom.app"),
}


def _file(module: str) -> Path:
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    return path if path.exists() else PACKAGE.parent / module.replace(".", "/") / "__init__.py"


def _modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@cache
def imports_of(module: str) -> frozenset[str]:
    """The modules ``module`` imports when it runs (anywhere in it, functions too;
    not what only the type checker reads)."""
    tree = ast.parse(_file(module).read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # (a submodule, maybe)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    known = set(_modules())
    return frozenset(name for name in found if name in known or not name.startswith("chatroom"))


def reach(module: str) -> dict[str, str]:
    """Every module ``module`` imports, however deep: name -> the chatroom module that
    imports it (to say how it got there)."""
    known = set(_modules())
    seen: dict[str, str] = {}
    todo = [module]
    while todo:
        current = todo.pop()
        for name in imports_of(current):
            if name in seen:
                continue
            seen[name] = current
            if name in known:
                todo.append(name)
    return seen


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io_even_through_what_they_import(module: str) -> None:
    reached = reach(module)
    bad = {name: via for name, via in reached.items() if name.split(".")[0] in IO_MODULES}
    assert not bad, f"{module} reaches I/O modules: " + ", ".join(f"{n} (imported by {v})" for n, v in bad.items())


@pytest.mark.parametrize("package", LAYERS)
def test_each_layer_imports_only_downwards(package: str) -> None:
    forbidden = LAYERS[package]
    wrong = []
    for module in _modules():
        if module != package and not module.startswith(package + "."):
            continue
        for name in imports_of(module):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_contracts_see_real_imports() -> None:
    """(The checker itself: it finds imports that are there, so its silence means something.)"""
    assert "chatroom.server.tcp" in imports_of("chatroom.app")
    assert "socket" in reach("chatroom.server.tcp")
    assert "chatroom.client.connection" in reach("chatroom.ui.tui")


def test_no_module_outgrows_its_name() -> None:
    """No module over 600 lines: past that it holds several concepts (split it)."""
    over = {}
    for path in PACKAGE.rglob("*.py"):
        name = str(path.relative_to(PACKAGE.parent))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > 600:
            over[name] = lines
    assert not over, f"modules over their limit: {over}"


def test_no_function_is_more_complex_than_ruffs_limit_as_radon_counts() -> None:
    """ruff's C901 stops at 12; radon counts boolean operators and comprehension
    conditions too, so it is asked as well: no function above 12 by either."""
    from radon.complexity import cc_visit

    over = []
    for path in PACKAGE.rglob("*.py"):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            functions = block.methods if hasattr(block, "methods") else [block]  # a class: its methods
            over += [f"{path.relative_to(PACKAGE.parent)}:{f.lineno} {f.fullname} ({f.complexity})"
                     for f in functions if f.complexity > 12]
    assert not over, "functions over radon's 12:\n" + "\n".join(sorted(set(over)))
