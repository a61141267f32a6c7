"""The one Jinja environment: sandboxed, undefined variables are errors.

Email templates and playbook conditions (``when``, ``drop_if``) both use it, so
a consultant learns one language and neither can reach Python internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def check_expression(expression: str) -> str | None:
    """None when ``expression`` compiles, else the reason it does not."""
    try:
        environment().compile_expression(expression)
    except TemplateSyntaxError as exc:
        return exc.message or "invalid expression"
    return None


@lru_cache(maxsize=256)
def _compiled(expression: str) -> Any:
    return environment().compile_expression(expression, undefined_to_none=False)


@lru_cache(maxsize=256)
def template(source: str) -> Any:
    """A compiled template for ``source`` (compiled once per process)."""
    return environment().from_string(source)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """The value of a condition over ``context``; raises jinja2.TemplateError when it fails."""
    return _compiled(expression)(**context)


__all__ = ["TemplateError", "check_expression", "environment", "evaluate", "template"]
