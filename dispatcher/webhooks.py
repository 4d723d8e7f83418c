"""Webhooks: upstream services hear about what happens to their messages and advisors.

A team registers URLs for event types. The scripts only append events to the team's stream;
a pump in the workers reads it through one consumer group per hook and hands each hook its
next events in one RQ job at a time, on a queue of their own (workers/hooks.py), so a slow or
failing endpoint never slows an assignment, another hook or another team's jobs. Each delivery
is signed: ``Pushinbox-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
receivers check it with ``verify_signature``.

Where deliveries may go: by default only to public addresses. A URL whose host resolves to a
loopback, private, link-local, shared, reserved, multicast or unspecified address is refused
at registration and again before each delivery (DNS can change); an operator allows chosen
hosts or networks with ``PUSHINBOX_HOOK_ALLOW`` (comma-separated host names and CIDRs).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dispatcher import events, keys
from dispatcher.errors import ValidationError
from dispatcher.model import pack, unpack
from dispatcher.ops import require_team
from dispatcher.ops.effects import Now, Op, Script, read

__all__ = [
    "ALLOW_ENV",
    "EVENTS",
    "MAX_HOOKS",
    "SIGNATURE_HEADER",
    "TOLERANCE_S",
    "Allowed",
    "Hook",
    "body_bytes",
    "check_destination",
    "check_events",
    "create_hook",
    "delete_hook",
    "list_hooks",
    "payload",
    "sign",
    "verify_signature",
]

#: Event types a hook may subscribe to (the stream's own names; dispatcher/events.py).
EVENTS = tuple(e.name for e in events.REGISTRY if e.hook)
#: Stream field -> payload field.
_FIELDS = {"m": "message", "a": "advisor", "c": "conversation", "via": "via", "why": "why",
           "note": "note", "ms": "break_ms"}
MAX_HOOKS = 20
#: The operator's list of destinations allowed although not public (hosts and CIDRs).
ALLOW_ENV = "PUSHINBOX_HOOK_ALLOW"
SIGNATURE_HEADER = "Pushinbox-Signature"
#: Signatures older than this are refused by ``verify_signature`` (replays).
TOLERANCE_S = 300


@dataclass(frozen=True)
class Hook:
    id: str
    url: str
    events: list[str]
    created_at: int
    secret: str | None = None  # shown once, when the hook is created

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if self.secret is None:
            del out["secret"]
        return out


def _check_url(url: object) -> str:
    if not isinstance(url, str) or len(url) > 2000 or not url.isascii():
        raise ValidationError("url must be an http(s) URL of at most 2,000 ASCII characters",
                              field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValidationError(f"url is malformed: {exc}", field="url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("url must be an http(s) URL with a host", field="url")
    if parts.username or parts.password:
        raise ValidationError("url must not carry credentials", field="url")
    return url


@dataclass(frozen=True)
class Allowed:
    """Destinations the operator allows although they are not public addresses."""

    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_env(cls) -> Allowed:
        hosts, nets = set(), []
        for item in os.environ.get(ALLOW_ENV, "").split(","):
            item = item.strip().lower()
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item)
        return cls(frozenset(hosts), tuple(nets))


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_destination(url: str, allowed: Allowed | None = None) -> None:
    """Refuse (ValidationError, field url) a URL whose host resolves to an address that is not
    public, unless the operator allowed that host or network. Resolves the host: blocking I/O
    (the service calls it in a thread)."""
    allow = allowed or Allowed.from_env()
    parts = urlsplit(_check_url(url))
    host = (parts.hostname or "").lower()
    if host in allow.hosts:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ValidationError(f"url: the host {host} does not resolve ({exc})",
                              field="url") from exc
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if any(ip in net for net in allow.networks) or _public(ip):
            continue
        raise ValidationError(
            f"url: {host} resolves to {ip}, which is not a public address; an operator may "
            f"allow it with {ALLOW_ENV}", field="url")


def check_events(events: object) -> list[str]:
    if not isinstance(events, list) or not events:
        raise ValidationError("events must be a non-empty list", field="events")
    for i, e in enumerate(events):
        if e not in EVENTS:
            raise ValidationError(f"events[{i}] must be one of {', '.join(EVENTS)}",
                                  field=f"events[{i}]")
    return sorted(set(events))


def create_hook(team: str, url: object, events: object) -> Op[Hook]:
    """Register a hook; the answer carries its secret, which is never shown again. The
    destination is the caller's to check first (``check_destination`` resolves the host);
    every delivery checks it again. At most MAX_HOOKS per team (checked atomically)."""
    checked_url, checked_events = _check_url(url), check_events(events)
    yield from require_team(team)
    hook_id = secrets.token_hex(6)
    secret = "whsec_" + secrets.token_urlsafe(32)
    now = yield Now()
    record = {"id": hook_id, "url": checked_url, "events": checked_events, "created_at": now,
              "secret": secret}
    yield Script("hook_set", team, {"id": hook_id, "hook": pack(record), "max": MAX_HOOKS})
    return Hook(hook_id, checked_url, checked_events, now, secret)


def list_hooks(team: str) -> Op[list[Hook]]:
    yield from require_team(team)
    rows = yield from read("hgetall", keys.hooks(team))
    hooks = [unpack(v) for v in rows.values()]
    return sorted((Hook(h["id"], h["url"], h["events"], h["created_at"]) for h in hooks),
                  key=lambda h: h.created_at)


def delete_hook(team: str, hook_id: str) -> Op[None]:
    keys.check_id(hook_id, "hook")
    yield Script("hook_delete", team, {"id": hook_id})


def payload(team: str, event_id: str, fields: dict[str, str]) -> dict[str, Any]:
    """The JSON body of a delivery, from one stream entry."""
    data: dict[str, Any] = {}
    for k, v in fields.items():
        if k in _FIELDS:
            data[_FIELDS[k]] = int(v) if k == "ms" else v
    return {"id": event_id, "type": fields["e"], "team": team, "at": int(fields["t"]),
            "data": data}


def body_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for ``body`` at ``timestamp`` (now by default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes,
                     tolerance_s: int = TOLERANCE_S, now: float | None = None) -> bool:
    """For receivers: is ``header`` a fresh signature of ``body`` by ``secret``?

    Answers False, never raises, on any header (a forged one may hold anything)."""
    if not isinstance(header, str) or len(header) > 1024 or not header.isascii():
        return False
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
    except ValueError:
        return False
    ts_text, given = parts.get("t", ""), parts.get("v1", "")
    if not ts_text.isdigit() or len(ts_text) > 12 or not given:
        return False
    ts = int(ts_text)
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    expected = sign(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected.encode(), given.encode())
