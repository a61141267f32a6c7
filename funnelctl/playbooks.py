"""Playbooks: YAML files loaded into typed, immutable objects and validated.

Every problem in every file is collected and reported as ``file:line: message``
in one run; a library with any problem is never used. The format is described
in docs/playbooks.md.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import yamlfile
from .dates import parse_duration
from .errors import NotFound, UsageError, ValidationError
from .yamlfile import Fields, Problems, YList, YMap, playbook_files

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
CHANNELS = (
    "self-service",
    "chat",
    "email",
    "phone",
    "in-person",
    "meeting",
    "in-product",
    "partner",
    "social",
    "success-review",
    "user-group",
    "forum",
    "testimonial",
    "meetup",
    "conference",
)
SOURCING = ("internal", "outsourced", "automated")
STRATEGIES = ("customer-owner", "round-robin", "least-busy")
CLOSE_STATUSES = ("won", "lost", "churned")
DEFAULT_COOLDOWN = 30  # days between two automatic starts of a play for one customer


@dataclass(frozen=True)
class Where:
    """Where something was written: for messages that point back at the playbook."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class TaskAction:
    title: str
    due: int = 0
    owner: str | None = None  # None: the owner rule of the stage the task is created in
    channel: str | None = None
    sourcing: str = "internal"
    description: str | None = None
    drop_if: str | None = None
    escalate_after: int | None = None
    escalate_to: str | None = None
    then: TaskAction | None = None
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "task"
    cancel_on_exit: bool = False  # dropped when its stage visit ends (else still owed)


def owned_by(task: TaskAction, owner: str) -> TaskAction:
    """``task`` (and its ``then:`` follow-ups) with ``owner`` wherever none is written."""
    then = owned_by(task.then, owner) if task.then is not None else None
    return replace(task, owner=task.owner or owner, then=then)


@dataclass(frozen=True)
class EmailAction:
    template: str
    delay: int = 0
    stop_on_reply: bool = False
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "email"


@dataclass(frozen=True)
class CloseAction:
    status: str
    reason: str | None = None
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "close"


@dataclass(frozen=True)
class EnrollAction:
    funnel: str
    stage: str | None = None
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "enroll"


@dataclass(frozen=True)
class AssignAction:
    strategy: str
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "assign"


@dataclass(frozen=True)
class PlayAction:
    play: str
    when: str | None = None
    where: Where = Where("", 0)
    type: str = "play"


Action = TaskAction | EmailAction | CloseAction | EnrollAction | AssignAction | PlayAction


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    description: str | None = None
    owner: str = "customer-owner"
    touchpoints: tuple[str, ...] = ()
    stagnant_after: int | None = None
    quiet_after: int | None = None
    advance_after: int | None = None
    # The daily tick moves the customer on only while this holds; until then "ready to
    # move on?" waits in the owner's list.
    advance_when: str | None = None
    on_enter: tuple[Action, ...] = ()
    where: Where = Where("", 0)


@dataclass(frozen=True)
class Funnel:
    id: str
    title: str
    stages: tuple[Stage, ...]
    description: str | None = None
    allow_backward: bool = True
    allow_skip: bool = True
    where: Where = Where("", 0)

    def stage(self, name: str) -> Stage:
        """The stage ``name`` means: its id, else its id or its title in any case
        (``Customer contact``, ``DEPLOYMENT``). A title that several stages share is a
        usage error that lists them; no match is NotFound."""
        found = self._matching(name)
        if len(found) == 1:
            return found[0]
        if found:
            ids = ", ".join(s.id for s in found)
            raise UsageError(
                f"Funnel {self.id!r} has several stages titled {name!r} ({ids}); give the stage id."
            )
        names = ", ".join(s.id for s in self.stages)
        raise NotFound(f"Funnel {self.id!r} has no stage {name!r} (stages: {names}).")

    def has_stage(self, name: str) -> bool:
        """Whether ``name`` names a stage (or several, by title) as :meth:`stage` reads it."""
        return bool(self._matching(name))

    def _matching(self, name: str) -> list[Stage]:
        exact = [s for s in self.stages if s.id == name]
        if exact:
            return exact
        folded = " ".join(name.split()).casefold()
        by_id = [s for s in self.stages if s.id.casefold() == folded]
        return by_id or [s for s in self.stages if " ".join(s.title.split()).casefold() == folded]

    def index(self, stage_id: str) -> int:
        return self.stages.index(self.stage(stage_id))

    def next_stage(self, stage_id: str) -> Stage | None:
        i = self.index(stage_id)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None


