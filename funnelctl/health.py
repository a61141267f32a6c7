"""Customer health: signals, the score and its reasons, opportunities, triggered plays.

The model lives in the playbooks (``health:``). Each measure is an expression
over the customer's context; its value falls in a band worth points; the score
is the weighted average over the measures that have a value, so a missing input
spreads its weight over the others. `run` keeps a snapshot per customer when
the result changes (the trend) and starts the at-risk and opportunity plays once
per episode: not again while it lasts, again after a recovery and a new slip.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from difflib import get_close_matches
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from .context import build_context, context_for
from .dates import days_between, days_since, shift
from .errors import FunnelError, UsageError
from .healthcode import CUSTOMER_COLUMNS, SIGNAL_FUNCTIONS, CompiledModel, compile_model
from .playbooks import (
    BAND_POINTS,
    EmailAction,
    HealthModel,
    Library,
    Measure,
    Opportunity,
    TaskAction,
    all_actions,
)
from .sandbox import Evaluator, TemplateError
from .store import Row, Store, customers, enrollments, events, outbox, triggers
from .store import activities as tasks
from .store import health as signals
from .store import plays as play_starts
from .store.customers import Customer
from .store.enrollments import Enrollment
from .store.health import Place
from .workspace import Settings

# -- signals --------------------------------------------------------------------------------------


def parse_value(raw: str) -> float:
    try:
        value = float(raw.strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{raw!r} is not a number")
    return value


def check_metric(metric: str) -> str:
    name = metric.strip().lower()
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"metric {metric!r} must be a name such as nps, csat or logins")
    return name.replace("-", "_")


# Metrics with a range a value must fall in: an NPS answer is 0 to 10, a CSAT score 1 to
# 5, and a count (logins, tickets, seats in use) is never negative. A value outside is a
# typo (an NPS of 90, a CSAT given in percent), refused by `signal` and `signal import`.
METRIC_RANGES: dict[str, tuple[float, float | None]] = {
    "nps": (0, 10),
    "csat": (1, 5),
    "logins": (0, None),
    "tickets": (0, None),
    "seats_used": (0, None),
}
# Read by `report` (NPS and CSAT) whatever the health model says.
REPORTED_METRICS = ("nps", "csat")
_READS = (
    re.compile(r"\bsignals\s*\.\s*([A-Za-z_]\w*)"),
    re.compile(r"\bsignals\s*\[\s*['\"]([^'\"]+)['\"]\s*\]"),
    re.compile(r"['\"]([^'\"]+)['\"]\s+(?:not\s+)?in\s+signals\b"),
    re.compile(r"\bsignal_\w+\s*\(\s*['\"]([^'\"]+)['\"]"),
)


def check_range(metric: str, value: float) -> None:
    """A ValueError when ``value`` is outside the known range of ``metric``."""
    if metric not in METRIC_RANGES:
        return
    low, high = METRIC_RANGES[metric]
    if high is None and value < low:
        raise ValueError(f"{metric} {_fmt(value)} is out of range: {metric} is {_fmt(low)} or more")
    if high is not None and not low <= value <= high:
        raise ValueError(
            f"{metric} {_fmt(value)} is out of range: {metric} goes from {_fmt(low)} to {_fmt(high)}"
        )


def metrics_read(library: Library) -> set[str]:
    """The metrics something reads: the playbooks' expressions (health measures and
    opportunities, play triggers, stage and action conditions) and the report."""
    expressions: list[str | None] = []
    if library.health is not None:
        expressions += library.health.expressions
    expressions += [p.trigger for p in library.plays.values()]
    for funnel in library.funnels.values():
        expressions += [s.advance_when for s in funnel.stages]
    for _, action in all_actions(library):
        expressions += [action.when, getattr(action, "drop_if", None)]
    found = set(REPORTED_METRICS)
    for text in filter(None, expressions):
        for pattern in _READS:
            found.update(m.replace("-", "_").lower() for m in pattern.findall(text))
    return found


def check_known(metric: str, library: Library) -> None:
    """A UsageError, with a "did you mean", for a metric nothing reads."""
    known = sorted(metrics_read(library))
    if metric in known:
        return
    close = get_close_matches(metric, known, n=1)
    hint = f": did you mean {close[0]!r}? To" if close else "; to"
    raise UsageError(
        f"No health measure or report reads the metric {metric!r} (known: {', '.join(known)})"
        f"{hint} record it anyway, pass --new-metric."
    )


def record_signal(
    store: Store,
    ref: str,
    metric: str,
    value: str,
    on: str,
    today: str,
    *,
    library: Library | None = None,
    new_metric: bool = False,
) -> dict[str, Any]:
    """Record one value. With ``library``, a metric nothing reads is refused unless
    ``new_metric``; a value outside the metric's range (METRIC_RANGES) always is."""
    try:
        name, number = check_metric(metric), parse_value(value)
        check_range(name, number)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if library is not None and not new_metric:
        check_known(name, library)
    if on > today:
        raise UsageError(f"--at {on} is after today ({today}).")
    with store.write():
        customer = customers.find(store, ref)
        signal_id = signals.add_signal(
            store,
            customer_id=customer.id,
            metric=name,
            value=number,
            measured_on=on,
            source="cli",
            today=today,
        )
    return {
        "id": signal_id,
        "customer": customer.email or customer.external_id,
        "metric": name,
        "value": number,
        "measured_on": on,
    }


# -- scoring ---------------------------------------------------------------------------------------


@dataclass
class Health:
    customer_id: int
    score: float | None
    at_risk: bool
    reasons: list[str] = field(default_factory=list)
    opportunities: list[tuple[str, str]] = field(default_factory=list)  # (id, title)
    values: dict[str, float | None] = field(default_factory=dict)


