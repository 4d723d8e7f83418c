"""Priority groups and triage rules: one declarative match language, validated and compiled.

A supervisor writes (YAML or JSON)::

    order: oldest_conversation        # or newest_conversation, oldest_message, newest_message
    groups:
      - name: VIP
        match: {customer_tags_any: [VIP]}
      - name: Reassigned
        match: {reassigned: true}

Every condition of a match must hold (AND); an empty match matches every message. Messages
that match no group form the implicit last group, *everything else*. A group may escalate
by waiting time (``waiting_longer_than: 900``: true once the message has waited that many
seconds since it arrived; the waiting stock moves into it as its messages cross it). A group
may require skills (``requires_skills: [ko]``): only advisors with all of them are pushed
its messages; everything else requires none. The compiled form uses
the short names the Lua matcher reads (``includes/core.lua``: ``match``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatcher import defaults
from dispatcher.errors import ValidationError
from dispatcher.keys import check_id, check_skill, check_skills
from dispatcher.model import pack

__all__ = ["PrioritySettings", "TriageRule", "compile_match", "decompile_match"]

_LIST_CONDITIONS = {
    "customer_tags_any": "ct_any",
    "customer_tags_all": "ct_all",
    "channel_in": "ch",
    "message_tags_any": "mt_any",
    "message_tags_all": "mt_all",
    "language_in": "lang",
}
_CONDITIONS = (
    *_LIST_CONDITIONS,
    "reassigned",
    "attribute_equals",
    "attribute_in",
    "waiting_longer_than",
)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationError(f"{where} must be a non-empty list of strings", field=where)
    if len(value) > defaults.MAX_MATCH_VALUES:
        raise ValidationError(f"{where} has {len(value)} entries; at most "
                              f"{defaults.MAX_MATCH_VALUES} are allowed", field=where)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or len(item) > defaults.MAX_TAG_LEN:
            raise ValidationError(f"{where}[{i}] must be a non-empty string of at most "
                                  f"{defaults.MAX_TAG_LEN} characters", field=f"{where}[{i}]")
    return list(value)


def _scalar(value: object, where: str) -> str | int | float | bool:
    if isinstance(value, str) and len(value) > defaults.MAX_TAG_LEN:
        raise ValidationError(f"{where} is longer than {defaults.MAX_TAG_LEN} characters",
                              field=where)
    if isinstance(value, str | int | float | bool):
        return value
    raise ValidationError(f"{where} must be a string, number or boolean", field=where)


def _packed_size(compiled: object, field: str, what: str) -> None:
    size = len(pack(compiled))
    if size > defaults.MAX_SETTINGS_BYTES:
        raise ValidationError(f"the {what} take {size} bytes packed; at most "
                              f"{defaults.MAX_SETTINGS_BYTES} are allowed", field=field)


def compile_match(match: object, where: str) -> dict[str, Any]:
    """Validate one match and return its compiled form."""
    if not isinstance(match, dict):
        raise ValidationError(f"{where} must be an object of conditions", field=where)
    out: dict[str, Any] = {}
    for key, value in match.items():
        field = f"{where}.{key}"
        if key in _LIST_CONDITIONS:
            out[_LIST_CONDITIONS[key]] = _strings(value, field)
        elif key == "waiting_longer_than":
            if (not isinstance(value, int) or isinstance(value, bool)
                    or not 1 <= value <= defaults.MAX_WAITING_LONGER_THAN_S):
                raise ValidationError(f"{field} must be a whole number of seconds from 1 to "
                                      f"{defaults.MAX_WAITING_LONGER_THAN_S}", field=field)
            out["wt"] = value
        elif key == "reassigned":
            if not isinstance(value, bool):
                raise ValidationError(f"{field} must be true or false", field=field)
            out["re"] = value
        elif key in ("attribute_equals", "attribute_in"):
            if not isinstance(value, dict) or not value:
                raise ValidationError(f"{field} must be a non-empty object", field=field)
            if len(value) > defaults.MAX_MATCH_ATTRS:
                raise ValidationError(f"{field} names {len(value)} attributes; at most "
                                      f"{defaults.MAX_MATCH_ATTRS} are allowed", field=field)
            compiled: dict[str, Any] = {}
            for name, expected in value.items():
                if not isinstance(name, str) or not name or len(name) > defaults.MAX_TAG_LEN:
                    raise ValidationError(f"{field} has an attribute name that is empty or "
                                          f"longer than {defaults.MAX_TAG_LEN} characters",
                                          field=field)
                if key == "attribute_equals":
                    compiled[name] = _scalar(expected, f"{field}.{name}")
                else:
                    if not isinstance(expected, list) or not expected:
                        raise ValidationError(
                            f"{field}.{name} must be a non-empty list", field=f"{field}.{name}"
                        )
                    if len(expected) > defaults.MAX_MATCH_VALUES:
                        raise ValidationError(
                            f"{field}.{name} has {len(expected)} entries; at most "
                            f"{defaults.MAX_MATCH_VALUES} are allowed", field=f"{field}.{name}")
                    compiled[name] = [_scalar(x, f"{field}.{name}") for x in expected]
            out["attr_eq" if key == "attribute_equals" else "attr_in"] = compiled
        else:
            raise ValidationError(
                f"{field} is not a condition; use one of {', '.join(_CONDITIONS)}", field=field
            )
    return out


def decompile_match(compiled: dict[str, Any]) -> dict[str, Any]:
    """The compiled form back in the supervisor's words (for `groups show`)."""
    names = {v: k for k, v in _LIST_CONDITIONS.items()}
    names.update({"re": "reassigned", "attr_eq": "attribute_equals", "attr_in": "attribute_in",
                  "wt": "waiting_longer_than"})
    return {names[k]: v for k, v in compiled.items()}