@dataclass(frozen=True)
class Play:
    id: str
    title: str
    sourcing: str
    actions: tuple[Action, ...]
    description: str | None = None
    trigger: str | None = None
    where: Where = Where("", 0)
    # Started automatically at most once per cooldown for a customer, whatever starts it.
    cooldown: int = DEFAULT_COOLDOWN
    # Not started automatically while the customer is at risk. None: only when an
    # opportunity rule starts it (an upsell pitch to an unhappy customer is wrong).
    unless_at_risk: bool | None = None

    def held_when_at_risk(self, *, opportunity: bool) -> bool:
        return self.unless_at_risk if self.unless_at_risk is not None else opportunity


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    email: str
    role: str | None = None
    where: Where = Where("", 0)


@dataclass(frozen=True)
class Measure:
    """One weighted input of the health score, with its bands."""

    id: str
    title: str
    value: str  # an expression; none or undefined means the input is missing
    weight: float
    healthy: float
    poor: float
    better: str = "higher"  # or "lower"
    where: Where = Where("", 0)

    def band(self, value: float) -> str:
        if self.better == "higher":
            if value >= self.healthy:
                return "healthy"
            return "poor" if value <= self.poor else "concerning"
        if value <= self.healthy:
            return "healthy"
        return "poor" if value >= self.poor else "concerning"


@dataclass(frozen=True)
class Opportunity:
    id: str
    title: str
    when: str
    play: str | None = None
    where: Where = Where("", 0)


BAND_POINTS = {"healthy": 100.0, "concerning": 50.0, "poor": 0.0}


@dataclass(frozen=True)
class HealthModel:
    at_risk_below: float
    measures: tuple[Measure, ...]
    opportunities: tuple[Opportunity, ...] = ()
    on_at_risk: tuple[str, ...] = ()  # play ids
    where: Where = Where("", 0)
    on_at_risk_where: Where = Where("", 0)

    @property
    def expressions(self) -> list[str]:
        """What the model evaluates for a customer: measure values, then opportunity
        conditions."""
        return [m.value for m in self.measures] + [o.when for o in self.opportunities]


@dataclass(frozen=True)
class Library:
    """Everything the workspace's playbooks define."""

    funnels: dict[str, Funnel] = field(default_factory=dict)
    plays: dict[str, Play] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    health: HealthModel | None = None

    def funnel(self, funnel_id: str) -> Funnel:
        try:
            return self.funnels[funnel_id]
        except KeyError:
            names = ", ".join(sorted(self.funnels)) or "none"
            raise NotFound(
                f"No funnel {funnel_id!r} in the playbooks (funnels: {names})."
            ) from None


# -- loading ---------------------------------------------------------------------------


def load_library(
    paths: Sequence[Path],
    *,
    templates_dir: Path | None = None,
    team: Sequence[str] | None = None,
    references: Sequence[Path] = (),
) -> Library:
    """Load and check every playbook under ``paths``; ValidationError lists all problems.

    ``templates_dir`` (when given) is checked for every template an email names;
    ``team`` (when given) for every team member a playbook names. ``references``
    (the workspace's playbooks, when checking a draft) are loaded only so that the
    draft may name their funnels, plays and partners: what the draft defines itself
    wins, and the references' own problems are not the draft's.
    """
    problems = Problems()
    funnels: dict[str, Funnel] = {}
    plays: dict[str, Play] = {}
    partners: dict[str, Partner] = {}
    health: list[HealthModel] = []
    files = playbook_files(paths)
    for path in files:
        try:
            data = yamlfile.load(path)
        except yamlfile.YamlError as exc:
            problems.items.append(exc.problem)
            continue
        _read_file(path, data, problems, funnels, plays, partners, health)
    for extra in health[1:]:
        problems.add(
            extra.where.path,
            extra.where.line,
            f"a second health model (the first is at {health[0].where}); keep one",
        )
    mine = {str(f) for f in files}
    known_funnels, known_plays, known_partners = dict(funnels), dict(plays), dict(partners)
    ignored = Problems()
    for path in playbook_files(references):
        if str(path) in mine or path.resolve() in {f.resolve() for f in files}:
            continue
        try:
            data = yamlfile.load(path)
        except ValidationError:
            continue
        extra_f: dict[str, Funnel] = {}
        extra_p: dict[str, Play] = {}
        extra_r: dict[str, Partner] = {}
        _read_file(path, data, ignored, extra_f, extra_p, extra_r, [])
        for target, more in (
            (known_funnels, extra_f),
            (known_plays, extra_p),
            (known_partners, extra_r),
        ):
            for key, value in more.items():
                target.setdefault(key, value)  # type: ignore[arg-type]
    checked = Library(known_funnels, known_plays, known_partners, (), health[0] if health else None)
    found = Problems()
    _check_references(checked, found, templates_dir, team)
    problems.items += [p for p in found.items if str(p.path) in mine or not references]
    problems.raise_if_any("The playbooks have {n} problem(s)")
    return Library(
        funnels, plays, partners, tuple(str(f) for f in files), health[0] if health else None
    )