def round1(value: float) -> float:
    """One decimal, halves rounded up (81.25 -> 81.3), as people round."""
    text = repr(value)  # the key: a book's scores take few distinct values
    rounded = _ROUNDED.get(text)
    if rounded is None:
        if len(_ROUNDED) > 10_000:
            _ROUNDED.clear()
        rounded = _ROUNDED[text] = float(
            Decimal(text).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        )
    return rounded


_ROUNDED: dict[str, float] = {}


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _signal_functions(
    store: Store, customer_id: int, today: str, prefetch: Prefetch | None = None
) -> dict[str, Callable[..., Any]]:
    def window(metric: str, days: int, how: str) -> float | None:
        if prefetch is not None:
            return prefetch.window(customer_id, metric, days, how)
        return signals.window(store, customer_id, metric, shift(today, -int(days)), today, how)

    def change(metric: str, days: int) -> float | None:
        now = signals.value_on(store, customer_id, metric, today)
        then = signals.value_on(store, customer_id, metric, shift(today, -int(days)))
        return now - then if now is not None and then is not None else None

    return {
        "signal_sum": lambda metric, days: window(metric, days, "sum"),
        "signal_avg": lambda metric, days: window(metric, days, "avg"),
        "signal_min": lambda metric, days: window(metric, days, "min"),
        "signal_max": lambda metric, days: window(metric, days, "max"),
        "signal_change": change,
    }


class Prefetch:
    """What scoring every active customer reads, fetched in a few whole-table queries.

    Scoring 100,000 customers one query at a time costs about ten queries each; this
    reads the same values grouped by customer, once per run. Each part is read on first
    use, so a part the model never reads is never read. Every customer reads the same
    parts, so the first one scored reads them all, before the run writes its snapshots,
    episodes and plays; a window (once per metric and length) may be read later, but the
    run never writes a signal.
    """

    def __init__(
        self,
        store: Store,
        today: str,
        *,
        todo: bool = False,
        metrics: Collection[str] | None = None,
    ) -> None:
        """``todo``: only the customers the run scores (temp.health_todo). ``metrics``:
        the only metrics whose latest value is read (:func:`metrics_of_signals`)."""
        self.store = store
        self.today = today
        self.todo = todo
        self.metrics = metrics
        self._windows: dict[tuple[str, int, str], dict[int, float]] = {}

    @cached_property
    def signals(self) -> dict[int, dict[str, float]]:
        return signals.latest_by_customer(
            self.store, self.today, todo=self.todo, metrics=self.metrics
        )

    @cached_property
    def touches(self) -> dict[int, tuple[str | None, str | None]]:
        return signals.touches_by_customer(self.store, self.today, todo=self.todo)

    @cached_property
    def overdue(self) -> dict[int, int]:
        return signals.overdue_by_customer(self.store, self.today, todo=self.todo)

    @cached_property
    def enrollments(self) -> dict[int, list[Enrollment]]:
        found: dict[int, list[Enrollment]] = defaultdict(list)
        for enrollment in signals.active_enrollments(self.store, todo=self.todo):
            found[enrollment.customer_id].append(enrollment)
        return found

    @cached_property
    def places(self) -> dict[int, list[Place]]:
        """:attr:`enrollments`, only where each stands (stagnation)."""
        return signals.active_places(self.store, todo=self.todo)

    @cached_property
    def snapshots(self) -> dict[int, Row]:
        return signals.latest_snapshots(self.store, self.today, todo=self.todo)

    @cached_property
    def episodes(self) -> dict[int, dict[str, int]]:
        return signals.open_episodes_by_customer(self.store, todo=self.todo)

    def window(self, customer_id: int, metric: str, days: int, how: str) -> float | None:
        key = (metric, int(days), how)
        if key not in self._windows:
            since = shift(self.today, -int(days))
            self._windows[key] = signals.window_by_customer(
                self.store, metric, since, self.today, how, todo=self.todo
            )
        return self._windows[key].get(customer_id)


def health_context(
    store: Store,
    library: Library,
    settings: Settings,
    customer: Customer,
    today: str,
    prefetch: Prefetch | None = None,
    stagnation: int | None = None,
) -> dict[str, Any]:
    """The condition context plus what health measures read.

    With ``prefetch`` (a whole book scored), only the names the model's expressions read
    (:func:`model_names`): they see the same values, and the rest is never built.
    ``stagnation``: days_stagnant, when the caller has worked it out already."""
    names: frozenset[str] | None = None
    if prefetch is None:
        current = enrollments.current(store, customer.id)
        context = context_for(
            store,
            library,
            settings,
            customer,
            today,
            enrollment_id=current.id if current else None,
        )
        active = enrollments.active_of_customer(store, customer.id)
        overdue = signals.overdue_of(store, customer.id, today)
        last_touch = context["customer"]["last_touch_on"]
        reply = context["customer"]["last_reply_on"]
    else:
        names = model_names(library.health) if library.health is not None else None
        active = prefetch.enrollments.get(customer.id, [])
        latest = active[-1] if active else None  # the current enrollment (the latest active)
        funnel = library.funnels.get(latest.funnel) if latest else None
        stage = (
            next((s for s in funnel.stages if s.id == latest.stage), None)
            if funnel and latest
            else None
        )
        touches = prefetch.touches.get(customer.id, (None, None))
        context = build_context(
            store,
            settings,
            customer,
            today,
            funnel=funnel,
            stage=stage,
            enrollment=latest,
            known_signals=prefetch.signals.get(customer.id, {}),
            known_touches=touches,
            names=names,
        )
        overdue = prefetch.overdue.get(customer.id, 0)
        last_touch, reply = touches
    if names is None or not names.isdisjoint(SIGNAL_FUNCTIONS):
        context.update(_signal_functions(store, customer.id, today, prefetch))
    context.update(
        _counts(
            names,
            today,
            (last_touch, reply),
            _known_since(customer.signed_on, customer.created_on),
            overdue,
            lambda: (
                stagnation if stagnation is not None else _stagnation(library, active, today)[0]
            ),
        )
    )
    return context