@dataclass(frozen=True)
class PrioritySettings:
    order: str
    groups: list[dict[str, Any]]  # [{"name": ..., "match": {...}}] in the supervisor's words

    @classmethod
    def parse(cls, spec: object) -> PrioritySettings:
        """Validate priority settings; raises ValidationError before anything is stored."""
        if isinstance(spec, list):
            spec = {"groups": spec}
        if not isinstance(spec, dict):
            raise ValidationError("priority settings must be an object with 'groups'", "groups")
        unknown = sorted(set(spec) - {"order", "groups"})
        if unknown:
            raise ValidationError(f"unknown setting {unknown[0]!r}", field=unknown[0])
        order = spec.get("order", defaults.DEFAULT_ORDER)
        if order not in defaults.ORDERS:
            raise ValidationError(
                f"order must be one of {', '.join(defaults.ORDERS)}, got {order!r}", field="order"
            )
        groups = spec.get("groups", [])
        if not isinstance(groups, list):
            raise ValidationError("groups must be a list", field="groups")
        if len(groups) > defaults.MAX_GROUPS:
            raise ValidationError(
                f"at most {defaults.MAX_GROUPS} priority groups are allowed", field="groups"
            )
        seen: set[str] = set()
        clean: list[dict[str, Any]] = []
        for i, g in enumerate(groups):
            where = f"groups[{i}]"
            if not isinstance(g, dict):
                raise ValidationError(f"{where} must be an object with name and match", where)
            extra = sorted(set(g) - {"name", "match", "requires_skills", "target_wait"})
            if extra:
                raise ValidationError(f"{where}.{extra[0]} is not a group field", where)
            name = g.get("name")
            if not isinstance(name, str) or not name.strip() or len(name) > defaults.MAX_GROUP_NAME:
                raise ValidationError(f"{where}.name must be a non-empty string of at most "
                                      f"{defaults.MAX_GROUP_NAME} characters", f"{where}.name")
            if name in seen:
                raise ValidationError(f"{where}.name {name!r} is used twice", f"{where}.name")
            seen.add(name)
            compile_match(g.get("match", {}), f"{where}.match")
            group: dict[str, Any] = {"name": name, "match": dict(g.get("match", {}))}
            if g.get("requires_skills"):
                group["requires_skills"] = check_skills(g["requires_skills"],
                                                        f"{where}.requires_skills")
            elif "requires_skills" in g and not isinstance(g["requires_skills"], list):
                check_skills(g["requires_skills"], f"{where}.requires_skills")
            if "target_wait" in g:
                tw = g["target_wait"]
                if (not isinstance(tw, int) or isinstance(tw, bool)
                        or not 1 <= tw <= defaults.MAX_WAITING_LONGER_THAN_S):
                    raise ValidationError(
                        f"{where}.target_wait must be a whole number of seconds from 1 to "
                        f"{defaults.MAX_WAITING_LONGER_THAN_S}", field=f"{where}.target_wait")
                group["target_wait"] = tw
            clean.append(group)
        found = cls(order=order, groups=clean)
        _packed_size(found.compiled(), "groups", "priority groups")
        return found

    def compiled(self) -> list[dict[str, Any]]:
        return [{"n": g["name"], "m": compile_match(g["match"], "match"),
                 **({"rs": g["requires_skills"]} if g.get("requires_skills") else {}),
                 **({"tw": g["target_wait"]} if g.get("target_wait") else {})}
                for g in self.groups]

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "groups": self.groups}