def _add_funnel(
    path: Path,
    top: Fields,
    funnel: Funnel,
    stage_list: YList | None,
    funnels: dict[str, Funnel],
) -> None:
    """Check a file's funnel, read its stages and add it, unless another file has its id."""
    if not SLUG.match(funnel.id):
        top.problem("id", f"funnel id {funnel.id!r} must be lowercase letters, digits and -")
    where = f"funnel {funnel.id}"
    if stage_list is not None:
        funnel = replace(funnel, stages=_read_stages(path, stage_list, top.problems, where))
        if not stage_list:
            top.problem("stages", "a funnel needs at least one stage")
    if funnel.id in funnels:
        top.problem(
            "id", f"funnel {funnel.id!r} is defined twice (also {funnels[funnel.id].where})"
        )
    else:
        funnels[funnel.id] = funnel


def _read_file(
    path: Path,
    data: Any,
    problems: Problems,
    funnels: dict[str, Funnel],
    plays: dict[str, Play],
    partners: dict[str, Partner],
    health: list[HealthModel],
) -> None:
    if data is None:
        problems.add(path, 1, "the file is empty")
        return
    if not isinstance(data, YMap):
        problems.add(path, 1, "a playbook must be a mapping (id, title, stages, plays, partners)")
        return
    top = Fields(data, path, problems, "playbook")
    is_funnel = "stages" in data or "id" in data
    funnel_id = top.get("id", str, required=is_funnel)
    title = top.get("title", str, required=is_funnel)
    description = top.get("description", str)
    allow_backward = top.get("allow_backward", bool, default=True)
    allow_skip = top.get("allow_skip", bool, default=True)
    stage_list = top.get("stages", YList, required=is_funnel)
    play_list = top.get("plays", YList)
    partner_list = top.get("partners", YList)
    health_map = top.get("health", YMap)
    top.done()
    if not is_funnel and play_list is None and partner_list is None and health_map is None:
        problems.add(
            path,
            data.line,
            "playbook: the file defines no funnel (id, stages), plays, partners or health",
        )
    if health_map is not None:
        model = _read_health(path, health_map, problems)
        if model is not None:
            health.append(model)
    if is_funnel and funnel_id is not None:
        funnel = Funnel(
            id=funnel_id,
            title=title or funnel_id,
            stages=(),
            description=description,
            allow_backward=allow_backward,
            allow_skip=allow_skip,
            where=Where(str(path), top.line("id")),
        )
        _add_funnel(path, top, funnel, stage_list, funnels)
    for _, item in _items(path, play_list, problems, "plays"):
        play = _read_play(path, item, problems)
        if play is None:
            continue
        if play.id in plays:
            problems.add(
                path, item.line, f"play {play.id!r} is defined twice (also {plays[play.id].where})"
            )
        else:
            plays[play.id] = play
    for _, item in _items(path, partner_list, problems, "partners"):
        partner = _read_partner(path, item, problems)
        if partner is None:
            continue
        if partner.id in partners:
            problems.add(path, item.line, f"partner {partner.id!r} is defined twice")
        else:
            partners[partner.id] = partner


def _items(
    path: Path | str, items: YList | None, problems: Problems, what: str
) -> Iterable[tuple[int, YMap]]:
    for index, item in enumerate(items or ()):
        if isinstance(item, YMap):
            yield index, item
        else:
            problems.add(
                path,
                items.line_of(index) if items else 1,
                f"{what}: each item must be a mapping, not {yamlfile.describe(item)}",
            )


def _duration(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} has no unit: write {value}d (days) or {value}w (weeks)")
    if not isinstance(value, str):
        raise ValueError(f"{yamlfile.describe(value)} is not a duration such as 2d or 3w")
    return parse_duration(value)


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError(f"{value!r} must be lowercase letters, digits and -")
    return value