def _known_since(signed_on: str | None, created_on: str) -> str:
    """The day funnelctl's record of the customer begins, for counting days without a
    touchpoint: the day they signed, but not before the day they were added. A book
    imported today holds none of its past touchpoints, and a customer who signed two
    years ago is not two years without contact for that."""
    return max(signed_on, created_on) if signed_on else created_on


def _counts(
    names: Collection[str] | None,
    today: str,
    touches: tuple[str | None, str | None],
    known_since: str,
    overdue: int,
    stagnation: Callable[[], int],
) -> dict[str, Any]:
    """The counts health adds to the condition context (of ``names`` only, unless None):
    days since the last touchpoint (since ``known_since`` before the first), since the
    customer's last reply, overdue tasks, days stuck beyond a stage's limit."""
    last_touch, reply = touches
    counts: dict[str, Any] = {}
    if names is None or "days_since_touch" in names:
        counts["days_since_touch"] = days_since(last_touch or known_since, today)
    if names is None or "days_since_reply" in names:
        # the customer's own voice: funnelctl's emails count as touchpoints above
        counts["days_since_reply"] = days_since(reply, today)
    if names is None or "overdue_tasks" in names:
        counts["overdue_tasks"] = overdue
    if names is None or "days_stagnant" in names:
        counts["days_stagnant"] = stagnation()
    return counts


T = TypeVar("T")
K = TypeVar("K")


def _per_object(derive: Callable[[K], T]) -> Callable[[K], T]:
    """``derive`` worked out once per object (a health model, a library). Unlike
    lru_cache, asking again does not hash the object (a deep frozen dataclass: hashing
    it costs more than scoring a customer), so per-customer code can ask."""
    known: dict[int, tuple[K, T]] = {}

    def cached(key: K) -> T:
        found = known.get(id(key))
        if found is None or found[0] is not key:
            if len(known) >= 8:
                known.clear()
            found = known[id(key)] = (key, derive(key))
        return found[1]

    return cached


@_per_object
def model_names(model: HealthModel) -> frozenset[str]:
    """The top-level names the model's measures and opportunities read: scoring a whole
    book builds only those parts of each customer's context."""
    from .sandbox import undeclared_names

    found: set[str] = set()
    for expression in model.expressions:
        found |= undeclared_names(expression)
    return frozenset(found)


def _stagnation(
    library: Library, active: Sequence[Enrollment | Place], today: str
) -> tuple[int, int | None]:
    """The most days any of ``active`` has stayed beyond its stage's ``stagnant_after``
    (0 when none), and in how many days that number next moves (None: never; 1 once
    positive, when it grows every day)."""
    beyond: list[int] = []
    limits = _stagnation_limits(library)
    for enrollment in active:
        limit = limits.get((enrollment.funnel, enrollment.stage))
        if limit is not None:
            beyond.append(days_between(enrollment.entered_on, today) - limit)
    stagnant = max([0, *beyond])
    if stagnant > 0:
        return stagnant, 1
    return 0, (1 - max(beyond)) if beyond else None


@_per_object
def _stagnation_limits(library: Library) -> dict[tuple[str, str], int]:
    """(funnel, stage) -> the stage's ``stagnant_after``, for the stages that have one:
    worked out once per library (a book's stagnation reads it for every enrollment)."""
    return {
        (funnel.id, stage.id): stage.stagnant_after
        for funnel in library.funnels.values()
        for stage in funnel.stages
        if stage.stagnant_after is not None
    }


def _measure(measure: Measure, evaluate: Callable[[str], Any]) -> float | None:
    try:
        value = evaluate(measure.value)
    except TemplateError:
        return None  # an input that is not there (no NPS answer yet): the weight moves on
    except (TypeError, ZeroDivisionError, ValueError):
        return None
    return _number(value)


