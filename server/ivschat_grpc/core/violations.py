"""A broken rule at one field, in AWS's member names: what validation reports.

Plain data, so that the core can refuse a request (a reused request_id) in
the same terms as the validator, without loading AWS's model.
"""

from __future__ import annotations

from dataclasses import dataclass


class MapKey(str):
    """MapKey marks a path segment as a map key rather than a member name."""

    __slots__ = ()


PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    """Violation is one broken constraint, at one field."""

    path: Path
    message: str