# The names a condition can read (context.build_context), and what health rules add
# (health.health_context). An expression naming anything else fails for every customer.
CONDITION_NAMES = frozenset(
    (
        "customer",
        "owner",
        "sender",
        "funnel",
        "stage",
        "days_in_stage",
        "days_since_signed",
        "signals",
        "health",
        "today",
    )
)
HEALTH_NAMES = CONDITION_NAMES | {
    "signal_sum",
    "signal_avg",
    "signal_min",
    "signal_max",
    "signal_change",
    "days_since_touch",
    "days_since_reply",
    "overdue_tasks",
    "days_stagnant",
}


def _checked(value: str, known: frozenset[str]) -> str:
    from .sandbox import check_expression, undeclared_names  # Jinja loads on first use

    reason = check_expression(value)
    if reason:
        raise ValueError(f"{value!r} is not a valid expression: {reason}")
    unknown = sorted(undeclared_names(value) - known)
    if unknown:
        raise ValueError(
            f"{value!r} uses {', '.join(unknown)}, which is not defined "
            f"(names: {', '.join(sorted(known))})"
        )
    return value


def _expression(value: str) -> str:
    return _checked(value, CONDITION_NAMES)


def _health_expression(value: str) -> str:
    return _checked(value, frozenset(HEALTH_NAMES))


def _one_of(options: Sequence[str]) -> Any:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError(f"{value!r} must be one of {', '.join(options)}")
        return value

    return check


def _read_stages(path: Path, items: YList, problems: Problems, where: str) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    seen: set[str] = set()
    for _, item in _items(path, items, problems, "stages"):
        f = Fields(item, path, problems, where)
        stage_id = f.get("id", str, required=True, convert=_slug)
        here = f"{where}, stage {stage_id or '?'}"
        f.where = here
        title = f.get("title", str, required=True)
        description = f.get("description", str)
        owner = f.get("owner", str, default="customer-owner")
        touch_list = f.get("touchpoints", YList, default=YList())
        touchpoints: list[str] = []
        for i, channel in enumerate(touch_list):
            if channel not in CHANNELS:
                problems.add(
                    path,
                    touch_list.line_of(i),
                    f"{here}: touchpoint {yamlfile.describe(channel)} is not a channel "
                    f"({', '.join(CHANNELS)})",
                )
            else:
                touchpoints.append(channel)
        stagnant = f.get("stagnant_after", (str, int), convert=_duration)
        quiet = f.get("quiet_after", (str, int), convert=_duration)
        advance, advance_when = _read_advance(f)
        action_list = f.get("on_enter", YList, default=YList())
        f.done()
        actions = _read_actions(path, action_list, problems, here)
        if stage_id is None:
            continue
        if stage_id in seen:
            f.problem("id", f"stage {stage_id!r} appears twice in the funnel")
            continue
        seen.add(stage_id)
        stages.append(
            Stage(
                id=stage_id,
                title=title or stage_id,
                description=description,
                owner=owner,
                touchpoints=tuple(touchpoints),
                stagnant_after=stagnant,
                quiet_after=quiet,
                advance_after=advance,
                advance_when=advance_when,
                on_enter=actions,
                where=Where(str(path), item.line),
            )
        )
    return tuple(stages)


def _read_advance(f: Fields) -> tuple[int | None, str | None]:
    """``advance_after: 30d``, or ``advance_after: {after: 30d, when: <condition>}``."""
    value = f.map.get("advance_after")
    if not isinstance(value, YMap):
        return f.get("advance_after", (str, int), convert=_duration), None
    f.get("advance_after", YMap)
    gate = Fields(value, f.path, f.problems, f"{f.where}, advance_after")
    after = gate.get("after", (str, int), required=True, convert=_duration)
    when = gate.get("when", str, convert=_expression)
    gate.done()
    return after, when


def _read_actions(
    path: Path | str, items: YList, problems: Problems, where: str
) -> tuple[Action, ...]:
    actions: list[Action] = []
    for _, item in _items(path, items, problems, f"{where}: actions"):
        action = _read_action(path, item, problems, where)
        if action is not None:
            actions.append(action)
    return tuple(actions)