def _number(value: Any) -> float | None:
    """A measure's value: a number, else missing (its weight moves on)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _holds(opportunity: Opportunity, evaluate: Callable[[str], Any]) -> bool:
    try:
        return bool(evaluate(opportunity.when))
    except (TemplateError, TypeError, ValueError, ZeroDivisionError):
        return False


def score_customer(
    store: Store,
    library: Library,
    settings: Settings,
    model: HealthModel,
    customer: Customer,
    today: str,
    prefetch: Prefetch | None = None,
) -> Health:
    # one evaluation context for every measure and opportunity of the customer
    evaluate = Evaluator(health_context(store, library, settings, customer, today, prefetch))
    if prefetch is None:
        return _score(evaluate, model, customer.id)
    return _score(_with_windows(evaluate, model, customer.id, prefetch), model, customer.id)


@_per_object
def metrics_of_signals(model: HealthModel) -> frozenset[str] | None:
    """The metrics whose latest value the model reads through ``signals``: each use a
    constant key (``signals.nps``, ``signals['nps']``, ``'nps' in signals``), so that a
    book is scored with only those read. None when some expression uses the mapping
    otherwise (iterates it, passes it on, calls one of its methods): every metric."""
    from jinja2 import nodes

    from .context import Lazy
    from .sandbox import environment

    found: set[str] = set()
    for expression in model.expressions:
        tree = environment().parse("{{ (" + expression + ") }}")
        keyed: set[int] = set()  # the Name nodes used with a constant key
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Compare)):
            if isinstance(node, nodes.Compare):
                left = node.expr
                for operand in node.ops:
                    right = operand.expr
                    if (
                        operand.op in ("in", "notin")
                        and isinstance(right, nodes.Name)
                        and right.name == "signals"
                        and isinstance(left, nodes.Const)
                        and isinstance(left.value, str)
                    ):
                        keyed.add(id(right))
                        found.add(left.value)
                    left = right
                continue
            if isinstance(node, nodes.Getattr):
                target, key = node.node, node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                target, key = node.node, node.arg.value
            else:
                continue
            if not isinstance(target, nodes.Name) or target.name != "signals":
                continue
            # a name the mapping itself has (signals.get, signals.items) is not a metric
            if isinstance(key, str) and not key.startswith("_") and not hasattr(Lazy, key):
                keyed.add(id(target))
                found.add(key)
        for name in tree.find_all(nodes.Name):
            if name.name == "signals" and id(name) not in keyed:
                return None
    return frozenset(found)


class _Scorer:
    """Scores the customers of a book one after another (a run's batch, at-risk --live):
    :func:`score_customer` with ``prefetch``, the same results.

    A model that compiles (healthcode) is evaluated as Python over the values the
    customer's context would hold for it, read from ``prefetch`` and the customer's
    columns. Any other is evaluated by the sandbox in the customer's context, the Jinja
    context object reused from one customer to the next (Evaluator.reset)."""

    def __init__(
        self,
        store: Store,
        library: Library,
        settings: Settings,
        model: HealthModel,
        prefetch: Prefetch,
    ) -> None:
        self.store, self.library, self.settings = store, library, settings
        self.model, self.prefetch = model, prefetch
        self.evaluate = Evaluator({})
        self.code = _compiled(model)
        # the customer's columns the compiled model reads (its id comes with every row)
        self.columns = (
            sorted(self.code.customer_keys.intersection(CUSTOMER_COLUMNS) - {"id"})
            if self.code is not None
            else []
        )

    def score(self, customer: Customer, stagnation: int | None = None) -> tuple[Health, Row]:
        """The customer's health, and the context it was scored in."""
        if self.code is not None:
            columns = {column: getattr(customer, column) for column in self.columns}
            values = self._values(
                customer.id, customer.signed_on, customer.created_on, columns, stagnation
            )
            self.evaluate.reset(values)  # what _recheck_in's probes read
            return self._compiled_score(customer.id, values), values
        context = health_context(
            self.store,
            self.library,
            self.settings,
            customer,
            self.prefetch.today,
            self.prefetch,
            stagnation,
        )
        self.evaluate.reset(context)
        read = _with_windows(self.evaluate, self.model, customer.id, self.prefetch)
        return _score(read, self.model, customer.id), context

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows :meth:`score_row` scores: every active customer (of temp.health_todo
        when the prefetch is), with the columns the compiled model reads."""
        return signals.active_columns(self.store, self.columns, todo=self.prefetch.todo)

    def score_row(self, row: tuple[Any, ...]) -> Health:
        """The health of the customer of ``row`` (:meth:`rows`), by the compiled model."""
        assert self.code is not None
        customer_id, signed_on, created_on, *columns = row
        values = self._values(
            customer_id, signed_on, created_on, dict(zip(self.columns, columns, strict=True))
        )
        return self._compiled_score(customer_id, values)

    def _compiled_score(self, customer_id: int, values: dict[str, Any]) -> Health:
        assert self.code is not None
        measured, held = self.code.evaluate(values)
        return _verdict(self.model, customer_id, measured, held)

    def _values(
        self,
        customer_id: int,
        signed_on: str | None,
        created_on: str,
        columns: dict[str, Any],
        stagnation: int | None = None,
    ) -> dict[str, Any]:
        """What health_context holds for the names the compiled model reads."""
        assert self.code is not None
        names, prefetch, today = self.code.names, self.prefetch, self.prefetch.today
        touches: tuple[str | None, str | None] = (None, None)
        if self.code.reads_touches:
            touches = prefetch.touches.get(customer_id, (None, None))
        values = _counts(
            names,
            today,
            touches,
            _known_since(signed_on, created_on),
            prefetch.overdue.get(customer_id, 0) if "overdue_tasks" in names else 0,
            lambda: (
                stagnation
                if stagnation is not None
                else _stagnation(self.library, prefetch.places.get(customer_id, []), today)[0]
            ),
        )
        if "today" in names:
            values["today"] = today
        if "days_since_signed" in names:
            values["days_since_signed"] = days_since(signed_on, today)
        if "days_in_stage" in names:  # in the current enrollment's stage (the latest active)
            places = prefetch.places.get(customer_id)
            values["days_in_stage"] = days_since(places[-1].entered_on if places else None, today)
        if "signals" in names:
            values["signals"] = prefetch.signals.get(customer_id, {})
        if "customer" in names:
            columns["id"] = customer_id
            columns["last_touch_on"], columns["last_reply_on"] = touches
            values["customer"] = columns
        if not names.isdisjoint(SIGNAL_FUNCTIONS):
            values.update(_signal_functions(self.store, customer_id, today, prefetch))
        return values


@_per_object
def _compiled(model: HealthModel) -> CompiledModel | None:
    return compile_model(model, number=_number)


@_per_object
def _window_calls(model: HealthModel) -> dict[str, tuple[str, int, str]]:
    """The model's expressions that are one window call with literal arguments, such as
    ``signal_avg("logins", 28)``: expression -> (metric, days, how)."""
    found: dict[str, tuple[str, int, str]] = {}
    for expression in model.expressions:
        match = _ONE_WINDOW_CALL.fullmatch(expression)
        if match:
            how, _, metric, days = match.groups()
            found[expression] = (metric, int(days), how)
    return found


def _with_windows(
    evaluate: Callable[[str], Any], model: HealthModel, customer_id: int, prefetch: Prefetch
) -> Callable[[str], Any]:
    """``evaluate``, but an expression that is one window call with literal arguments is
    read from ``prefetch`` directly: the value the call gives in Jinja (the context's
    signal_* function reads the same prefetch), without a Jinja evaluation per customer."""
    calls = _window_calls(model)
    if not calls:
        return evaluate

    def read(expression: str) -> Any:
        call = calls.get(expression)
        if call is None:
            return evaluate(expression)
        return prefetch.window(customer_id, *call)

    return read


def _score(evaluate: Callable[[str], Any], model: HealthModel, customer_id: int) -> Health:
    measured = [_measure(measure, evaluate) for measure in model.measures]
    held = [_holds(opportunity, evaluate) for opportunity in model.opportunities]
    return _verdict(model, customer_id, measured, held)


def _verdict(
    model: HealthModel, customer_id: int, measured: Sequence[float | None], held: Sequence[bool]
) -> Health:
    """The health of a customer whose measures have the values ``measured`` and whose
    opportunities' conditions hold as ``held`` (both in the model's order)."""
    key = (id(model), tuple(measured), tuple(held))
    known = _VERDICTS.get(key)
    if known is None or known[0] is not model:
        # most customers of a book share their values with many others: their score and
        # reasons are worked out once
        if len(_VERDICTS) >= 8192:
            _VERDICTS.clear()
        values = {m.id: value for m, value in zip(model.measures, measured, strict=True)}
        known = _VERDICTS[key] = (model, *_banded(model, measured, held), values)
    _, score, reasons, opportunities, values = known
    return Health(
        customer_id,
        score,
        score is not None and score < model.at_risk_below,
        list(reasons),
        list(opportunities),
        dict(values),
    )


_VERDICTS: dict[
    tuple[int, tuple[float | None, ...], tuple[bool, ...]],
    tuple[
        HealthModel,
        float | None,
        tuple[str, ...],
        tuple[tuple[str, str], ...],
        dict[str, float | None],
    ],
] = {}


def _banded(
    model: HealthModel, measured: Sequence[float | None], held: Sequence[bool]
) -> tuple[float | None, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The score, the reasons (the measures not healthy, the costliest first) and the
    opportunities (id, title) of :func:`_verdict`."""
    total = weights = 0.0
    lost: list[tuple[float, str]] = []
    for measure, value in zip(model.measures, measured, strict=True):
        if value is None:
            continue
        band = measure.band(value)
        points = BAND_POINTS[band]
        total += measure.weight * points
        weights += measure.weight
        if band != "healthy":
            sign = "≥" if measure.better == "higher" else "≤"
            lost.append(
                (
                    measure.weight * (100 - points),
                    f"{measure.title}: {_fmt(value)} is {band} (healthy {sign} {_fmt(measure.healthy)})",
                )
            )
    lost.sort(key=lambda item: -item[0])
    opportunities = tuple(
        (opportunity.id, opportunity.title)
        for opportunity, holds in zip(model.opportunities, held, strict=True)
        if holds
    )
    score = round1(total / weights) if weights else None
    return score, tuple(reason for _, reason in lost), opportunities


