"""A health model compiled to Python gives what the sandbox gives: the same value for
every measure, the same verdict for every opportunity, over any values a customer's
context can hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelctl.context import Lazy
from funnelctl.health import _holds, _measure, _number
from funnelctl.healthcode import compile_model
from funnelctl.playbooks import HealthModel, Measure, Opportunity
from funnelctl.sandbox import Evaluator


def model_of(*expressions: str, when: str = "false") -> HealthModel:
    measures = tuple(
        Measure(f"m{i}", f"M{i}", expression, 1, 1, 0) for i, expression in enumerate(expressions)
    )
    return HealthModel(50, measures, (Opportunity("o", "O", when),))


COMPILED = [
    "signals.nps",
    "signals['seats_used'] / customer.seats if customer.seats and 'seats_used' in signals else none",
    'signal_avg("logins", 28)',
    "signal_change('logins', days_in_stage or 1)",
    "days_since_touch",
    "overdue_tasks + days_stagnant * 2 - -1",
    "(days_since_signed or 0) // 7 % 3 ** 2",
    "1 < days_since_reply <= 30",
    "'nps' not in signals or not signals.nps >= 9",
    "customer.mrr and customer.plan == 'pro' and today >= '2026-01-01'",
    "customer.last_touch_on and customer.last_reply_on",
]
NOT_COMPILED = [
    "signals | length",  # a filter
    "signals.nps is defined",  # a test
    "signals.get('nps')",  # a method
    "signals.items",  # a name the mapping itself has
    "signals[metric]",  # a key that is not a constant
    "signals._ready",
    "customer.tags",  # a list, and what the sandbox makes of it is its own
    "customer.fields.tier",
    "customer.replied",  # depends on the stage visit
    "customer.first_name",
    "health.score",  # its own last result
    "owner == 'ana'",
    "stage.id == 'deployment'",
    "1 if days_stagnant",  # no else: undefined
    "[1, 2][0]",
    "'a' ~ 'b'",
    "signal_avg(metric='logins', days=28)",
    "range(3)",
]


@pytest.mark.parametrize("expression", COMPILED)
def test_the_expressions_a_model_is_written_in_compile(expression):
    assert compile_model(model_of(expression)) is not None


@pytest.mark.parametrize("expression", NOT_COMPILED)
def test_a_model_with_anything_else_is_left_to_the_sandbox(expression):
    assert compile_model(model_of("signals.nps", expression)) is None
    assert compile_model(model_of("signals.nps", when=expression)) is None


def test_the_compiled_model_says_what_it_reads():
    code = compile_model(model_of(*COMPILED[:4], when="customer.seats > 3 and today"))
    assert code is not None
    assert code.names == {
        "signals",
        "customer",
        "signal_avg",
        "signal_change",
        "days_in_stage",
        "today",
    }
    assert code.customer_keys == {"seats"}
    assert not code.reads_touches
    touching = compile_model(model_of("days_since_reply", when="customer.last_touch_on"))
    assert touching is not None and touching.reads_touches


# -- the same results, over random expressions and values -------------------------------------

NUMBERS = st.one_of(
    st.integers(-3, 12), st.floats(-5, 50, allow_nan=False).map(lambda x: round(x, 2))
)
ATOMS = st.one_of(
    NUMBERS.map(repr),
    st.sampled_from(
        [
            "none",
            "true",
            "false",
            "'pro'",
            "''",
            "signals.nps",
            "signals['csat']",
            "signals.seats_used",
            "('nps' in signals)",
            "('csat' not in signals)",
            "customer.seats",
            "customer.mrr",
            "customer.plan",
            "customer.last_touch_on",
            "days_since_touch",
            "days_since_reply",
            "overdue_tasks",
            "days_stagnant",
            "days_in_stage",
            "today",
            'signal_avg("logins", 28)',
            "signal_sum('tickets', 30)",
            "signal_change('logins', days_in_stage)",
        ]
    ),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.tuples(pair, st.sampled_from(["+", "-", "*", "/", "//", "%"])).map(
            lambda t: f"({t[0][0]} {t[1]} {t[0][1]})"
        ),
        st.tuples(pair, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in"])).map(
            lambda t: f"({t[0][0]} {t[1]} {t[0][1]})"
        ),
        st.tuples(pair, st.sampled_from(["and", "or"])).map(
            lambda t: f"({t[0][0]} {t[1]} {t[0][1]})"
        ),
        children.map(lambda c: f"(not {c})"),
        children.map(lambda c: f"(-{c})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(children, st.integers(0, 3)).map(lambda t: f"({t[0]} ** {t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} < {t[1]} <= {t[2]})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _combine, max_leaves=8)
MAYBE_NUMBER = st.one_of(st.none(), NUMBERS)
DAY = st.one_of(st.none(), st.sampled_from(["2026-01-05", "2026-03-01", "2026-03-02"]))


@st.composite
def values(draw: st.DrawFn) -> dict[str, Any]:
    """A customer's values as the compiled model reads them."""
    metrics = draw(st.dictionaries(st.sampled_from(["nps", "csat", "seats_used"]), NUMBERS))
    windows = draw(st.dictionaries(st.sampled_from(["logins", "tickets"]), NUMBERS))
    return {
        "signals": metrics,
        "customer": {
            "seats": draw(st.one_of(st.none(), st.integers(0, 20))),
            "mrr": draw(MAYBE_NUMBER),
            "plan": draw(st.one_of(st.none(), st.sampled_from(["pro", ""]))),
            "last_touch_on": draw(DAY),
        },
        "days_since_touch": draw(st.one_of(st.none(), st.integers(0, 90))),
        "days_since_reply": draw(st.one_of(st.none(), st.integers(0, 90))),
        "overdue_tasks": draw(st.integers(0, 4)),
        "days_stagnant": draw(st.integers(0, 20)),
        "days_in_stage": draw(st.one_of(st.none(), st.integers(0, 60))),
        "today": "2026-03-02",
        "signal_avg": lambda metric, days: windows.get(metric),
        "signal_sum": lambda metric, days: windows.get(metric),
        "signal_change": lambda metric, days: None if days is None else windows.get(metric),
    }


