"""The one Jinja environment: sandboxed, undefined variables are errors.

Email templates and playbook conditions (``when``, ``drop_if``) both use it, so
a consultant learns one language and neither can reach Python internals.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing
from markupsafe import Markup, escape


def _printable(value: Any) -> Any:
    """An empty value (a customer without a company, say) never prints as "None"."""
    if value is None:
        raise UndefinedError(
            "a value printed here is empty for this customer; give it a fallback with "
            '| default("...", true) or print it inside {% if ... %}'
        )
    return value


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_printable,
    )


def check_expression(expression: str) -> str | None:
    """None when ``expression`` compiles, else the reason it does not."""
    try:
        environment().compile_expression(expression)
    except TemplateSyntaxError as exc:
        return exc.message or "invalid expression"
    return None


@lru_cache(maxsize=256)
def undeclared_names(expression: str) -> frozenset[str]:
    """The top-level names an expression reads from its context (worked out once per
    expression: the engine asks for every condition it evaluates)."""
    from jinja2 import meta

    return frozenset(
        meta.find_undeclared_variables(environment().parse("{{ (" + expression + ") }}"))
    )


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return environment().compile_expression(expression, undefined_to_none=False)


@lru_cache(maxsize=256)
def template(source: str) -> Any:
    """A compiled template for ``source`` (compiled once per process)."""
    return environment().from_string(source)


# Python-Markdown's escapable characters, less '>' (escaped as HTML anyway).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!])")


def _markdown_literal(value: Any) -> Any:
    """Data printed into a Markdown body stays text: no HTML, no links, no images."""
    _printable(value)
    if hasattr(value, "__html__"):
        return value
    return Markup(escape(_MARKDOWN_SPECIAL.sub(r"\\\1", str(value))))


@lru_cache(maxsize=1)
def _markdown_overlay() -> SandboxedEnvironment:
    # An overlay shares the environment's sandbox, filters and settings; only printing differs.
    return environment().overlay(autoescape=True, finalize=_markdown_literal)


class UnsafeAddress(TemplateError):
    """A data value that would add or change an address: a problem of that customer's data,
    not of the template (the email fails; others of the template still go)."""


def _address_part(value: Any) -> Any:
    """A value printed into an address header must not be able to add an address."""
    text = str(_printable(value))
    if any(c in text for c in '<>,;"\r\n') or "=?" in text:
        raise UnsafeAddress(
            f'{text!r} cannot go into an address header: it holds one of < > , ; " =? '
            "or a line break"
        )
    return value


@lru_cache(maxsize=1)
def _address_overlay() -> SandboxedEnvironment:
    return environment().overlay(finalize=_address_part)


@lru_cache(maxsize=256)
def address_template(source: str) -> Any:
    """``source`` (a To:, Cc:... line) compiled so that data cannot add recipients."""
    return _address_overlay().from_string(source)


@lru_cache(maxsize=256)
def markdown_template(source: str) -> Any:
    """``source`` compiled to render Markdown whose printed values are literal text."""
    return _markdown_overlay().from_string(source)


_PATH = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*$")
_LITERALS = {"true", "false", "none", "True", "False", "None"}


@lru_cache(maxsize=256)
def _path(expression: str) -> tuple[str, ...] | None:
    """The parts of a plain dotted name such as ``signals.nps``; None for anything else."""
    match = _PATH.match(expression)
    if not match or match.group(1) in _LITERALS:
        return None
    return tuple(match.group(1).split("."))


_SANDBOX = object()  # a plain name that reaches an object: the sandbox decides


def _lookup(parts: tuple[str, ...], context: Mapping[str, Any]) -> Any:
    """A dotted name through mappings, as Jinja would read it; _SANDBOX when an object
    is in the way."""
    value: Any = context
    for index, part in enumerate(parts):
        # a dict is a Mapping: spare the slower abstract check for the common case
        if type(value) is not dict and not isinstance(value, Mapping):
            return _SANDBOX
        if part not in value:
            if index == len(parts) - 1:  # like Jinja: undefined, an error once used
                return environment().undefined(name=part)
            raise UndefinedError(f"{parts[index]!r} is undefined")
        value = value[part]
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a condition over ``context``; raises jinja2.TemplateError when it fails.

    A plain dotted name through mappings (``signals.nps``, ``overdue_tasks``) is looked
    up directly, with the same result and the same UndefinedError as the sandbox would
    give: health scoring evaluates such names for every customer, and a full template
    context per lookup costs ten times more.
    """
    parts = _path(expression)
    if parts is not None:
        value = _lookup(parts, context)
        if value is not _SANDBOX:
            return value
    return _compiled(expression)(**context)


class Evaluator:
    """Many expressions over one context, as :func:`evaluate` gives them, sharing one
    Jinja context.

    Jinja makes a new context (a copy of every name, plus its globals) for each
    evaluation; health scoring evaluates every measure and opportunity of a model for
    every customer, so it builds the customer's context once and runs each compiled
    expression in it. An expression only writes its ``result`` into the context's own
    variables, which are cleared before each one: no expression sees another's.
    """

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self._jinja: Any = None
        self._globals: dict[str, Any] = {}

    def reset(self, context: Mapping[str, Any]) -> None:
        """Evaluate over ``context`` from now on (the next customer of many). The Jinja
        context already made is kept, its names replaced as Template.new_context would
        set them: making a new one costs more than evaluating most expressions."""
        self.context = context
        if self._jinja is not None:
            self._jinja.parent = dict(self._globals, **context)

    def __call__(self, expression: str, *, hiding: Collection[str] = ()) -> Any:
        """The value of ``expression``; with ``hiding``, as if those names were not in
        the context (undefined: an error once used)."""
        parts = _path(expression)
        if parts is not None:
            if parts[0] in hiding:
                return _lookup(parts, {})
            value = _lookup(parts, self.context)
            if value is not _SANDBOX:
                return value
        template = _compiled(expression)._template
        if self._jinja is None:
            self._globals = dict(template.globals)
            self._jinja = template.new_context(dict(self.context))
        else:
            self._jinja.vars.clear()
        # a name bound to ``missing`` in the context's own variables resolves as undefined
        self._jinja.vars.update(dict.fromkeys(hiding, missing))
        for _ in template.root_render_func(self._jinja):
            pass
        return self._jinja.vars["result"]


__all__ = [
    "Evaluator",
    "TemplateError",
    "UnsafeAddress",
    "check_expression",
    "environment",
    "evaluate",
    "markdown_template",
    "template",
]
