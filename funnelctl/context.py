"""The context that playbook conditions and email templates both see.

One builder, so a variable that works in a ``when:`` works in a template too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from functools import lru_cache
from typing import Any

from .customers import first_name
from .dates import days_since
from .playbooks import Funnel, Stage
from .store import Store, enrollments, touchpoints
from .store import health as signals
from .store.customers import Customer
from .store.enrollments import Enrollment
from .workspace import Member, Settings


class Lazy(Mapping[str, Any]):
    """A mapping whose costly part is read from the database only when first asked for.

    Conditions are evaluated for every entry action of every imported customer; most
    never look at touchpoints or signals, so those queries wait until one does.
    """

    def __init__(
        self, ready: dict[str, Any], later: Callable[[], dict[str, Any]], name: str = "mapping"
    ) -> None:
        self._ready = ready
        self._later: Callable[[], dict[str, Any]] | None = later
        self._name = name

    def __repr__(self) -> str:  # what an "undefined attribute" message names
        return f"'{self._name}'"

    def _load(self) -> None:
        if self._later is not None:
            later, self._later = self._later, None
            self._ready = {**self._ready, **later()}

    def __getitem__(self, key: str) -> Any:
        if key not in self._ready:
            self._load()
        return self._ready[key]

    def __contains__(self, key: object) -> bool:  # Mapping's, without a KeyError per miss
        if key not in self._ready:
            self._load()
        return key in self._ready

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(self._ready)

    def __len__(self) -> int:
        self._load()
        return len(self._ready)


def customer_context(
    store: Store,
    customer: Customer,
    since: str | None,
    today: str | None = None,
    known_touches: tuple[str | None, str | None] | None = None,
) -> Mapping[str, Any]:
    """The customer as templates see it, with ``replied``: an inbound touchpoint since ``since``.

    Touchpoints after ``today`` are not seen, so a replayed day sees that day's world.
    ``known_touches`` (last touchpoint, last inbound one) spares the query when a caller
    has already read them for many customers at once.
    """

    def touches() -> dict[str, Any]:
        last_on, inbound = (
            known_touches
            if known_touches is not None
            else touchpoints.last_touches(store, customer.id, today)
        )
        return {
            "replied": bool(inbound and (since is None or inbound >= since)),
            "last_touch_on": last_on,
            "last_reply_on": inbound,
        }

    return Lazy(
        {
            "id": customer.id,
            "email": customer.email,
            "external_id": customer.external_id,
            "name": customer.name,
            "first_name": first_name(customer.name or "") or None,  # never prints as blank
            "company": customer.company,
            "phone": customer.phone,
            "owner": customer.owner,
            "plan": customer.plan,
            "mrr": customer.mrr,
            "seats": customer.seats,
            "signed_on": customer.signed_on,
            "language": customer.language,
            "tags": list(customer.tags),
            "fields": dict(customer.fields),
        },
        touches,
    )


@lru_cache(maxsize=8)
def _sender(sender: str) -> tuple[str, str]:
    from email.utils import parseaddr  # slow to import, and to run: the sender never changes

    return parseaddr(sender)


def owner_of(customer: Customer, enrollment: Enrollment | None) -> str | None:
    """The id of whoever is responsible: the enrollment's owner, else the customer's."""
    return (enrollment.owner if enrollment else None) or customer.owner


def sender_of(settings: Settings, speaker: Member | None) -> dict[str, Any]:
    """The ``sender`` a template sees: the member who speaks, else the workspace sender."""
    if speaker is not None:
        return {
            "name": speaker.display_name,
            "email": speaker.email,
            "signature": speaker.signature,
        }
    name, email = _sender(settings.sender)
    return {"name": name or email, "email": email, "signature": settings.signature}


def build_context(
    store: Store,
    settings: Settings,
    customer: Customer,
    today: str,
    *,
    funnel: Funnel | None = None,
    stage: Stage | None = None,
    enrollment: Enrollment | None = None,
    known_signals: dict[str, float] | None = None,
    known_touches: tuple[str | None, str | None] | None = None,
    names: Collection[str] | None = None,
) -> dict[str, Any]:
    """The context of one customer; ``known_*`` are values already read in bulk.

    ``names``: only these top-level names, for a caller that knows every expression it
    will evaluate (health scoring a whole book); an expression sees the same values."""
    entered = enrollment.entered_on if enrollment else None
    owner = owner_of(customer, enrollment)
    context: dict[str, Any] = {}
    if names is None or "customer" in names:
        context["customer"] = customer_context(store, customer, entered, today, known_touches)
    if names is None or "owner" in names:
        member = settings.person(owner)
        # the owner's display name; customer.owner stays the id
        context["owner"] = member.display_name if member else owner
    if names is None or "sender" in names:
        context["sender"] = sender_of(settings, settings.speaker(owner))
    if names is None or "funnel" in names:
        context["funnel"] = {"id": funnel.id, "title": funnel.title} if funnel else None
    if names is None or "stage" in names:
        context["stage"] = {"id": stage.id, "title": stage.title} if stage else None
    if names is None or "days_in_stage" in names:
        context["days_in_stage"] = days_since(entered, today)
    if names is None or "days_since_signed" in names:
        context["days_since_signed"] = days_since(customer.signed_on, today)
    if names is None or "signals" in names:
        context["signals"] = (
            Lazy(known_signals, dict, "signals")
            if known_signals is not None
            else Lazy({}, lambda: signals.latest(store, customer.id, today), "signals")
        )
    if names is None or "health" in names:
        # the latest health result `run` kept: {score, at_risk}
        context["health"] = Lazy({}, lambda: signals.verdict(store, customer.id, today), "health")
    if names is None or "today" in names:
        context["today"] = today
    return context


def context_for(
    store: Store,
    library: Any,
    settings: Settings,
    customer: Customer,
    today: str,
    *,
    enrollment_id: int | None = None,
    visit_id: int | None = None,
) -> dict[str, Any]:
    """The context for an enrollment's stage visit (an email's own visit when given)."""
    return message_context(
        store,
        library,
        settings,
        customer,
        today,
        enrollment_id=enrollment_id,
        visit_id=visit_id,
    )[0]


def message_context(
    store: Store,
    library: Any,
    settings: Settings,
    customer: Customer,
    today: str,
    *,
    enrollment_id: int | None = None,
    visit_id: int | None = None,
) -> tuple[dict[str, Any], Member | None]:
    """:func:`context_for`, and who speaks in an email made with it: the owner when they
    are a team member with an email address, else None (the workspace sender)."""
    enrollment = enrollments.get(store, enrollment_id) if enrollment_id else None
    stage_id = enrollment.stage if enrollment else None
    if visit_id:
        stage_id = enrollments.stage_of_visit(store, visit_id) or stage_id
    funnel = library.funnels.get(enrollment.funnel) if enrollment else None
    stage = next((s for s in funnel.stages if s.id == stage_id), None) if funnel else None
    context = build_context(
        store, settings, customer, today, funnel=funnel, stage=stage, enrollment=enrollment
    )
    return context, settings.speaker(owner_of(customer, enrollment))
