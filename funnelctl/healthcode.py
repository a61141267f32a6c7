"""A health model's expressions as one plain Python function, for scoring a whole book.

The sandbox evaluates an expression in a Jinja context made for it, with every name
looked up through Jinja's machinery; over a book of 100,000 customers and nine
expressions each, that machinery is most of the time a score takes. The expressions a
health model is written in (a signal, a day count, one of the customer's columns,
arithmetic, comparisons, ``and``/``or``/``not``, ``x if c else y``, the ``signal_*``
functions) are compiled here once into a Python function over a plain mapping of the
values the customer's context would hold. Jinja compiles those same nodes to the same
Python operators, so it gives what the sandbox gives; a name or key that is not there
fails the expression, as the sandbox's undefined does once used.

A model with anything else (a filter, a test, a method call, a list) is not compiled
(:func:`compile_model` gives None) and the sandbox scores it, as it always has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, nodes

from .context import Lazy
from .playbooks import HealthModel
from .sandbox import environment
from .store import customers

# Names whose value is a number, a date or None in every customer's context.
PLAIN_NAMES = frozenset(
    (
        "days_since_touch",
        "days_since_reply",
        "overdue_tasks",
        "days_stagnant",
        "days_since_signed",
        "days_in_stage",
        "today",
    )
)
SIGNAL_FUNCTIONS = frozenset(
    ("signal_sum", "signal_avg", "signal_min", "signal_max", "signal_change")
)
# customer.<key> as the context holds it: a column of the row as stored (tags and fields
# are decoded), or a date of its touchpoints (context.customer_context)
CUSTOMER_COLUMNS = ("id", *(c for c in customers.COLUMNS if c not in ("tags", "fields")))
CUSTOMER_TOUCHES = ("last_touch_on", "last_reply_on")
# A key that is also an attribute of the mapping (signals.items, customer.get) reaches
# the attribute in Jinja, not the value: such a use is left to the sandbox.
_ATTRIBUTES = frozenset(dir(Lazy)) | frozenset(dir(dict))
_BINARY = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
}
_COMPARE = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "lteq": "<=",
    "gt": ">",
    "gteq": ">=",
    "in": "in",
    "notin": "not in",
}


class _Unsupported(Exception):
    """A node this module does not compile."""


@dataclass(frozen=True)
class CompiledModel:
    """The model's expressions as one function of a customer's values, and what those
    values must hold."""

    evaluate: Callable[[Mapping[str, Any]], tuple[tuple[Any, ...], tuple[bool, ...]]]
    names: frozenset[str]  # top-level names read: PLAIN_NAMES, signals, customer, signal_*
    customer_keys: frozenset[str]  # customer.<key> read
    reads_touches: bool  # whether a value read comes from the customer's touchpoints


# What makes a measure's value missing and an opportunity's condition false, as scoring
# catches them from the sandbox (KeyError: a key the values do not have, undefined there).
FAILURES = (KeyError, TemplateError, TypeError, ZeroDivisionError, ValueError)


def compile_model(
    model: HealthModel, *, number: Callable[[Any], Any] = lambda value: value
) -> CompiledModel | None:
    """The model compiled, or None when one of its expressions uses something else.

    ``evaluate(values)`` gives each measure's value as ``number`` makes it (None where
    its expression fails) and whether each opportunity's condition holds (False where it
    fails), in the model's order."""
    reads = _Reads()
    try:
        measures = [_source(m.value, reads) for m in model.measures]
        conditions = [_source(o.when, reads) for o in model.opportunities]
    except _Unsupported:
        return None
    lines = ["def evaluate(n):"]
    for i, source in enumerate(measures):
        lines += [f"    try: m{i} = number({source})", f"    except FAILURES: m{i} = None"]
    for i, source in enumerate(conditions):
        lines += [f"    try: o{i} = bool({source})", f"    except FAILURES: o{i} = False"]
    found = ", ".join(f"m{i}" for i in range(len(measures)))
    held = ", ".join(f"o{i}" for i in range(len(conditions)))
    lines.append(
        f"    return ({found}{',' if measures else ''}), ({held}{',' if conditions else ''})"
    )
    namespace: dict[str, Any] = {
        "__builtins__": {"bool": bool},
        "FAILURES": FAILURES,
        "number": number,
    }
    exec(compile("\n".join(lines), "<health model>", "exec"), namespace)  # noqa: S102 (our source)
    touches = {"days_since_touch", "days_since_reply"} & reads.names
    return CompiledModel(
        namespace["evaluate"],
        frozenset(reads.names),
        frozenset(reads.customer_keys),
        bool(touches or reads.customer_keys.intersection(CUSTOMER_TOUCHES)),
    )


