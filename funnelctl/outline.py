"""The playbooks in outline: the little of them that the morning list reads.

`funnelctl due` needs each stage's clocks (``stagnant_after``, ``quiet_after``,
``advance_after``) and the partners' names, nothing else of the checked library. Loading
the whole library means defining the frozen dataclasses of playbooks.py (dataclasses
compiles each class's methods when the module loads) and building the object graph:
more than the list itself costs. So the outline is made from the checked library once
and cached beside it, under the same key (playbook_cache.cached_outline), as plain named
tuples that cost next to nothing to define or read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # an outline is made from a library; reading one loads no playbook code
    from .playbooks import Library


class StageClocks(NamedTuple):
    """When an enrollment at stage ``id`` of ``funnel`` (ids) needs attention: the stage's
    own fields (playbooks.Stage), in days; None where the playbook sets no such clock."""

    funnel: str
    id: str
    stagnant_after: int | None
    quiet_after: int | None
    advance_after: int | None


class Outline(NamedTuple):
    """Every funnel's stages with their clocks (in the library's order), and the name of
    each partner by id."""

    stages: tuple[StageClocks, ...]
    partners: dict[str, str]


def outline(library: Library) -> Outline:
    """The outline of a checked library."""
    return Outline(
        stages=tuple(
            StageClocks(
                funnel.id, stage.id, stage.stagnant_after, stage.quiet_after, stage.advance_after
            )
            for funnel in library.funnels.values()
            for stage in funnel.stages
        ),
        partners={key: partner.name for key, partner in library.partners.items()},
    )


# What a cached outline may hold, by name (jsoncache): nothing else is ever built.
CLASSES: dict[str, type[tuple[object, ...]]] = {cls.__name__: cls for cls in (Outline, StageClocks)}
