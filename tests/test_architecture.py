"""The house rules of docs/architecture.md, checked on the code's own imports.

* Data and imports flow one way: a module imports only from its own layer or below.
* The core reaches a channel only through the registry: outside ``bot/channels/`` nothing
  imports a channel kind's package, and nothing compares a ``type``/``kind``/``name`` with
  a kind's name (no branching on a service).
* An import inside a function hides an edge of the house, so each one carries a comment
  saying why it is there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.channels import registry
from tests.conftest import ROOT

BOT = ROOT / "bot"

#: Lowest first. A module may import from its own layer or any layer below, never above.
LAYERS: list[tuple[str, ...]] = [
    ("bot", "bot.errors", "bot.models", "bot.redact"),
    ("bot.settings", "bot.text", "bot.render", "bot.store", "bot.net", "bot.limits", "bot.links"),
    ("bot.channels",),  # every kind's folder and base.py; the registry is the next layer
    ("bot.channels.registry",),
    ("bot.config", "bot.ingest", "bot.editions"),
    ("bot.publish", "bot.dispatch", "bot.subscribers", "bot.check", "bot.testsend", "bot.retention"),
    ("bot.report", "bot.app", "bot.scheduler", "bot.web"),
    ("bot.daemon",),
    ("bot.cli", "bot.commands", "bot.store_commands"),
]


def layer_of(module: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, layer)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    if best[1] < 0:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py; add it (and to docs/architecture.md)")
    return best[1]


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(BOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def imports(module: str, path: Path) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, node, inside a function) for every import of a bot module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, ast.stmt, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                names = [f"{target}.{a.name}" for a in child.names] if not child.module or child.level else [target]
                for name in names:
                    if name.startswith("bot"):
                        found.append((name, child, in_function))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("bot"):
                        found.append((a.name, child, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _existing(name: str) -> str:
    """``bot.channels.email.EmailKind`` → ``bot.channels.email`` (the module part of a name)."""
    known = {m for m, _ in modules()}
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


MODULES = modules()


@pytest.mark.parametrize("module, path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_only_go_down(module: str, path: Path) -> None:
    mine = layer_of(module)
    for name, node, _ in imports(module, path):
        target = _existing(name)
        assert layer_of(target) <= mine, (
            f"{path.relative_to(ROOT)}:{node.lineno} imports {target} (layer {layer_of(target)}) "
            f"from layer {mine}: data and imports flow one way")


@pytest.mark.parametrize("module, path", [(m, p) for m, p in MODULES if not m.startswith("bot.channels")],
                         ids=[m for m, _ in MODULES if not m.startswith("bot.channels")])
def test_the_core_reaches_channels_only_through_the_registry(module: str, path: Path) -> None:
    for name, node, _ in imports(module, path):
        target = _existing(name)
        if target.startswith("bot.channels"):
            assert target in ("bot.channels.base", "bot.channels.registry", "bot.channels"), (
                f"{path.relative_to(ROOT)}:{node.lineno} imports {target}: the core asks the registry")
    kinds = set(registry.KINDS) | {"smtp", "file"}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = any(isinstance(s, ast.Attribute) and s.attr in ("type", "kind", "name") for s in sides)
            constant = any(isinstance(s, ast.Constant) and s.value in kinds for s in sides)
            assert not (named and constant), (
                f"{path.relative_to(ROOT)}:{node.lineno} branches on a channel kind; ask the registry instead")


@pytest.mark.parametrize("module, path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_inside_functions_say_why(module: str, path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                here = lines[inner.lineno - 1]
                above = inner.lineno - 2  # a comment may head a block of several imports
                while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                    above -= 1
                before = lines[above].strip() if above >= 0 else ""
                assert "#" in here or before.startswith("#"), (
                    f"{path.relative_to(ROOT)}:{inner.lineno}: an import inside a function needs a comment "
                    "saying why it is not at the top")
