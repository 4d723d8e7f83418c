"""The demo team that ``pushinbox up --demo`` seeds: something real to press buttons on."""

from __future__ import annotations

import contextlib
import random

from dispatcher.api import Dispatcher
from dispatcher.errors import ConflictError

TEAM = "demo"
ADVISORS = {"alice": "agent", "bob": "agent", "carol": "agent", "dave": "classic"}
CHANNELS = ("whatsapp", "webchat", "email", "kakaotalk", "instagram")
GROUPS = {
    "order": "oldest_conversation",
    "groups": [
        {"name": "VIP", "match": {"customer_tags_any": ["VIP"]}},
        {"name": "Automatically reassigned", "match": {"reassigned": True}},
        {"name": "WhatsApp", "match": {"channel_in": ["whatsapp"]}},
    ],
}
HOURS = {
    "timezone": "Europe/Paris",
    "week": {d: ["08:00-12:30", "13:30-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": ["09:00-13:00"]},
}
TEXTS = (
    "Where is my order?",
    "I was charged twice this month.",
    "How do I change my delivery address?",
    "The app crashes when I log in.",
    "Can I get a refund for my last purchase?",
    "Thanks, that solved it!",
    "My package arrived damaged.",
)


def seed(d: Dispatcher, messages: int = 300, rng: random.Random | None = None) -> dict[str, int]:
    """Create the demo team (if new) and ingest ``messages`` messages; idempotent by id."""
    rng = rng or random.Random(7)
    with contextlib.suppress(ConflictError):
        d.create_team(TEAM, name="Demo customer care")
    d.set_role(TEAM, "agent", push=True, capacity=1)
    d.set_role(TEAM, "classic", push=False, capacity=1)
    for adv, role in ADVISORS.items():
        d.set_advisor(TEAM, adv, role, name=adv.capitalize())
    d.set_groups(TEAM, GROUPS)
    d.set_hours(TEAM, HOURS)
    batch = []
    for i in range(messages):
        n = rng.randrange(messages // 2 or 1)
        cust = f"customer-{n}"
        batch.append(
            {
                "id": f"demo-msg-{i}",
                "conversation": f"conv-{cust}",
                "customer": cust,
                "channel": rng.choice(CHANNELS),
                "body": {"text": rng.choice(TEXTS)},
                "language": rng.choice(("en", "fr", "ko")),
                "customer_tags": ["VIP"] if n % 10 == 0 else [],
            }
        )
    statuses: dict[str, int] = {}
    for start in range(0, len(batch), 100):
        for s in d.ingest_many(TEAM, batch[start : start + 100]):
            key = s.split(":")[0]
            statuses[key] = statuses.get(key, 0) + 1
    return statuses