def _model(library: Library) -> HealthModel:
    if library.health is None:
        raise FunnelError(
            "No health model in the playbooks: add a 'health:' section (see docs/health.md) "
            "or restore playbooks/health.yaml from a new workspace."
        )
    return library.health


def previous_scores(store: Store, customer_id: int, today: str) -> float | None:
    return signals.score_before(store, customer_id, today)


def at_risk_report(
    store: Store,
    library: Library,
    settings: Settings,
    today: str,
    *,
    everyone: bool,
    live: bool = False,
    rescore: bool = False,
) -> list[dict[str, Any]]:
    """Scores, worst first, with reasons, trend and opportunities (the at-risk command).

    When `run` has already scored everyone today, its snapshots are read (a query,
    whatever the size of the book); otherwise, or with ``live``, the health of every
    active customer as it is now: scored now for those whose result may have changed
    since the last run (as `run` would choose them), read from the last run's
    snapshots for the others; everyone scored now with ``rescore``, or when the last
    run cannot tell (another model, a later day).
    """
    model = _model(library)
    with store.read():
        if not live and store.get_meta("last_run") == today:
            rows = _from_snapshots(store, today, everyone)
        elif rescore or not _incremental(store, library, settings, model, today):
            rows = _scored_now(store, library, settings, model, today, everyone)
        else:
            signals.plan(store, today, everyone=False, take=False)
            rows = _scored_now(store, library, settings, model, today, everyone, todo=True)
            rows += _from_snapshots(store, today, everyone, but_todo=True)
    rows.sort(
        key=lambda r: (
            r["score"] is None,
            r["score"] if r["score"] is not None else 0,
            r["customer"],
        )
    )
    return rows


def _row(
    customer: Customer,
    score: float | None,
    at_risk: bool,
    reasons: list[str],
    opportunities: list[str],
    before: float | None,
) -> dict[str, Any]:
    return {
        "customer": customer.label,
        "name": customer.name,
        "owner": customer.owner,
        "score": score,
        "at_risk": at_risk,
        "trend": round1(score - before) if score is not None and before is not None else None,
        "reasons": reasons,
        "opportunities": opportunities,
    }