def as_context(values: dict[str, Any]) -> dict[str, Any]:
    """The same values as health_context holds them: signals and the customer lazily."""
    context = dict(values)
    context["signals"] = Lazy(dict(values["signals"]), dict, "signals")
    context["customer"] = Lazy(dict(values["customer"]), dict, "customer")
    return context


def sandboxed(expression: str, values: dict[str, Any]) -> tuple[Any, Any]:
    """What scoring makes of ``expression`` in the sandbox: its value as a measure, and
    whether it holds as an opportunity's condition (or the failure that escapes)."""
    evaluate = Evaluator(as_context(values))
    try:
        measured = _measure(Measure("m", "M", expression, 1, 1, 0), evaluate)
    except Exception as exc:  # noqa: BLE001 (a failure that escapes must escape both)
        measured = type(exc)
    try:
        held = _holds(Opportunity("o", "O", expression), evaluate)
    except Exception as exc:  # noqa: BLE001
        held = type(exc)
    return measured, held


def compiled(expression: str, values: dict[str, Any]) -> tuple[Any, Any]:
    code = compile_model(model_of(expression, when=expression))
    assert code is not None, expression
    try:
        found, held = code.evaluate(values)
    except Exception as exc:  # noqa: BLE001
        return type(exc), type(exc)
    return _number(found[0]), held[0]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, values())
def test_a_compiled_expression_scores_what_the_sandbox_scores(expression, given_values):
    assert compiled(expression, given_values) == sandboxed(expression, given_values), expression


def test_a_missing_signal_leaves_the_measure_out_and_the_opportunity_closed():
    values = {"signals": {"csat": 4.0}}
    assert compiled("signals.nps * 2", values) == (None, False)
    assert compiled("signals.csat * 2", values) == (8.0, True)
    assert compiled("'nps' in signals", values) == (None, False)  # a bool is no measure