def _read_action(path: Path | str, item: YMap, problems: Problems, where: str) -> Action | None:
    types = [t for t in ACTION_TYPES if t in item]
    if len(types) != 1:
        found = " and ".join(types) if types else "none"
        problems.add(
            path,
            item.line,
            f"{where}: an action needs exactly one of {', '.join(ACTION_TYPES)} (found {found})",
        )
        return None
    kind = types[0]
    f = Fields(item, path, problems, f"{where}, {kind} action")
    at = Where(str(path), item.line)
    when = f.get("when", str, convert=_expression)
    action = _BY_KEYWORD[kind].read(f, at, when)
    f.done()
    return action


def _read_play(path: Path, item: YMap, problems: Problems) -> Play | None:
    f = Fields(item, path, problems, "play")
    play_id = f.get("id", str, required=True, convert=_slug)
    f.where = f"play {play_id or '?'}"
    title = f.get("title", str, required=True)
    description = f.get("description", str)
    sourcing = f.get("sourcing", str, required=True, convert=_one_of(SOURCING))
    trigger = f.get("trigger", str)
    cooldown = f.get("cooldown", (str, int), default=DEFAULT_COOLDOWN, convert=_duration)
    unless_at_risk = f.get("unless_at_risk", bool)
    action_list = f.get("actions", YList, required=True)
    f.done()
    actions = _read_actions(path, action_list or YList(), problems, f.where)
    if action_list is not None and not action_list:
        f.problem("actions", "a play needs at least one action")
    if not play_id or not title or not sourcing:
        return None
    return Play(
        play_id,
        title,
        sourcing,
        actions,
        description,
        trigger,
        Where(str(path), item.line),
        DEFAULT_COOLDOWN if cooldown is None else cooldown,
        unless_at_risk,
    )


def _read_partner(path: Path, item: YMap, problems: Problems) -> Partner | None:
    f = Fields(item, path, problems, "partner")
    partner_id = f.get("id", str, required=True, convert=_slug)
    f.where = f"partner {partner_id or '?'}"
    name = f.get("name", str, required=True)
    email = f.get("email", str, required=True)
    role = f.get("role", str)
    f.done()
    from email.utils import parseaddr  # only when a playbook is read, not from the cache

    if email and "@" not in parseaddr(email)[1]:
        f.problem("email", f"{email!r} is not an email address")
    if not partner_id or not name or not email:
        return None
    return Partner(partner_id, name, email, role, Where(str(path), item.line))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{yamlfile.describe(value)} is not a number")
    return float(value)


def _read_health(path: Path, data: YMap, problems: Problems) -> HealthModel | None:
    f = Fields(data, path, problems, "health")
    threshold = f.get("at_risk_below", (int, float), required=True, convert=_number)
    on_at_risk = f.get("on_at_risk", YList, default=YList())
    measure_list = f.get("measures", YList, required=True)
    opportunity_list = f.get("opportunities", YList, default=YList())
    f.done()
    if threshold is not None and not 0 < threshold <= 100:
        f.problem("at_risk_below", "at_risk_below must be a score between 0 and 100")
    measures: list[Measure] = []
    for _, item in _items(path, measure_list, problems, "health measures"):
        m = Fields(item, path, problems, "health measure")
        measure_id = m.get("id", str, required=True, convert=_slug)
        m.where = f"health measure {measure_id or '?'}"
        title = m.get("title", str, required=True)
        value = m.get("value", str, required=True, convert=_health_expression)
        weight = m.get("weight", (int, float), default=1.0, convert=_number)
        better = m.get("better", str, default="higher", convert=_one_of(("higher", "lower")))
        healthy = m.get("healthy", (int, float), required=True, convert=_number)
        poor = m.get("poor", (int, float), required=True, convert=_number)
        m.done()
        if weight is not None and weight <= 0:
            m.problem("weight", "weight must be more than 0")
        if healthy is not None and poor is not None:
            if better == "higher" and healthy <= poor:
                m.problem("healthy", "with better: higher, healthy must be above poor")
            if better == "lower" and healthy >= poor:
                m.problem("healthy", "with better: lower, healthy must be below poor")
        if measure_id in {x.id for x in measures}:
            m.problem("id", f"measure {measure_id!r} appears twice")
        elif None not in (measure_id, title, value, healthy, poor):
            measures.append(
                Measure(
                    measure_id,
                    title,
                    value,
                    weight or 1.0,
                    healthy,
                    poor,
                    better,
                    Where(str(path), item.line),
                )
            )
    if measure_list is not None and not measure_list:
        f.problem("measures", "the health model needs at least one measure")
    opportunities: list[Opportunity] = []
    for _, item in _items(path, opportunity_list, problems, "health opportunities"):
        o = Fields(item, path, problems, "health opportunity")
        opp_id = o.get("id", str, required=True, convert=_slug)
        o.where = f"health opportunity {opp_id or '?'}"
        title = o.get("title", str, required=True)
        when = o.get("when", str, required=True, convert=_health_expression)
        play = o.get("play", str)
        o.done()
        if None not in (opp_id, title, when):
            opportunities.append(
                Opportunity(opp_id, title, when, play, Where(str(path), item.line))
            )
    plays = [p for p in on_at_risk if isinstance(p, str)]
    if len(plays) != len(on_at_risk):
        f.problem("on_at_risk", "on_at_risk must be a list of play ids")
    if threshold is None or not measures:
        return None
    return HealthModel(
        threshold,
        tuple(measures),
        tuple(opportunities),
        tuple(plays),
        Where(str(path), data.line),
        Where(str(path), data.line_of("on_at_risk")),
    )