def _scored_now(
    store: Store,
    library: Library,
    settings: Settings,
    model: HealthModel,
    today: str,
    everyone: bool,
    *,
    todo: bool = False,
) -> list[dict[str, Any]]:
    """Every active customer scored now (only those of temp.health_todo with ``todo``)."""
    rows = []
    prefetch = Prefetch(store, today, todo=todo, metrics=metrics_of_signals(model))
    scorer = _Scorer(store, library, settings, model, prefetch)
    results: Iterator[tuple[Customer | int, Health]]
    if scorer.code is not None:  # no Customer made for the many nobody lists
        results = ((row[0], scorer.score_row(row)) for row in scorer.rows())
    else:
        found = _todo_customers(store) if todo else signals.active_customers(store)
        results = ((customer, scorer.score(customer)[0]) for customer in found)
    listed = [
        (who, health)
        for who, health in results
        if everyone or health.at_risk or health.opportunities
    ]
    for start in range(0, len(listed), 500):  # a few hundred customers and trends a query
        batch = listed[start : start + 500]
        ids = [who if isinstance(who, int) else who.id for who, _ in batch]
        records = customers.many(store, [who for who, _ in batch if isinstance(who, int)])
        before = signals.scores_before(store, ids, today)
        for (who, health), customer_id in zip(batch, ids, strict=True):
            customer = records[customer_id] if isinstance(who, int) else who
            titles = [title for _, title in health.opportunities]
            rows.append(
                _row(
                    customer,
                    health.score,
                    health.at_risk,
                    health.reasons,
                    titles,
                    before.get(customer_id),
                )
            )
    return rows


def _todo_customers(store: Store) -> Iterator[Customer]:
    after = 0
    while batch := signals.todo_customers(store, after, BATCH):
        after = batch[-1].id
        yield from batch