def _source(expression: str, reads: _Reads) -> str:
    try:
        tree = environment().parse("{{ (" + expression + ") }}")
    except TemplateSyntaxError:
        raise _Unsupported from None
    return _python(_only_expression(tree), reads)


class _Reads:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.customer_keys: set[str] = set()


def _only_expression(tree: nodes.Template) -> nodes.Expr:
    """The one expression of ``{{ (expression) }}``."""
    [output] = tree.body
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        raise _Unsupported
    [node] = output.nodes
    if not isinstance(node, nodes.Expr) or isinstance(node, nodes.TemplateData):
        raise _Unsupported
    return node


def _python(node: nodes.Node, reads: _Reads) -> str:
    """The Python source of ``node``, over the mapping ``n`` of a customer's values."""
    if isinstance(node, nodes.Const):
        if node.value is None or type(node.value) in (bool, int, float, str):
            return f"({node.value!r})"
        raise _Unsupported
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in PLAIN_NAMES:
        reads.names.add(node.name)
        return f"n[{node.name!r}]"
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return _lookup(node, reads)
    if isinstance(node, nodes.Compare):
        return _compare(node, reads)
    if isinstance(node, nodes.And):
        return f"({_python(node.left, reads)} and {_python(node.right, reads)})"
    if isinstance(node, nodes.Or):
        return f"({_python(node.left, reads)} or {_python(node.right, reads)})"
    if isinstance(node, nodes.Not):
        return f"(not {_python(node.node, reads)})"
    if isinstance(node, nodes.Neg):
        return f"(-{_python(node.node, reads)})"
    if isinstance(node, nodes.Pos):
        return f"(+{_python(node.node, reads)})"
    if type(node) in _BINARY:
        assert isinstance(node, nodes.BinExpr)
        left, right = _python(node.left, reads), _python(node.right, reads)
        return f"({left} {_BINARY[type(node)]} {right})"
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        test, yes, no = (_python(n, reads) for n in (node.test, node.expr1, node.expr2))
        return f"({yes} if {test} else {no})"
    if isinstance(node, nodes.Call):
        return _call(node, reads)
    raise _Unsupported


def _key(node: nodes.Getattr | nodes.Getitem) -> str:
    if isinstance(node, nodes.Getattr):
        key = node.attr
    elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        key = node.arg.value
    else:
        raise _Unsupported
    if key in _ATTRIBUTES or key.startswith("_"):
        raise _Unsupported
    return key


def _lookup(node: nodes.Getattr | nodes.Getitem, reads: _Reads) -> str:
    """``signals.<metric>`` (or ``signals['metric']``) and ``customer.<key>``."""
    target, key = node.node, _key(node)
    if not isinstance(target, nodes.Name) or target.ctx != "load":
        raise _Unsupported
    if target.name == "signals":
        reads.names.add("signals")
        return f"n['signals'][{key!r}]"
    if target.name == "customer" and key in CUSTOMER_COLUMNS + CUSTOMER_TOUCHES:
        reads.names.add("customer")
        reads.customer_keys.add(key)
        return f"n['customer'][{key!r}]"
    raise _Unsupported


def _compare(node: nodes.Compare, reads: _Reads) -> str:
    """A chain of comparisons, as Python chains them; ``'metric' in signals`` too."""
    parts = [_python(node.expr, reads)]
    for operand in node.ops:
        if operand.op not in _COMPARE:
            raise _Unsupported
        right = operand.expr
        if isinstance(right, nodes.Name) and right.name == "signals" and right.ctx == "load":
            reads.names.add("signals")
            parts += [_COMPARE[operand.op], "n['signals']"]
        else:
            parts += [_COMPARE[operand.op], _python(right, reads)]
    return "(" + " ".join(parts) + ")"


def _call(node: nodes.Call, reads: _Reads) -> str:
    """``signal_avg("logins", 28)`` and the other signal functions, positional only."""
    function = node.node
    if (
        not isinstance(function, nodes.Name)
        or function.name not in SIGNAL_FUNCTIONS
        or node.kwargs
        or node.dyn_args is not None
        or node.dyn_kwargs is not None
    ):
        raise _Unsupported
    reads.names.add(function.name)
    arguments = ", ".join(_python(argument, reads) for argument in node.args)
    return f"n[{function.name!r}]({arguments})"
