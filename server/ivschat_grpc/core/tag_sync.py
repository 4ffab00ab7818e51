"""Tags through the resource itself: the diff to the tags sent, and what an update applied.

An Update RPC whose mask names `tags` (AIP-134) makes the resource's tags
equal the map it sends, where AWS has no such call: the service diffs the
resource's current tags against that map, removes what the map lacks with
UntagResource and sets what it adds or changes with TagResource. Removing
comes first, so that replacing tags on a resource at AWS's 50-tag limit never
takes it past the limit in between.

Some tags are never the caller's to change this way, and a map that omits
them keeps them: the service's own ivschat-grpc:request-id (the resource's
exactly-once tag), and AWS's own `aws:` tags, which AWS lets nobody remove.

Such an update is up to three AWS calls (the resource's own update, then the
two tag calls), and any of them can fail after an earlier one succeeded.
:class:`Progress` follows the parts of the update (its fields, its tags) as
the calls are made, so that a failure can say which parts were applied, which
may have been, and which were not (:class:`Report`), in ErrorInfo metadata
under :data:`REPORT_KEYS`. Every part sets values rather than changing them
by a step, so the same request sent again converges: the fields are set
again, and the diff is taken afresh from the tags the resource then has.

Nothing here knows gRPC or botocore: api/unary.py makes the calls.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.violations import Path

# AWS's own tags start with this (any case); nobody may set, change or remove them.
AWS_TAG_PREFIX: Final = "aws:"


def is_aws_own(key: str) -> bool:
    """Whether a tag is one of AWS's own."""
    return key.lower().startswith(AWS_TAG_PREFIX)


def is_kept(key: str) -> bool:
    """Whether a tag is kept whatever the map sent says: the service's own, or AWS's."""
    return key == RESERVED_TAG or is_aws_own(key)


@dataclass(frozen=True, slots=True)
class Update:
    """Update is the AWS work of one Update RPC: the resource's own update, then its tags.

    aws/request_checks.py builds it (tags_update); api/unary.py's
    AwsServicer._update carries it out.
    """

    # The resource's own update operation (UpdateRoom, UpdateLoggingConfiguration),
    # and its input; None when no field is masked, and then it is not sent.
    operation: str
    params: Mapping[str, Any] | None
    # The resource, as the tag operations name it (their resourceArn).
    arn: str
    # The read that returns the resource with its tags, for an update of its
    # tags alone: (GetRoom, its input).
    read: tuple[str, Mapping[str, Any]]
    # The tags the resource is to have; None when they are not masked.
    tags: Mapping[str, str] | None
    # Where the request holds them, for violations: ("room", "tags").
    tags_path: Path
    # Whether the tags could be refused for what the resource carries
    # (request_checks.tags_against), so that they are read (ListTagsForResource)
    # before the fields are sent, and a refusal comes before anything changes.
    check_first: bool


@dataclass(frozen=True, slots=True)
class TagDiff:
    """TagDiff is what turns a resource's tags into the desired ones.

    set holds the entries to add or change (TagResource's tags), remove the
    keys to take away (UntagResource's tagKeys), both in a stable order.
    """

    set: Mapping[str, str]
    remove: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)


def diff(current: Mapping[str, str], desired: Mapping[str, str]) -> TagDiff:
    """The calls that make current equal desired, never touching a kept tag.

    desired is assumed checked: it names a kept tag, if at all, with the value
    current has (aws/request_checks.py's tags_against refuses the rest).
    """
    return TagDiff(
        set={k: v for k, v in sorted(desired.items()) if not is_kept(k) and current.get(k) != v},
        remove=tuple(sorted(k for k in current if k not in desired and not is_kept(k))),
    )


def applied(current: Mapping[str, str], change: TagDiff) -> dict[str, str]:
    """current once change is made: what the resource's tags are after the tag calls."""
    after = {k: v for k, v in current.items() if k not in change.remove}
    after.update(change.set)
    return after


class Part(enum.StrEnum):
    """Part is one piece of an update, as ErrorInfo metadata names it."""

    # The resource's own fields, which its update operation sets (UpdateRoom and the like).
    FIELDS = "fields"
    # Its tags, when one answer holds for all of them.
    TAGS = "tags"
    # The tags' two calls, named apart when one got further than the other.
    TAGS_REMOVED = "tags_removed"
    TAGS_SET = "tags_set"