def _from_snapshots(
    store: Store, today: str, everyone: bool, *, but_todo: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for customer, snap in signals.snapshots_with_customers(
        store, today, everyone=everyone, but_todo=but_todo
    ):
        before = (
            snap["score"] if snap["day"] < today else previous_scores(store, customer.id, today)
        )
        rows.append(
            _row(
                customer,
                snap["score"],
                bool(snap["at_risk"]),
                json.loads(snap["reasons"]),
                json.loads(snap["opportunities"]),
                before,
            )
        )
    return rows


# -- the daily tick: snapshots, episodes, plays ------------------------------------------------------


# Names whose value moves with the calendar alone, nothing written: ``today`` and the
# day counts, which grow by one a day (days_stagnant once positive).
CLOCK_NAMES = frozenset(
    {
        "today",
        "days_in_stage",
        "days_since_signed",
        "days_since_touch",
        "days_since_reply",
        "days_stagnant",
    }
)
_WINDOW_CALL = re.compile(
    r"\bsignal_(?:sum|avg|min|max|change)\s*\(\s*(['\"])([^'\"]*)\1\s*,\s*(\d+)\s*\)"
)
_ANY_WINDOW_CALL = re.compile(r"\bsignal_(?:sum|avg|min|max|change)\b")
# a whole expression that is one window call whose metric is a plain string literal (no
# escapes) and whose days a plain decimal literal: its value is the prefetched window's
_ONE_WINDOW_CALL = re.compile(
    r"\s*signal_(sum|avg|min|max)\s*\(\s*(['\"])([^'\"\\]*)\2\s*,\s*(0|[1-9]\d*)\s*\)\s*"
)
BATCH = 1000  # customers scored, kept and played at a time: memory stays flat


@dataclass(frozen=True)
class Clockwork:
    """How a health model's results move with the calendar, worked out from its
    expressions once: which measures are a bare day count (their next band change is
    arithmetic), which expressions read a day count or ``today`` some other way (they
    are checked each day for the customers whose result depends on it), and which
    signal windows it reads (a signal leaving one changes a value).

    ``exact`` is False for a model the incremental run cannot follow: one that reads
    ``health`` (its own last result) or calls a signal function with arguments that
    are not plain literals; such a model is scored in full every day."""

    exact: bool
    counts: dict[str, str]  # measure id -> the day count it is
    probed: frozenset[str]  # expressions that read a clock name otherwise
    windows: frozenset[tuple[str, int]]  # (metric, days)


@lru_cache(maxsize=8)
def clockwork(model: HealthModel) -> Clockwork:
    from .sandbox import undeclared_names

    exact = True
    counts: dict[str, str] = {}
    probed: set[str] = set()
    windows: set[tuple[str, int]] = set()
    expressions: list[tuple[str | None, str]] = [(m.id, m.value) for m in model.measures]
    expressions += [(None, o.when) for o in model.opportunities]
    for measure_id, expression in expressions:
        names = undeclared_names(expression)
        calls = _WINDOW_CALL.findall(expression)
        if "health" in names or len(calls) != len(_ANY_WINDOW_CALL.findall(expression)):
            exact = False
        windows.update((metric, int(days)) for _, metric, days in calls)
        if measure_id is not None and expression.strip() in CLOCK_NAMES - {"today"}:
            counts[measure_id] = expression.strip()
        elif names & CLOCK_NAMES:
            probed.add(expression)
    return Clockwork(exact, counts, frozenset(probed), frozenset(windows))


def _count_moves(measure: Measure, value: float | None, first: int | None) -> int | None:
    """In how many days a measure that is a day count (``value`` today, moving first in
    ``first`` days, then by one a day) changes the result: at once when its band is not
    healthy (the reason prints the value), else when it leaves the healthy band."""
    if value is None or first is None:
        return None  # a count with no date to count from stays missing until one is written
    if measure.band(value) != "healthy":
        return first
    if measure.better == "higher":
        return None  # healthy and growing: healthy it stays
    return int(math.floor(measure.healthy - value)) + first


def _same_without_clock(expression: str, evaluate: Evaluator) -> bool:
    """Whether ``expression`` gives the same value with the clock names undefined: then
    (an ``and`` that stopped before the day count, say) the calendar cannot change it."""
    try:
        real, blind = evaluate(expression), evaluate(expression, hiding=CLOCK_NAMES)
        return type(real) is type(blind) and bool(real == blind)
    except Exception:  # the blind evaluation used a clock name (or the real one failed)
        return False


def _recheck_in(
    clock: Clockwork,
    model: HealthModel,
    health: Health,
    context: dict[str, Any],
    evaluate: Evaluator,
    stagnant_moves: int | None,
) -> int | None:
    """In how many days the calendar alone may change the customer's result (None:
    not before an input is written). Stored inputs dated ahead (a window a signal
    leaves, a task falling overdue) are added by store.health.recheck_on_inputs."""
    soonest: int | None = None

    def sooner(days: int | None) -> None:
        nonlocal soonest
        if days is not None and (soonest is None or days < soonest):
            soonest = days

    for measure in model.measures:
        name = clock.counts.get(measure.id)
        if name is not None:
            first = stagnant_moves if name == "days_stagnant" and not context[name] else 1
            sooner(_count_moves(measure, health.values[measure.id], first))
    if any(not _same_without_clock(e, evaluate) for e in clock.probed):
        sooner(1)
    return soonest


# What scoring means, in the code: raised when the same inputs come to give another
# result (2: days_since_touch never counts from before the customer was added), so that
# a book kept by an older funnelctl is scored in full once, not left with old results.
SCORING = 2


def _basis(library: Library, settings: Settings) -> str:
    """A fingerprint of what scores read besides the database: the playbooks, the team
    and sender, funnelctl's own version and what scoring means (SCORING). When it
    changes, the run scores everyone."""
    import hashlib

    from . import __version__

    text = repr(
        (
            __version__,
            SCORING,
            library,
            settings.sender,
            settings.signature,
            settings.team,
            settings.members,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _incremental(
    store: Store, library: Library, settings: Settings, model: HealthModel, today: str
) -> bool:
    """Whether the last run's states tell today's results of the customers it would not
    score: same playbooks, team and funnelctl, a model it can follow, and a day on or
    after the last run's."""
    last_day = store.get_meta("health_day")
    return (
        clockwork(model).exact
        and store.get_meta("health_basis") == _basis(library, settings)
        and last_day is not None
        and last_day <= today
    )


def run_health(
    store: Store,
    library: Library,
    settings: Settings,
    today: str,
    engine: Any,
    *,
    rescore: bool = False,
) -> dict[str, int]:
    """Keep every active customer's health current: changed snapshots, plays once per
    episode. Runs inside the caller's transaction (the tick).

    Only the customers whose result may have changed are scored (an input written since
    the last run, a recheck day reached, never scored); the others would score the same
    and a full run would write nothing for them. Everyone is scored with ``rescore``,
    when the playbooks, team or funnelctl changed, on a day before the last run's, or for
    a model the incremental run cannot follow (Clockwork.exact). The counts are the same
    either way: ``scored`` is every active customer, ``at_risk`` those at risk.
    """
    counts = {"scored": 0, "at_risk": 0, "plays": 0}
    model = library.health
    if model is None:
        return counts
    # Episodes of customers with no active enrollment left (churned, lost, won) end now:
    # nobody scores them any more, so nothing else would close them.
    for episode in signals.orphan_episodes(store):
        end_episode(store, episode["id"], episode["customer_id"], episode["kind"], today)
        events.add(
            store,
            episode["customer_id"],
            today,
            "health",
            f"{episode['kind']} ended: no active enrollment",
        )
    clock = clockwork(model)
    last_day = store.get_meta("health_day")
    everyone = rescore or not _incremental(store, library, settings, model, today)
    signals.plan(store, today, everyone=everyone)
    prefetch = Prefetch(store, today, todo=True, metrics=metrics_of_signals(model))
    after = 0
    only_add = _plays_only_add(library)
    with triggers.row_triggers_at_once(store) if only_add else nullcontext():
        while batch := signals.todo_customers(store, after, BATCH):
            after = batch[-1].id
            _score_batch(
                store, library, settings, model, clock, prefetch, engine, batch, counts, only_add
            )
    signals.recheck_on_inputs(store, today, clock.windows)
    signals.forget_own_tasks(store)
    store.set_meta("health_basis", _basis(library, settings))
    if last_day is None or last_day <= today:
        store.set_meta("health_day", today)
    else:
        # a day before the last run's: its states do not describe the later snapshots,
        # so the next run (or at-risk --live) scores everyone again
        signals.forget_states(store)
    counts["scored"], counts["at_risk"] = signals.verdicts(store)
    return counts


def _plays_only_add(library: Library) -> bool:
    """Whether the plays health starts only add tasks and emails (no close, enroll,
    assign or play of their own). Then nothing the run's plays insert changes its status
    in the same run, and the row triggers of thousands of tasks and emails can do their
    work once at the end (``store.triggers``), sparing each row its statement journal;
    and no play changes a customer or an enrollment, so that those of a batch's plays
    are read at once."""
    model = library.health
    assert model is not None
    plays = [*model.on_at_risk, *(o.play for o in model.opportunities if o.play)]
    return all(
        isinstance(action, (TaskAction, EmailAction))
        for play in plays
        for action in library.plays[play].actions
    )


def _score_batch(
    store: Store,
    library: Library,
    settings: Settings,
    model: HealthModel,
    clock: Clockwork,
    prefetch: Prefetch,
    engine: Any,
    batch: list[Customer],
    counts: dict[str, int],
    only_add: bool,
) -> None:
    """Score a batch of customers, keep their snapshots and states in one statement
    each, then open and close their episodes and start plays, customer by customer in
    id order (the same rows, in the same order, as scoring one customer at a time).
    With plays that ``only_add`` (_plays_only_add), the current enrollments of those
    who may start one are read at once."""
    today = prefetch.today
    results: list[Health] = []
    states: list[tuple[int, str, bool, str | None]] = []
    scorer = _Scorer(store, library, settings, model, prefetch)
    for customer in batch:
        stagnant, stagnant_moves = _stagnation(library, prefetch.places.get(customer.id, []), today)
        health, context = scorer.score(customer, stagnant)
        results.append(health)
        days = _recheck_in(clock, model, health, context, scorer.evaluate, stagnant_moves)
        states.append(
            (customer.id, today, health.at_risk, shift(today, days) if days is not None else None)
        )
    signals.keep_snapshots(
        store,
        [
            row
            for health in results
            if (row := _snapshot_row(health, today, prefetch.snapshots.get(health.customer_id)))
        ],
    )
    signals.keep_states(store, states)
    engine.know_play_starts([c.id for c in batch])
    current = (
        enrollments.current_of(
            store,
            [h.customer_id for h in results if _may_start(h, prefetch.episodes.get(h.customer_id))],
        )
        if only_add
        else {}
    )
    for customer, health in zip(batch, results, strict=True):
        counts["plays"] += _episodes(
            store, library, model, engine, customer, health, prefetch, current.get(customer.id)
        )
    engine.know_play_starts(None)


def _may_start(health: Health, open_kinds: dict[str, int] | None) -> bool:
    """Whether the customer begins an episode today (at risk, an opportunity), whose
    plays may start: one not open already."""
    kinds = [f"opportunity:{opp_id}" for opp_id, _ in health.opportunities]
    if health.at_risk:
        kinds.append("at-risk")
    return any(kind not in (open_kinds or {}) for kind in kinds)


def _episodes(
    store: Store,
    library: Library,
    model: HealthModel,
    engine: Any,
    customer: Customer,
    health: Health,
    prefetch: Prefetch,
    current: Enrollment | None = None,
) -> int:
    """End the customer's episodes that are over, start those that begin (with their
    plays). Returns how many plays started. ``current``: the customer's current
    enrollment, when read with the batch (Engine.run_play)."""
    today = prefetch.today
    started = 0
    # at-risk first: an opportunity's play that waits while the customer is at risk
    # must see today's verdict
    kinds = {"at-risk": (health.at_risk, list(model.on_at_risk), "; ".join(health.reasons[:3]))}
    for opp_id, title in health.opportunities:
        play = next((o.play for o in model.opportunities if o.id == opp_id), None)
        kinds[f"opportunity:{opp_id}"] = (True, [play] if play else [], title)
    open_kinds = prefetch.episodes.get(customer.id, {})
    for kind, episode_id in open_kinds.items():
        if not kinds.get(kind, (False,))[0]:
            end_episode(store, episode_id, customer.id, kind, today)
            events.add(
                store,
                customer.id,
                today,
                "health",
                f"No longer {kind.replace('opportunity:', 'an opportunity: ')}",
            )
    for kind, (active, plays, why) in kinds.items():
        if not active or kind in open_kinds:
            continue
        opportunity = kind != "at-risk"
        if (
            opportunity
            and health.at_risk
            and any(library.plays[p].held_when_at_risk(opportunity=True) for p in plays)
        ):
            continue  # the episode starts once the customer is out of risk, if it holds
        episode_id = signals.start_episode(
            store, customer.id, kind, today, health.score, health.reasons
        )
        what = "Opportunity" if opportunity else "At risk"
        events.add(store, customer.id, today, "health", f"{what} (score {health.score}): {why}")
        for play in plays:
            started += int(
                engine.run_play(
                    customer,
                    play,
                    key=f"health:{episode_id}:{play}",
                    source="health",
                    episode_id=episode_id,
                    opportunity=opportunity,
                    at_risk=health.at_risk,
                    current=current,
                )
            )
    return started


def end_episode(store: Store, episode_id: int, customer_id: int, kind: str, today: str) -> None:
    """The episode is over: the emails its plays still had queued are superseded (a
    rescue email to a customer who recovered reads wrong), and its plays' open tasks say
    why they were started and that the reason is gone; they stay, as promised work may."""
    signals.end_episode(store, episode_id, today)
    what = kind.replace("opportunity:", "opportunity ")
    why = f"the {what} episode ended on {today}"
    superseded = 0
    for start in play_starts.of_episode(store, episode_id):
        superseded += outbox.supersede_keyed(store, start.action_key, why)
        tasks.note_open_keyed(store, start.action_key, f"{why}; still needed?")
    if superseded:
        events.add(
            store, customer_id, today, "email", f"{superseded} queued email(s) superseded: {why}"
        )


def verdict_now(
    store: Store, library: Library, settings: Settings, customer: Customer, today: str
) -> dict[str, Any]:
    """The customer's health as it is on ``today`` ({score, at_risk}), scored now: the run
    keeps today's snapshot only after its moves, and a gate must not read yesterday's."""
    if library.health is None:
        return {"score": None, "at_risk": False}
    health = score_customer(store, library, settings, library.health, customer, today)
    return {"score": health.score, "at_risk": health.at_risk}


def at_risk_now(
    store: Store, library: Library, settings: Settings, customer: Customer, today: str
) -> bool:
    """Whether the customer is at risk on ``today``: an at-risk episode still open, or the
    health model's verdict now (a play that waits while at risk must not start on the
    morning the customer slips, before today's scores are kept)."""
    if signals.open_episode(store, customer.id, "at-risk"):
        return True
    return bool(verdict_now(store, library, settings, customer, today)["at_risk"])


# json.dumps(..., ensure_ascii=False) builds an encoder per call: a run keeps a row a customer
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _snapshot_row(
    health: Health, today: str, last: Row | None
) -> tuple[int, str, float | None, bool, str, str] | None:
    """Today's result to keep, unless it is the same as ``last``, the latest snapshot up
    to today (then the last snapshot still tells the value, so the trend stays right)."""
    reasons = _JSON(health.reasons)
    opportunities = _JSON([t for _, t in health.opportunities])
    same = last is not None and (
        last["score"],
        bool(last["at_risk"]),
        last["reasons"],
        last["opportunities"],
    ) == (health.score, health.at_risk, reasons, opportunities)
    if same:
        return None
    return (health.customer_id, today, health.score, health.at_risk, reasons, opportunities)
