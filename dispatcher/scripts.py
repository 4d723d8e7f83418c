"""The one module that loads the Lua scripts.

Each ``scripts/lua/<operation>.lua`` is read once, its ``--@include <name>`` lines replaced by
``scripts/lua/includes/<name>.lua``, and registered with redis-py, whose Script objects call
EVALSHA and fall back to loading the script again on NOSCRIPT (a flushed or evicted cache).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

_INCLUDE_RE = re.compile(r"^--@include (\w+)\s*$", re.MULTILINE)


def _lua_dir() -> Any:
    return resources.files("scripts").joinpath("lua")


def names() -> list[str]:
    """Every operation that has a script."""
    return sorted(
        p.name[: -len(".lua")]
        for p in _lua_dir().iterdir()
        if p.name.endswith(".lua") and p.is_file()
    )


@cache
def source(name: str) -> str:
    """The script's text with its includes spliced in (each include at most once)."""
    base = _lua_dir()
    text: str = base.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    seen: set[str] = set()

    def splice(match: re.Match[str]) -> str:
        inc = match.group(1)
        if inc in seen:
            return ""
        seen.add(inc)
        body: str = base.joinpath("includes", f"{inc}.lua").read_text(encoding="utf-8")
        return _INCLUDE_RE.sub(splice, body)

    return _INCLUDE_RE.sub(splice, text)


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