# -- references ---------------------------------------------------------------------------


def template_names(templates_dir: Path) -> set[str]:
    """Template names: ``welcome`` for welcome.txt. A language variant (welcome.pt.txt)
    alone is not the template: customers in every other language need welcome.txt."""
    if not templates_dir.is_dir():
        return set()
    return {path.name[: -len(".txt")] for path in templates_dir.glob("*.txt")}


def all_actions(library: Library) -> Iterable[tuple[str, Action]]:
    """Every action with a description of where it lives, nested ``then`` tasks included."""

    def walk(where: str, actions: Iterable[Action]) -> Iterable[tuple[str, Action]]:
        for action in actions:
            yield where, action
            task = action
            while isinstance(task, TaskAction) and task.then is not None:
                task = task.then
                yield where, task

    for funnel in library.funnels.values():
        for stage in funnel.stages:
            yield from walk(f"funnel {funnel.id}, stage {stage.id}", stage.on_enter)
    for play in library.plays.values():
        yield from walk(f"play {play.id}", play.actions)


@dataclass(frozen=True)
class Known:
    """What the references of an action are checked against: the library, and (when
    given) the workspace's templates and team."""

    library: Library
    team: Sequence[str] | None = None
    templates: set[str] | None = None
    templates_dir: Path | None = None


def _check_owner(value: str, known: Known, partners_ok: bool) -> str | None:
    partners, team = known.library.partners, known.team
    if value in STRATEGIES:
        return None
    if value.startswith("partner:"):
        if not partners_ok:
            return f"owner {value!r}: a partner cannot be used here"
        if value[len("partner:") :] not in partners:
            return f"no partner {value[len('partner:') :]!r} is defined (partners: {', '.join(sorted(partners)) or 'none'})"
        return None
    if team is not None and value not in team:
        members = ", ".join(team) or "empty"
        return (
            f"{value!r} is not in the team of funnelctl.yaml (team: {members}); "
            f"use {', '.join(STRATEGIES)}, a team member or partner:<id>"
        )
    return None


def _check_references(
    library: Library,
    problems: Problems,
    templates_dir: Path | None,
    team: Sequence[str] | None,
) -> None:
    templates = template_names(templates_dir) if templates_dir is not None else None
    known = Known(library, team, templates, templates_dir)
    for funnel in library.funnels.values():
        for stage in funnel.stages:
            reason = _check_owner(stage.owner, known, partners_ok=True)
            if reason:
                problems.add(
                    stage.where.path,
                    stage.where.line,
                    f"funnel {funnel.id}, stage {stage.id}: {reason}",
                )
    for where, action in all_actions(library):
        for reason in action_kind(action).check(action, known):
            problems.add(action.where.path, action.where.line, f"{where}: {reason}")
    if library.health is not None:
        model = library.health
        named = [(p, model.on_at_risk_where) for p in model.on_at_risk]
        named += [(o.play, o.where) for o in model.opportunities if o.play]
        for play, place in named:
            if play not in library.plays:
                names = ", ".join(sorted(library.plays)) or "none"
                problems.add(place.path, place.line, f"health: no play {play!r} (plays: {names})")
        for play_id in model.on_at_risk:
            rescue = library.plays.get(play_id)
            if rescue is not None and rescue.unless_at_risk:
                problems.add(
                    rescue.where.path,
                    rescue.where.line,
                    f"play {play_id}: on_at_risk starts it when the customer is at risk, but "
                    "unless_at_risk: true keeps it from starting then; remove one",
                )
    _check_play_cycles(library, problems)


