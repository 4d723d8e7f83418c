"""The ``pushinbox`` command: start the stack, manage teams, act as an advisor, inspect queues.

Every command talks to the Redis at ``--redis-url`` / ``REDIS_URL`` (default: the one that
``pushinbox up`` starts on port 6390) and goes through the same ``Dispatcher`` API as the HTTP
service. Errors print one line and exit with status 1.
"""

from __future__ import annotations

from typing import Any

# The area modules register their commands on the shared group (the way rq splits its CLI).
from cli import admin, advisor, operations, settings, supervisor, upstream  # noqa: F401
from cli.base import cli

__all__ = ["cli", "main"]


#: An example for each command whose docstring has none (a test checks every command has one).
EXAMPLES = {
    ("team", "list"): "pushinbox team list",
    ("team", "show"): "pushinbox team show demo",
    ("role", "list"): "pushinbox role list demo",
    ("advisor", "list"): "pushinbox advisor list demo",
    ("groups", "show"): "pushinbox groups show demo",
    ("groups", "set"): "pushinbox groups set demo groups.yaml",
    ("triage", "set"): "pushinbox triage set demo rules.yaml",
    ("triage", "show"): "pushinbox triage show demo",
    ("hours", "set"): "pushinbox hours set demo hours.yaml",
    ("hours", "show"): "pushinbox hours show demo",
    ("logout",): "pushinbox logout demo alice",
    ("take",): "pushinbox take demo dave demo-msg-7",
    ("current",): "pushinbox current demo alice",
    ("assign",): "pushinbox assign demo bob demo-msg-12",
    ("stock",): "pushinbox stock demo --json",
    ("stats",): "pushinbox stats demo alice",
    ("preview",): "pushinbox preview demo -n 5",
    ("help-requests",): "pushinbox help-requests demo",
    ("quarantine",): "pushinbox quarantine demo",
    ("check",): "pushinbox check --repair demo",
    ("soak",): "pushinbox soak --private-redis --seconds 60",
    ("bench",): "pushinbox bench --waiting 10000 --advisors 50",
    ("break", "end"): "pushinbox break end demo alice",
    ("token", "list"): "pushinbox token list",
    ("token", "revoke"): "pushinbox token revoke 3f9a0c1d2e4b",
    ("hook", "add"): ("pushinbox hook add demo https://crm.example/hooks --event replied "
                      "--event archived"),
    ("hook", "list"): "pushinbox hook list demo",
    ("hook", "remove"): "pushinbox hook remove demo 3f9a0c1d2e4b",
}
for _path, _example in EXAMPLES.items():
    _cmd: Any = cli
    for _part in _path:
        _cmd = _cmd.commands[_part]
    if _example not in (_cmd.help or ""):
        _cmd.help = f"{_cmd.help or ''}\n\nExample: {_example}"


def main() -> None:
    cli()