@dataclass(frozen=True)
class TriageRule:
    """On arrival, the first matching rule routes the message: to ``advisor`` (while they are
    logged in), or, with ``skill``, into the waiting stock of its group where only advisors
    with that skill (and the group's own required skills) can receive it."""

    name: str
    match: dict[str, Any]
    advisor: str | None = None
    skill: str | None = None

    @classmethod
    def parse_list(cls, rules: object) -> list[TriageRule]:
        if isinstance(rules, dict) and "rules" in rules:
            rules = rules["rules"]
        if not isinstance(rules, list):
            raise ValidationError("triage rules must be a list", field="rules")
        if len(rules) > defaults.MAX_TRIAGE_RULES:
            raise ValidationError(
                f"at most {defaults.MAX_TRIAGE_RULES} triage rules are allowed", field="rules"
            )
        out: list[TriageRule] = []
        for i, r in enumerate(rules):
            where = f"rules[{i}]"
            if not isinstance(r, dict):
                raise ValidationError(f"{where} must be an object", field=where)
            extra = sorted(set(r) - {"name", "match", "advisor", "skill"})
            if extra:
                raise ValidationError(f"{where}.{extra[0]} is not a rule field", field=where)
            name = r.get("name", f"rule {i + 1}")
            if not isinstance(name, str) or not name or len(name) > 64:
                raise ValidationError(f"{where}.name must be a string of 1-64 characters",
                                      field=f"{where}.name")
            if "waiting_longer_than" in (r.get("match") or {}):
                raise ValidationError(
                    f"{where}.match.waiting_longer_than: triage routes a message as it arrives, "
                    "when it has waited for nothing; escalate by waiting time with a priority "
                    "group", field=f"{where}.match.waiting_longer_than")
            compile_match(r.get("match", {}), f"{where}.match")
            if ("advisor" in r) == ("skill" in r):
                raise ValidationError(f"{where} needs an advisor or a skill (one of them)",
                                      field=f"{where}.advisor")
            advisor = check_id(r["advisor"], f"{where}.advisor") if "advisor" in r else None
            skill = check_skill(r["skill"], f"{where}.skill") if "skill" in r else None
            out.append(cls(name=name, match=dict(r.get("match", {})), advisor=advisor,
                           skill=skill))
        _packed_size([r.compiled() for r in out], "rules", "triage rules")
        return out

    def compiled(self) -> dict[str, Any]:
        target = {"a": self.advisor} if self.advisor is not None else {"s": self.skill}
        return {"n": self.name, "m": compile_match(self.match, "match"), **target}

    def to_dict(self) -> dict[str, Any]:
        target = {"advisor": self.advisor} if self.advisor is not None else {"skill": self.skill}
        return {"name": self.name, "match": self.match, **target}