def _check_play_cycles(library: Library, problems: Problems) -> None:
    def calls(play: Play) -> list[str]:
        return [a.play for a in play.actions if isinstance(a, PlayAction)]

    for play in library.plays.values():
        stack, seen = list(calls(play)), set()
        while stack:
            name = stack.pop()
            if name == play.id:
                problems.add(
                    play.where.path,
                    play.where.line,
                    f"play {play.id}: it runs itself through other plays",
                )
                break
            if name in seen or name not in library.plays:
                continue
            seen.add(name)
            stack.extend(calls(library.plays[name]))


# -- describing, for people ---------------------------------------------------------------------


def describe_action(action: Action) -> str:
    """One line saying what an action does, for `playbook show` and simulations."""
    text = action_kind(action).describe(action)
    if action.when:
        text += f" [when {action.when}]"
    return text


def describe_cadence(play: Play) -> str:
    """How often a play may start by itself, for people."""
    text = f"at most once per {play.cooldown} days per customer"
    if play.unless_at_risk:
        text += ", never while at risk"
    elif play.unless_at_risk is None:
        text += "; from an opportunity, not while at risk"
    return text


def _offset(days: int) -> str:
    return "on entry" if days == 0 else f"+{days}d"


# -- the action kinds: one class per action type --------------------------------------------

A = TypeVar("A", bound=Action)


class ActionKind(ABC, Generic[A]):
    """What the playbooks know of one action type: the key that names it in YAML, how it
    is read, what it refers to, and how it reads for people. Running it is the engine's
    (engine.RUNNERS, keyed by the same action classes)."""

    action_class: type[A]

    @property
    def keyword(self) -> str:
        """The key that names the action in YAML: its class's ``type`` ("task", "email"...)."""
        return self.action_class.type

    @abstractmethod
    def read(self, f: Fields, at: Where, when: str | None) -> A | None:
        """The action from its mapping (``when`` already read); None when a problem was added."""

    def check(self, action: A, known: Known) -> Iterator[str]:
        """The problems of what the action names (a funnel, a play, a template, an owner)."""
        return iter(())

    @abstractmethod
    def describe(self, action: A) -> str:
        """What the action does, in a few words (``describe_action`` adds its condition)."""


class TaskKind(ActionKind[TaskAction]):
    action_class = TaskAction

    def read(self, f: Fields, at: Where, when: str | None) -> TaskAction | None:
        title = f.get("task", str, required=True)
        due = f.get("due", (str, int), default=0, convert=_duration)
        owner = f.get("owner", str)
        channel = f.get("channel", str, convert=_one_of(CHANNELS))
        sourcing = f.get("sourcing", str, default="internal", convert=_one_of(SOURCING))
        description = f.get("description", str)
        drop_if = f.get("drop_if", str, convert=_expression)
        escalate_after = f.get("escalate_after", (str, int), convert=_duration)
        escalate_to = f.get("escalate_to", str)
        cancel_on_exit = f.get("cancel_on_exit", bool, default=False)
        then_map = f.get("then", YMap)
        if ("escalate_after" in f.map) != ("escalate_to" in f.map):
            f.problem(
                "escalate_after" if "escalate_after" in f.map else "escalate_to",
                "escalate_after and escalate_to go together: a duration such as 2d, and a team "
                "member or partner:<id>",
            )
        then: TaskAction | None = None
        if then_map is not None:
            nested = _read_action(f.path, then_map, f.problems, f"{f.where}, then")
            if nested is not None and not isinstance(nested, TaskAction):
                f.problems.add(f.path, then_map.line, f"{f.where}: 'then' must be a task action")
            elif isinstance(nested, TaskAction):
                then = nested
        if not title:
            return None
        return TaskAction(
            title=title,
            due=due,
            owner=owner,
            channel=channel,
            sourcing=sourcing,
            description=description,
            drop_if=drop_if,
            escalate_after=escalate_after,
            escalate_to=escalate_to,
            then=then,
            when=when,
            where=at,
            cancel_on_exit=cancel_on_exit,
        )

    def check(self, action: TaskAction, known: Known) -> Iterator[str]:
        for value in filter(None, (action.owner, action.escalate_to)):
            reason = _check_owner(value, known, partners_ok=True)
            if reason:
                yield f"task {action.title!r}: {reason}"

    def describe(self, action: TaskAction) -> str:
        text = f"task {action.title!r} due {_offset(action.due)}"
        owner = f"owner {action.owner}" if action.owner else "the stage's owner"
        details = [d for d in (action.channel, owner, action.sourcing) if d]
        text += f" ({', '.join(details)})"
        if action.drop_if:
            text += f", dropped if {action.drop_if}"
        if action.escalate_after is not None:
            text += f", escalated to {action.escalate_to} after {action.escalate_after}d overdue"
        if action.cancel_on_exit:
            text += ", dropped if the stage is left"
        if action.then is not None:
            text += f"; when done: {describe_action(action.then)} after completion"
        return text


