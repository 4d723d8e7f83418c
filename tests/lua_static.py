"""A small static reading of the Lua scripts for the header and include tests: which helpers
each include defines, which a script calls, and from those which events it may emit and
which error codes it may fail with. Lua-aware just enough for our own style (helpers are
`local function name(...)` at the start of a line, closed by `end` at the start of a line)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

LUA = Path(__file__).resolve().parent.parent / "scripts" / "lua"
INCLUDES = LUA / "includes"

_DEF = re.compile(r"^local function (\w+)|^local (\w+(?:, *\w+)*) *=|^(K)\.", re.M)
_STR = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
_EVENT = re.compile(r"\bevent\([^,]+, *'(\w+)'")
_FAIL = re.compile(r"\bfail\('(\w+)'")
#: Helpers whose event is named by one of their arguments (its position from 0; actions.lua
#: `finish` and `done_writes`).
_EVENT_FROM_ARG = {"finish": 0, "done_writes": 3}


def code_of(text: str) -> str:
    """The text without comments and with every string literal emptied."""
    lines = ["" if ln.lstrip().startswith("--") else ln.split(" --", 1)[0]
             for ln in text.split("\n")]
    return _STR.sub("''", "\n".join(lines))


def defined(text: str) -> set[str]:
    out: set[str] = set()
    for m in _DEF.finditer(text):
        for g in m.groups():
            if g:
                out.update(x.strip() for x in g.split(","))
    return out


def uses(code: str, name: str) -> list[int]:
    """Where ``code`` refers to ``name`` (not as a field, nor as a table key)."""
    pat = r"(?<![.:\w])" + re.escape(name) + r"\b(?!\s*=[^=])"
    return [m.start() for m in re.finditer(pat, code)]


@cache
def include_names() -> dict[str, set[str]]:
    """Include -> the names it defines."""
    return {p.stem: defined(p.read_text()) for p in INCLUDES.glob("*.lua")}


@cache
def helper_bodies() -> dict[str, str]:
    """Every helper function of every include -> its body (raw text)."""
    out: dict[str, str] = {}
    for p in INCLUDES.glob("*.lua"):
        text = p.read_text()
        for m in re.finditer(r"^local function (\w+)\(.*?^end\b", text, re.M | re.S):
            out[m.group(1)] = m.group(0)
    return out


def _direct(raw: str) -> tuple[set[str], set[str]]:
    events = set(_EVENT.findall(raw))
    for helper, at in _EVENT_FROM_ARG.items():
        events.update(re.findall(r"\b" + helper + r"\(" + r"[^,()]+, *" * at + r"'(\w+)'", raw))
    return events, set(_FAIL.findall(raw))


def _called(raw: str) -> set[str]:
    code = code_of(raw)
    return {h for h in helper_bodies() if uses(code, h)}


@cache
def helper_effects(name: str, _seen: tuple[str, ...] = ()) -> tuple[frozenset[str], frozenset[str]]:
    """Events and fail codes of a helper, its callees included."""
    raw = helper_bodies()[name]
    events, fails = _direct(raw)
    for callee in _called(raw) - {name} - set(_seen):
        e, f = helper_effects(callee, (*_seen, name))
        events |= e
        fails |= f
    return frozenset(events), frozenset(fails)


def script_effects(name: str) -> tuple[set[str], set[str]]:
    """Events a script may emit and the error codes it may fail with."""
    raw = (LUA / f"{name}.lua").read_text()
    body = "\n".join(ln for ln in raw.split("\n") if not ln.startswith("--"))
    events, fails = _direct(body)
    for helper in _called(body):
        e, f = helper_effects(helper)
        events |= e
        fails |= f
    return events, fails


def header(name: str) -> str:
    raw = (LUA / f"{name}.lua").read_text()
    return raw.split("\n--@include")[0]


def header_line(include: str) -> str:
    """The first line of an include: it is in a spliced script exactly when the include is."""
    return (INCLUDES / f"{include}.lua").read_text().split("\n", 1)[0]
