"""Fault rules: how the local endpoint misbehaves on purpose.

A rule matches requests by operation (and optionally room name), applies to
the next `times` of them (or all), and can add latency, answer an AWS error,
create the room first, or drop the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from typing import Any, Final

from ivschat_grpc.aws import validation
from ivschat_grpc.core.outcomes import Outcome

# A 503 from the front end is one of AWS's common errors, so it is absent from the
# ivschat model; every other code and status comes from the model.
COMMON_ERRORS: Final[Mapping[str, int]] = {Outcome.SERVICE_UNAVAILABLE: 503}


@cache
def error_statuses() -> Mapping[str, int]:
    """Each injectable AWS error code with its HTTP status."""
    shapes = validation.service_model()["shapes"]
    statuses = {
        name: int(shape["error"]["httpStatusCode"])
        for name, shape in shapes.items()
        if shape.get("exception")
    }
    return {**statuses, **COMMON_ERRORS}


# Each fault rule key's JSON type: its name in a message, and the Python types it arrives as.
_JSON_KINDS: Final[Mapping[str, tuple[str, tuple[type, ...]]]] = {
    "operation": ("a string", (str,)),
    "name": ("a string or null", (str, type(None))),
    "error": ("a string or null", (str, type(None))),
    "create": ("true or false", (bool,)),
    "drop": ("true or false", (bool,)),
    "latency_ms": ("a number", (int, float)),
    "times": ("an integer or null", (int, type(None))),
    "fields": ("an object", (dict,)),
}


@dataclass(slots=True)
class FaultRule:
    """FaultRule is one injected misbehaviour."""

    operation: str = "CreateRoom"
    name: str | None = None
    error: str | None = None
    # The operation runs before the rule's drop or error (a room is made, or
    # deleted), as when AWS did the work and its answer was lost.
    create: bool = False
    drop: bool = False
    latency_ms: float = 0.0
    times: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.error is not None and self.error not in error_statuses():
            known = ", ".join(sorted(error_statuses()))
            raise ValueError(f"unknown error {self.error!r}; known: {known}")
        if self.error is not None and self.drop:
            raise ValueError("a rule either answers an error or drops the connection, not both")
        if self.latency_ms < 0 or (self.times is not None and self.times < 1):
            raise ValueError("latency_ms must be >= 0 and times >= 1")

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Build a rule from its JSON form, refusing unknown keys."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault rule is a JSON object")  # noqa: TRY004 - callers catch one type
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        # JSON's types, checked here: a wrong one would fail deep in a comparison,
        # and the answer would be Python's words, not the key's name.
        wrong = [
            f"{key} must be {kinds[0]}"
            for key, value in data.items()
            for kinds in (_JSON_KINDS[key],)
            if not isinstance(value, kinds[1]) or (isinstance(value, bool) and bool not in kinds[1])
        ]
        if wrong:
            raise ValueError("; ".join(wrong))
        try:
            return cls(**data)
        except TypeError as e:
            raise ValueError(str(e)) from e

    def to_json(self) -> dict[str, Any]:
        """The rule's JSON form."""
        return asdict(self)


class FaultPlan:
    """FaultPlan holds the active rules; the first rule that matches wins."""

    def __init__(self, rules: tuple[FaultRule, ...] = ()) -> None:
        # The admin route and the request path can run on different threads
        # when the endpoint is embedded, so the rule list is locked.
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.add(*rules)

    def add(self, *rules: FaultRule) -> None:
        """Append copies of rules after those already active (take() counts down `times`)."""
        with self._lock:
            self._rules.extend(replace(r, fields=dict(r.fields)) for r in rules)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """A copy of the active rules."""
        with self._lock:
            return list(self._rules)

    def take(self, operation: str, name: object) -> FaultRule | None:
        """Consume one use of the first rule that matches this request."""
        with self._lock:
            for rule in self._rules:
                if rule.operation != operation or (rule.name is not None and rule.name != name):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return rule
        return None