class EmailKind(ActionKind[EmailAction]):
    action_class = EmailAction

    def read(self, f: Fields, at: Where, when: str | None) -> EmailAction | None:
        template = f.get("email", str, required=True)
        delay = f.get("delay", (str, int), default=0, convert=_duration)
        stop = f.get("stop_on_reply", bool, default=False)
        return EmailAction(template, delay, stop, when, at) if template else None

    def check(self, action: EmailAction, known: Known) -> Iterator[str]:
        if known.templates is not None and action.template not in known.templates:
            yield (
                f"email template {action.template!r} not found in {known.templates_dir} "
                f"(expected {action.template}.txt)"
            )

    def describe(self, action: EmailAction) -> str:
        text = f"email {action.template!r} {_offset(action.delay)}"
        if action.stop_on_reply:
            text += ", not sent if the customer replies"
        return text


class CloseKind(ActionKind[CloseAction]):
    action_class = CloseAction

    def read(self, f: Fields, at: Where, when: str | None) -> CloseAction | None:
        status = f.get("close", str, required=True, convert=_one_of(CLOSE_STATUSES))
        reason = f.get("reason", str)
        return CloseAction(status, reason, when, at) if status else None

    def describe(self, action: CloseAction) -> str:
        return f"mark {action.status}" + (f" ({action.reason})" if action.reason else "")


class EnrollKind(ActionKind[EnrollAction]):
    action_class = EnrollAction

    def read(self, f: Fields, at: Where, when: str | None) -> EnrollAction | None:
        funnel = f.get("enroll", str, required=True)
        stage = f.get("stage", str)
        return EnrollAction(funnel, stage, when, at) if funnel else None

    def check(self, action: EnrollAction, known: Known) -> Iterator[str]:
        target = known.library.funnels.get(action.funnel)
        if target is None:
            yield f"enroll: no funnel {action.funnel!r}"
        elif action.stage and action.stage not in {s.id for s in target.stages}:
            yield f"enroll: funnel {action.funnel!r} has no stage {action.stage!r}"

    def describe(self, action: EnrollAction) -> str:
        return f"enroll in {action.funnel}" + (f" at {action.stage}" if action.stage else "")


class AssignKind(ActionKind[AssignAction]):
    action_class = AssignAction

    def read(self, f: Fields, at: Where, when: str | None) -> AssignAction | None:
        strategy = f.get("assign", str, required=True)
        return AssignAction(strategy, when, at) if strategy else None

    def check(self, action: AssignAction, known: Known) -> Iterator[str]:
        reason = _check_owner(action.strategy, known, partners_ok=False)
        if reason:
            yield f"assign: {reason}"

    def describe(self, action: AssignAction) -> str:
        return f"assign owner: {action.strategy}"


class PlayKind(ActionKind[PlayAction]):
    action_class = PlayAction

    def read(self, f: Fields, at: Where, when: str | None) -> PlayAction | None:
        play = f.get("play", str, required=True)
        return PlayAction(play, when, at) if play else None

    def check(self, action: PlayAction, known: Known) -> Iterator[str]:
        plays = known.library.plays
        if action.play not in plays:
            yield f"no play {action.play!r} (plays: {', '.join(sorted(plays)) or 'none'})"

    def describe(self, action: PlayAction) -> str:
        return f"run play {action.play!r}"


# The one table of action types, in the order the YAML keys are listed in messages.
ACTION_KINDS: dict[type[Any], ActionKind[Any]] = {
    kind.action_class: kind
    for kind in (TaskKind(), EmailKind(), CloseKind(), EnrollKind(), AssignKind(), PlayKind())
}
_BY_KEYWORD = {kind.keyword: kind for kind in ACTION_KINDS.values()}
ACTION_TYPES = tuple(_BY_KEYWORD)


def action_kind(action: Action) -> ActionKind[Any]:
    return ACTION_KINDS[type(action)]
