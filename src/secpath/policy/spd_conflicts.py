"""Conflicting and shadowed filters of a compiled SPD, as data for the audit.

Under the specificity order of :mod:`secpath.policy.spd`, an entry that
covers another (its networks, protocol and port ranges each contain the
other's) is never *more* specific than it: keys 1-3 can only be equal or
worse.  So an entry always beaten by one other entry on every packet it
matches has exactly the same :class:`~secpath.policy.spd.Selector`, and
only the tie-breaks (block > permit > negotiate, rule order, filter order,
direct before mirror) decide between them.  Detection therefore groups the
entries by selector in one hash pass — O(E) after compilation's O(E log E)
sort, for E entries — instead of comparing all pairs.

For every group, its first entry (the one that always wins there) is paired
with each entry of another filter in the group.  A pair is reported once,
winner first:

* ``CONFLICTING`` — the two rules have different filter actions; the loser's
  action never applies to the shared selectors.
* ``SHADOWED`` — same filter action, and the loser never matches at all.

``loser_never_matches`` is true when every entry of the loser filter (both
directions of a mirrored filter, every local address of ``me``, every
address of a DNS name) loses in its group to another filter; such a filter
is dead configuration.

Not detected: a filter hidden only by the union of several more specific
filters (e.g. two /25 blocks covering a /24 permit) — each of those entries
does not cover it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from secpath.policy.spd import FilterRef, Selector, Spd, SpdEntry

__all__ = ["ConflictKind", "FilterConflict", "find_conflicts"]


class ConflictKind(Enum):
    CONFLICTING = "conflicting"  # same selectors, different filter actions
    SHADOWED = "shadowed"  # same action, the loser can never match


@dataclass(frozen=True, slots=True)
class FilterConflict:
    """Two filters with identical selectors; ``winner`` always takes them.

    ``selector`` is the first (most specific) selector they share.
    """

    kind: ConflictKind
    winner: FilterRef
    loser: FilterRef
    selector: Selector
    loser_never_matches: bool

    def __str__(self) -> str:
        text = f"{self.kind.value}: {self.loser} loses to {self.winner} on {self.selector}"
        if self.loser_never_matches:
            text += " (it never matches)"
        return text


def _selector_key(entry: SpdEntry) -> tuple[int, int, int, int, int, int, int, int, int, int]:
    s = entry.selector
    return (
        s.source.version,
        int(s.source.network_address),
        s.source.prefixlen,
        int(s.destination.network_address),
        s.destination.prefixlen,
        -1 if s.protocol is None else s.protocol,
        s.source_port.low,
        s.source_port.high,
        s.destination_port.low,
        s.destination_port.high,
    )


def _ref_key(ref: FilterRef) -> tuple[int, int]:
    return ref.rule_index, ref.filter_index


def find_conflicts(spd: Spd) -> tuple[FilterConflict, ...]:
    """Every conflicting or shadowed filter pair of ``spd``, by loser then winner."""
    winners: dict[tuple[int, ...], SpdEntry] = {}
    total: dict[tuple[int, int], int] = {}
    lost: dict[tuple[int, int], int] = {}
    pairs: dict[tuple[tuple[int, int], tuple[int, int]], tuple[SpdEntry, SpdEntry]] = {}
    for entry in spd.entries:  # rank order: the first of a group is its winner
        loser_key = _ref_key(entry.ref)
        total[loser_key] = total.get(loser_key, 0) + 1
        winner = winners.setdefault(_selector_key(entry), entry)
        winner_key = _ref_key(winner.ref)
        if winner_key == loser_key:
            continue
        lost[loser_key] = lost.get(loser_key, 0) + 1
        pairs.setdefault((loser_key, winner_key), (winner, entry))

    found: list[FilterConflict] = []
    for (loser_key, _), (winner, entry) in sorted(pairs.items(), key=lambda p: p[0]):
        never = lost[loser_key] == total[loser_key]
        if winner.ref.rule.filter_action != entry.ref.rule.filter_action:
            kind = ConflictKind.CONFLICTING
        elif never:
            kind = ConflictKind.SHADOWED
        else:
            continue
        found.append(FilterConflict(kind, winner.ref, entry.ref, winner.selector, never))
    return tuple(found)