class State(enum.Enum):
    """State is how far one part got."""

    APPLIED = "applied"
    MAYBE_APPLIED = "maybe_applied"
    NOT_APPLIED = "not_applied"


# ErrorInfo metadata: each key, when present, lists comma-separated parts in
# the order the update makes them; each part of the request is in exactly one.
REPORT_KEYS: Final[Mapping[State, str]] = {state: state.value for state in State}

# What each part and each state mean, for docs/errors.md.
MEANINGS: Final[Mapping[Part | State, str]] = {
    Part.FIELDS: "the resource's own fields, which its update operation sets (UpdateRoom, "
    "UpdateLoggingConfiguration)",
    Part.TAGS: "its tags, as one: the tag calls it needs (if any) all ended alike",
    Part.TAGS_REMOVED: "the tags UntagResource removes, named apart when TagResource ended "
    "otherwise",
    Part.TAGS_SET: "the tags TagResource adds or changes, named apart when UntagResource ended "
    "otherwise",
    State.APPLIED: "AWS applied them",
    State.MAYBE_APPLIED: "the call that carries them failed after it was sent: AWS may have "
    "applied them",
    State.NOT_APPLIED: "AWS did not apply them: their call was never sent, or certainly not run",
}


@dataclass(frozen=True, slots=True)
class Report:
    """Report says, of each part of an update that failed, whether it was applied."""

    parts: tuple[tuple[Part, State], ...]

    def named(self, state: State) -> tuple[Part, ...]:
        """The parts in state, in the order the update makes them."""
        return tuple(part for part, s in self.parts if s is state)

    def metadata(self) -> dict[str, str]:
        """The ErrorInfo metadata: for each state that some part is in, those parts."""
        named = {key: self.named(state) for state, key in REPORT_KEYS.items()}
        return {key: ",".join(parts) for key, parts in named.items() if parts}


class Progress:
    """Progress follows one update's parts through its AWS calls.

    The caller says which parts a call carries before making it (a read
    carries none), and that they were applied once it succeeds; report()
    then says what a failure of the call under way leaves.
    """

    def __init__(self, *, fields: bool) -> None:
        self._states: dict[Part, State] = {}
        if fields:
            self._states[Part.FIELDS] = State.NOT_APPLIED
        self._states[Part.TAGS] = State.NOT_APPLIED
        self._under_way: tuple[Part, ...] = ()

    def plan(self, change: TagDiff) -> tuple[Part | None, Part | None]:
        """The parts UntagResource and TagResource carry for change (None: no call).

        An empty change applies the tags at once; a change that needs both
        calls follows each on its own, since one may fail after the other.
        """
        if not change:
            self._states[Part.TAGS] = State.APPLIED
            return None, None
        if not (change.remove and change.set):
            return (Part.TAGS, None) if change.remove else (None, Part.TAGS)
        del self._states[Part.TAGS]
        self._states[Part.TAGS_REMOVED] = State.NOT_APPLIED
        self._states[Part.TAGS_SET] = State.NOT_APPLIED
        return Part.TAGS_REMOVED, Part.TAGS_SET

    def sending(self, part: Part | None) -> None:
        """The next call carries part (None: it is a read, and changes nothing)."""
        self._under_way = () if part is None else (part,)

    def done(self) -> None:
        """The call under way succeeded: its part is applied."""
        for part in self._under_way:
            self._states[part] = State.APPLIED
        self._under_way = ()

    def report(self, maybe_ran: bool) -> Report:
        """What each part's state is if the call under way failed; maybe_ran: it may have run.

        The tags' two calls are named apart only when they ended differently.
        """
        failed = State.MAYBE_APPLIED if maybe_ran else State.NOT_APPLIED
        states = {
            part: failed if part in self._under_way else state
            for part, state in self._states.items()
        }
        removed, set_ = states.get(Part.TAGS_REMOVED), states.get(Part.TAGS_SET)
        if removed is not None and removed is set_:
            states = {
                (Part.TAGS if p is Part.TAGS_REMOVED else p): s
                for p, s in states.items()
                if p is not Part.TAGS_SET
            }
        return Report(tuple(states.items()))
