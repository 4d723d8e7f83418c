"""The one module that loads the Lua scripts.

Each ``scripts/lua/<operation>.lua`` is read once, its ``--@include <name>`` lines replaced by
``scripts/lua/includes/<name>.lua`` (which declare their own includes, spliced before them,
each once per script: one concept per include, like BullMQ's ``src/commands/includes``), and
registered with redis-py, whose Script objects call
EVALSHA and fall back to loading the script again on NOSCRIPT (a flushed or evicted cache).
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

from dispatcher.errors import PushinboxError

__all__ = ["FLAGS", "ScriptSet", "ScriptSourceError", "flags_of", "includes_of", "names",
           "source", "with_begin"]

_INCLUDE_RE = re.compile(r"^--@include (\S+)[ \t]*$", re.MULTILINE)
_FLAGS_RE = re.compile(r"^-- Flags: (.*)$", re.MULTILINE)

#: The function flags a script's ``-- Flags:`` header line may give (Redis >= 7's library):
#: ``no-writes`` for a script that only reads (it runs when Redis is at its maxmemory, and on
#: a replica), ``allow-oom`` for one that frees memory (a team's deletion, the purge), which
#: an operator needs most when Redis is full. Without a line: a script that writes, refused
#: at its start while Redis is over its maxmemory (then nothing of it ran).
FLAGS = ("no-writes", "allow-oom")


class ScriptSourceError(PushinboxError, ValueError):
    """A script cannot be put together: an include missing or including itself in a circle.
    The message names the file and line of the offending ``--@include``."""


def _lua_dir() -> Any:
    return resources.files("scripts").joinpath("lua")


def names() -> list[str]:
    """Every operation that has a script."""
    return sorted(
        p.name[: -len(".lua")]
        for p in _lua_dir().iterdir()
        if p.name.endswith(".lua") and p.is_file()
    )


def includes_of(text: str) -> list[str]:
    """The includes a script or include declares itself (in order)."""
    return _INCLUDE_RE.findall(text)


def flags_of(text: str) -> list[str]:
    """The function flags a script's header declares (``-- Flags: no-writes``)."""
    m = _FLAGS_RE.search(text.split("\n--@include")[0])
    return [f.strip() for f in m.group(1).split(",")] if m else []


def _splice(base: Any, text: str, where: str, chain: tuple[str, ...], seen: set[str]) -> str:
    """``text`` with each ``--@include name`` replaced by the include (its own includes first),
    each include spliced once per script."""

    def one(match: re.Match[str]) -> str:
        inc = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        if inc in chain:
            circle = " -> ".join((*chain[chain.index(inc):], inc))
            raise ScriptSourceError(f"{where}:{line}: circular include {circle}")
        if inc in seen:
            return ""
        path = base.joinpath("includes", f"{inc}.lua")
        if not re.fullmatch(r"\w+", inc) or not path.is_file():
            raise ScriptSourceError(
                f"{where}:{line}: no include named {inc!r} (scripts/lua/includes/{inc}.lua)")
        seen.add(inc)
        body: str = path.read_text(encoding="utf-8")
        return _splice(base, body, f"scripts/lua/includes/{inc}.lua", (*chain, inc), seen)

    return _INCLUDE_RE.sub(one, text)


@cache
def source(name: str) -> str:
    """The script's text with its includes spliced in (each include once, before its first
    user; a missing or circular include is a ScriptSourceError naming the file and line)."""
    base = _lua_dir()
    text: str = base.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return _splice(base, with_begin(text), f"scripts/lua/{name}.lua", (), set())


def with_begin(text: str) -> str:
    """The script with the call's start (``begin``, keys.lua) after its own includes: the
    helpers are defined, then the call's keys and arguments set, then the body runs."""
    ends = [m.end() + 1 for m in _INCLUDE_RE.finditer(text)]
    at = ends[-1] if ends else 0
    return text[:at] + "begin(KEYS, ARGV)\n" + text[at:]


#: Every include, in an order where each comes after the includes it declares.
def _all_includes() -> list[str]:
    base = _lua_dir() / "includes"
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in includes_of((base / f"{name}.lua").read_text(encoding="utf-8")):
            visit(dep)
        order.append(name)

    for p in sorted(base.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".lua"):
            visit(p.name[: -len(".lua")])
    return order


@cache
def library() -> tuple[str, str]:
    """The whole script set as one Redis function library (Redis >= 7: ``FUNCTION LOAD``,
    ``FCALL``): every include once, defined when the library loads, then one function per
    script holding the script's own body. Returns (the library's text, the prefix of its
    function names); both carry a digest of the sources, so two versions never collide."""
    base = _lua_dir()
    heads = "".join(f"--@include {inc}\n" for inc in _all_includes())
    parts = [_splice(base, heads, "library", (), set())]
    for name in names():
        text = base.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        body = _INCLUDE_RE.sub("", text)
        flags = ", ".join(f"'{f}'" for f in flags_of(text) if f in FLAGS)
        parts.append(f"redis.register_function{{function_name = '{{prefix}}{name}', "
                     f"callback = function(KEYS, ARGV)\nbegin(KEYS, ARGV)\n{body}\nend, "
                     f"flags = {{{flags}}}}}\n")
    code = "\n".join(parts)
    digest = hashlib.sha1(code.encode()).hexdigest()[:12]
    prefix = f"pi{digest}_"
    return f"#!lua name=pushinbox_{digest}\n" + code.replace("{prefix}", prefix), prefix


class ScriptSet:
    """All scripts registered on one client (sync or asyncio); attribute access by name."""

    def __init__(self, client: Any) -> None:
        self._scripts = {name: client.register_script(source(name)) for name in names()}

    def __getitem__(self, name: str) -> Any:
        return self._scripts[name]

    def load_all(self, client: Any) -> None:
        """Load every script into the server's cache now (start-up), not at first use."""
        for script in self._scripts.values():
            client.script_load(script.script)
