"""CSV in: the customer import (all or nothing, streamed), signals and tickets.

The import reads the file once, row by row, inside one write transaction.
Every row is checked; if any is bad the transaction is rolled back and every
bad row is reported with its line in the file (the header is line 1), unless
``skip_bad`` names a file to receive the rejected rows. Memory stays flat: the
keys already seen in the file live in a temporary SQLite table, not in Python.

Customers are imported in bulk (``bulkimport.py``) whenever the file allows it, with
exactly the same results; the row-by-row import here is the reference, and what the
bulk import falls back to (its docstring says when).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .csvfile import open_csv
from .customers import FIELDS, Cleaner, changes_for, split_name
from .errors import NotFound, UsageError, ValidationError
from .outfiles import PendingFile
from .output import FORMULA_START
from .playbooks import Funnel, Library
from .sheets import Table, open_table
from .store import Store, customers, enrollments, events, imports, touchpoints
from .store import health as signals
from .store.customers import Customer
from .workspace import Settings

if TYPE_CHECKING:  # the engine is imported when a row is enrolled, not at startup
    from . import engine

MAX_LISTED = 20
REASON_COLUMN = "funnelctl_reason"
BY = "import"  # who the stage history says made an imported enrollment
PLACEMENT = ("funnel", "stage", "entered_on")
IMPORT_FIELDS = (*FIELDS, "first_name", "last_name", *PLACEMENT)
IDENTIFIERS = ("email", "external_id")
# A cell our CSV export neutralised ('=SUM(..), '+351 ...): the import takes the ' off again,
# so that an export loads back unchanged.
_NEUTRALISED = re.compile("'+[" + re.escape("".join(FORMULA_START)) + "]")
# Custom fields keep line breaks and tabs (a quoted CSV value may hold several lines);
# other control characters, C1 ones and text-direction controls are refused, as in a name.
_FIELD_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ImportOptions:
    key: str = "email"
    mapping: Mapping[str, str] = field(default_factory=dict)
    funnel: str | None = None
    stage: str | None = None
    dry_run: bool = False
    run_actions: bool = True
    encoding: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    skip_bad: Path | None = None
    decimal: str | None = None  # the decimal mark of amounts; default: by the delimiter
    sheet: str | None = None  # the sheet of an .xlsx workbook (default: the first)
    # The set-based import (bulkimport.py) when the file allows it; False: row by row.
    set_based: bool = True


# -- the row loop every import shares --------------------------------------------------


class RowError(Exception):
    """One row is bad; the message says why."""


@dataclass
class BadRows:
    """The rows an import rejected: how many, and the first MAX_LISTED with their lines."""

    count: int = 0
    listed: list[tuple[int, str]] = field(default_factory=list)
    footer: tuple[int, int] | None = None  # first and last line of a report's footer

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append((line, reason))

    def located(self, path: Path | str) -> list[str]:
        """The listed rows as ``file:line: reason``."""
        return [f"{path}:{line}: {reason}" for line, reason in self.listed]

    def raise_if_any(self, path: Path | str, outcome: str, *, count_unlisted: bool = True) -> None:
        """All or nothing: a bad row fails the whole import, every listed row shown.

        ``outcome`` says what that means for the user ("no signal was imported");
        ``count_unlisted`` adds a last line for the rows past MAX_LISTED.
        """
        if not self.count:
            return
        details = self.located(path)
        if count_unlisted and self.count > len(self.listed):
            details.append(f"… and {self.count - len(self.listed)} more bad row(s)")
        raise ValidationError(f"{path}: {self.count} bad row(s); {outcome}", details)


def each_row(
    csvfile: Table,
    handle: Callable[[int, list[str]], None],
    *,
    on_row: Callable[[int], None] | None = None,
    on_bad: Callable[[list[str], str], None] | None = None,
) -> BadRows:
    """Give ``handle`` each row that is not blank, with the line it starts on.

    A row whose width is not the header's, or for which ``handle`` raises RowError, is
    collected as a bad row (and passed to ``on_bad`` with the reason); the loop goes on,
    so that one run reports every bad row. ``on_row`` hears the count of rows read.
    """
    bad = BadRows()
    width = len(csvfile.header)
    footer_at: int | None = None
    for count, (line, cells) in enumerate(csvfile.rows(), start=1):
        if on_row is not None:
            on_row(count)
        if not "".join(cells).strip():  # blank: every cell empty or spaces
            continue
        if footer_at is None and _starts_footer(cells):
            footer_at = line
        try:
            if footer_at is not None:
                filled = sum(1 for c in cells if c.strip())
                if filled > 1 and not _starts_footer(cells):
                    raise RowError(
                        f"a row after the report's footer (which starts on line {footer_at}); "
                        "delete the footer or move the row above it"
                    )
                bad.footer = (footer_at, line)
                continue
            if len(cells) != width:
                raise RowError(f"{len(cells)} values but the header has {width} columns")
            handle(line, cells)
        except RowError as exc:
            bad.add(line, str(exc))
            if on_bad is not None:
                on_bad(cells, str(exc))
    return bad


# The rows a report (a Salesforce report exported as CSV) ends with, after its data.
_FOOTER = re.compile(
    r"^(?:grand\s+totals?|totals?|copyright|\(c\)|©|confidential information|generated by)\b",
    re.IGNORECASE,
)
_TOTAL = re.compile(r"^[\d\s.,'()$€£+-]*$")


def _starts_footer(cells: Sequence[str]) -> bool:
    """A footer row: its first cell says Total, Copyright, Generated By… and any other
    value is a number (a total)."""
    first = cells[0].strip() if cells else ""
    return bool(_FOOTER.match(first)) and all(_TOTAL.match(c.strip()) for c in cells[1:])


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


@contextmanager
def _all_or_nothing(store: Store, dry_run: bool) -> Iterator[None]:
    """The import's one write transaction; a dry run does everything, then rolls it back."""
    try:
        with store.write():
            yield
            if dry_run:
                raise _DryRun()
    except _DryRun:
        pass


# -- customers ----------------------------------------------------------------------------


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    enrolled: int = 0
    without_email: int = 0  # rows whose customer has no email: they can never be emailed
    bad: BadRows = field(default_factory=BadRows)
    set_based: bool = False  # imported in bulk (bulkimport.py), not row by row
    # the columns kept as custom fields (the import says so: a client's export in another
    # language, Nome and Empresa, is not funnelctl's name and company)
    custom_columns: list[str] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What the user should know besides the counts."""
        notes = []
        if self.bad.footer is not None:
            first, last = self.bad.footer
            where = f"line {first}" if first == last else f"lines {first}-{last}"
            notes.append(
                f"Skipped the report's footer (Total, Copyright, Generated By…) on {where}."
            )
        if self.without_email:
            notes.append(
                f"{self.without_email} customer(s) have no email address: "
                "no email can be sent to them until one is added."
            )
        return notes

    @property
    def rejected(self) -> int:
        return self.bad.count

    def summary(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "enrolled": self.enrolled,
            "without_email": self.without_email,
        }


def decimal_mark(delimiter: str) -> str:
    """The decimal mark a file's amounts are read with when --decimal is not given:
    a comma in ``;``-separated files (as European spreadsheets write them), else a point."""
    return "," if delimiter == ";" else "."


def _engine() -> Any:
    from . import engine

    return engine


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise UsageError(f"--map {pair!r} must be written as 'CSV column=field'")
        mapping[source.strip()] = target.strip()
    return mapping


def _restore(raw: str) -> str:
    """Undo the export's formula neutralising: ``'=SUM(A1)`` is ``=SUM(A1)``."""
    value = raw.strip()
    return value[1:] if _NEUTRALISED.match(value) else raw


def _guarded(cell: str) -> str:
    """A cell as read, written for a spreadsheet (the rejects file): a bare formula gets
    the ' that :func:`_restore` takes off again; any other cell, one already quoted too,
    as it is, so that the fixed file imports as the original would."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _same(column: str, stored: str | None, value: str) -> bool:
    if stored is None:
        return False
    return stored.lower() == value.lower() if column == "email" else stored == value


def _normal(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


# Header names that exports use for our fields (HubSpot, Pipedrive, Salesforce reports,
# Google Contacts, Excel), compared as _header_key writes them; the first listed wins
# when a file has several. They claim a field only when no column is named after it.
ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "emailaddress",
        "email1value",
        "personemailwork",
        "personemail",
        "workemail",
        "emailwork",
        "primaryemail",
        "contactemail",
        "email1",
    ),
    "name": ("fullname", "personname", "contactname", "displayname"),
    "first_name": ("givenname", "personfirstname"),
    "last_name": ("familyname", "surname", "personlastname"),
    "company": (
        "companyname",
        "organization",
        "organizationname",
        "personorganization",
        "organization1name",
        "organisation",
        "organisationname",
        "accountname",
        "associatedcompany",
    ),
    "phone": (
        "phonenumber",
        "phone1value",
        "personphonework",
        "personphone",
        "workphone",
        "businessphone",
        "telephone",
    ),
    "owner": ("contactowner", "personowner", "accountowner", "recordowner"),
    "external_id": ("recordid", "contactid", "personid"),
    "mrr": ("monthlyrecurringrevenue",),
    "language": ("preferredlanguage",),
}
UNNAMED = ""  # the target of a column without a name: ignored while its cells are empty
_CUSTOM, _AS_IS = object(), object()  # how row_values takes a custom field, a placement


def _header_key(name: str) -> str:
    """A header name without case, spaces, dashes or underscores: ``E-mail 1 - Value``,
    ``email_1_value`` and ``Email1Value`` are all ``email1value``."""
    return re.sub(r"[\W_]+", "", name.lower())


_FIELD_KEYS = {_header_key(f): f for f in IMPORT_FIELDS}


def _targets(header: Sequence[str], mapping: Mapping[str, str]) -> list[str | None]:
    """Each column's target: by --map, by its name, by an export's name, else custom."""
    targets: list[str | None] = []
    for column in header:
        if not column:
            targets.append(UNNAMED)
        elif column == REASON_COLUMN:
            targets.append(None)
        elif column in mapping:
            mapped = mapping[column]
            targets.append(
                _normal(mapped) if _normal(mapped) in IMPORT_FIELDS else f"fields.{mapped}"
            )
        else:
            targets.append(_FIELD_KEYS.get(_header_key(column)))
    claimed = {t for t in targets if t}
    for target, aliases in ALIASES.items():
        if target in claimed or (target in ("first_name", "last_name") and "name" in claimed):
            continue
        keys = [_header_key(c) if targets[i] is None and c else None for i, c in enumerate(header)]
        for alias in aliases:
            if alias in keys:
                targets[keys.index(alias)] = target
                claimed.add(target)
                break
    for index, column in enumerate(header):
        if targets[index] is None and column and column != REASON_COLUMN:
            targets[index] = f"fields.{column}"
    return targets


def _column_targets(csvfile: Table, options: ImportOptions, label: str) -> list[str | None]:
    """What each column feeds: a customer field, ``fields.<name>`` for a custom field,
    UNNAMED for a column without a name, or None (ignored)."""
    header = csvfile.header
    problems: list[str] = []
    missing = [source for source in options.mapping if source not in header]
    if missing:
        raise UsageError(
            f"--map names column(s) {', '.join(map(repr, missing))} that {label} does not have "
            f"(its columns: {', '.join(header)})"
        )
    targets = _targets(header, options.mapping)
    seen: dict[str, str] = {}
    for column, target in zip(header, targets, strict=True):
        if not target:
            continue
        if target in seen:
            if seen[target] == column:
                problems.append(f"column {column!r} appears twice")
            else:
                problems.append(
                    f"columns {seen[target]!r} and {column!r} both give "
                    f"{target.removeprefix('fields.')!r}"
                )
        seen[target] = column
    if options.key not in seen:
        problems.append(
            f"there is no {options.key} column (columns: {', '.join(header)}); "
            f"rename one with --map 'COLUMN={options.key}'"
        )
    if problems:
        raise ValidationError(f"{label}:1: the header is not usable: " + "; ".join(problems))
    return targets


def describe_columns(header: Sequence[str], targets: Sequence[str | None]) -> list[tuple[str, str]]:
    """(column, what it gives) for the dry run: a field, a custom field, or ignored."""
    described = []
    for number, (column, target) in enumerate(zip(header, targets, strict=True), start=1):
        if target == UNNAMED:
            described.append((f"(column {number}, no name)", "ignored while empty"))
        elif target is None:
            described.append((column, "ignored"))
        elif target.startswith("fields."):
            described.append((column, f"custom field {target.removeprefix('fields.')!r}"))
        else:
            described.append((column, target))
    return described


class _Importer:
    def __init__(
        self,
        store: Store,
        playbooks: _Lazy,
        options: ImportOptions,
        today: str,
        source: str,
        settings: Settings | None,
        table: Table | None = None,
    ) -> None:
        self.store = store
        self.playbooks = playbooks
        self.options = options
        self.today = today
        self.source = source
        self.settings = settings
        # A workbook's amounts are number cells: only a CSV's decimal mark is a guess.
        sheet = table is not None and table.decimal_known
        self.cleaner = Cleaner(
            options.date_format,
            decimal=options.decimal or decimal_mark(table.delimiter if table else ","),
            decimal_given=options.decimal is not None or sheet,
        )
        self.result = ImportResult()
        self._engine: engine.Engine | None = None
        self._plans: dict[tuple[str | None, ...], list[tuple[int, str, Any]]] = {}

    def row_values(self, targets: Sequence[str | None], cells: Sequence[str]) -> dict[str, Any]:
        plan = self._plans.get(tuple(targets))
        if plan is None:
            plan = self._plans[tuple(targets)] = self._plan(targets)
        if len(cells) != len(targets):  # each_row lets through only rows as wide as the header
            raise ValueError(f"{len(cells)} values for {len(targets)} columns")
        values: dict[str, Any] = {}
        custom: dict[str, str] = {}
        for index, target, clean in plan:
            raw = cells[index]
            stripped = raw.strip()
            if not stripped:
                continue
            if clean is None:  # UNNAMED
                raise RowError(
                    f"column {index + 1} has no name in the header but holds {stripped!r}; "
                    "name the column or delete it"
                )
            if stripped[0] == "'":  # only such a cell can be a neutralised formula
                raw = _restore(raw)
            try:
                if clean is _CUSTOM:
                    if _FIELD_CONTROL.search(raw):
                        raise ValueError(f"{target} contains a control character")
                    custom[target] = raw.strip()
                elif clean is _AS_IS:
                    values[target] = raw.strip()
                else:
                    values[target] = clean(raw)
            except ValueError as exc:
                raise RowError(str(exc)) from None
        first, last = values.pop("first_name", ""), values.pop("last_name", "")
        if "name" not in values and (first or last):
            values["name"] = split_name(first, last)
        if custom:
            values["fields"] = custom
        return values

    def _plan(self, targets: Sequence[str | None]) -> list[tuple[int, str, Any]]:
        """What row_values does with each column: (index, field or custom field's name,
        the field's cleaner, _CUSTOM, _AS_IS, or None for a column without a name)."""
        plan: list[tuple[int, str, Any]] = []
        for index, target in enumerate(targets):
            if target is None:
                continue
            if target == UNNAMED:
                plan.append((index, target, None))
            elif target.startswith("fields."):
                plan.append((index, target[len("fields.") :], _CUSTOM))
            elif target in PLACEMENT:
                plan.append((index, target, _AS_IS))
            else:
                plan.append((index, target, self.cleaner.for_field(target)))
        return plan

    def check_unique(self, line: int, targets: Sequence[str | None], cells: Sequence[str]) -> None:
        """Remember the row's email and external id; a customer already seen in the file is bad.

        Done before the row is cleaned (and outside its savepoint), so that a second row for
        the same customer is reported even when the first one is bad too.
        """
        for target, raw in zip(targets, cells, strict=True):
            if target in IDENTIFIERS:
                value = _restore(raw).strip()
                if value:
                    self.remember(target, value.lower() if target == "email" else value, line)

    def remember(self, kind: str, key: str, line: int) -> None:
        first = imports.seen_before(self.store, f"{kind}:{key}", line)
        if first is not None:
            raise RowError(f"{kind} {key!r} is already on line {first} of this file")

    def existing(self, values: Mapping[str, Any]) -> Customer | None:
        """The stored customer this row updates: by --key, else by the other identifier."""
        key_column = self.options.key
        if values.get(key_column):
            return customers.by(self.store, key_column, values[key_column])
        for column in IDENTIFIERS:
            if values.get(column):
                return customers.by(self.store, column, values[column])
        raise RowError(f"the {key_column} is empty")

    def check_identifiers(self, existing: Customer | None, values: Mapping[str, Any]) -> None:
        """An email or external id that another customer holds is a bad row, never a crash."""
        for column in IDENTIFIERS:
            value = values.get(column)
            if not value or (
                existing is not None and _same(column, getattr(existing, column), value)
            ):
                continue
            holder = customers.by(self.store, column, value)
            if holder is not None and (existing is None or holder.id != existing.id):
                raise RowError(
                    f"{column} {value!r} already belongs to customer #{holder.id} "
                    f"({_engine().customer_label(holder)})"
                )

    def placement(self, values: dict[str, Any]) -> tuple[Any, str | None, str] | None:
        funnel_id = values.pop("funnel", None) or self.options.funnel
        stage_id = values.pop("stage", None) or (
            self.options.stage if funnel_id == self.options.funnel else None
        )
        entered = values.pop("entered_on", None)
        if not funnel_id:
            if stage_id or entered:
                raise RowError("stage or entered_on is given without a funnel")
            return None
        funnels = self.playbooks.get().funnels
        funnel = funnels.get(funnel_id)
        if funnel is None:
            raise RowError(f"no funnel {funnel_id!r} (funnels: {', '.join(sorted(funnels))})")
        if stage_id:
            try:
                stage_id = funnel.stage(stage_id).id  # by id or by title, any case
            except NotFound:
                raise RowError(f"funnel {funnel_id!r} has no stage {stage_id!r}") from None
            except UsageError as exc:  # a title that several stages share
                raise RowError(exc.message) from None
        on = self.today
        if entered:
            try:
                on = self.cleaner.clean("signed_on", entered)
            except ValueError as exc:
                raise RowError(str(exc).replace("signed_on", "entered_on")) from None
            if on > self.today:
                raise RowError(f"entered_on {entered} is after today ({self.today})")
        return funnel, stage_id, on

    def check_owner(self, values: Mapping[str, Any]) -> None:
        """An owner that is not in the team of funnelctl.yaml (nor partner:ID of a partner)
        is a bad row, with a "did you mean"; without a team any name is taken."""
        owner = values.get("owner")
        if not owner or self.settings is None or not self.settings.team:
            return
        if owner in self.settings.team:
            return
        from .activities import check_owner

        try:
            check_owner(owner, self.playbooks.get(), self.settings, label="owner")
        except UsageError as exc:
            raise RowError(exc.message) from None

    def apply_row(self, line: int, values: dict[str, Any]) -> None:
        self.check_owner(values)
        existing = self.existing(values)
        self.check_identifiers(existing, values)
        place = self.placement(values)
        if existing is None:
            customer_id = customers.insert(self.store, {"name": "", **values}, self.today)
            events.add(
                self.store,
                customer_id,
                self.today,
                "customer",
                f"Imported from {self.source} line {line}",
            )
            self.result.inserted += 1
        else:
            customer_id = existing.id
            changes = changes_for(existing.as_dict(), values)
            if changes:
                customers.update(self.store, customer_id, changes, self.today)
                events.add(
                    self.store,
                    customer_id,
                    self.today,
                    "customer",
                    f"Updated from {self.source} line {line}: {', '.join(sorted(changes))}",
                )
                self.result.updated += 1
            else:
                self.result.unchanged += 1
        if not (values.get("email") or (existing is not None and existing.email)):
            self.result.without_email += 1
        if place is not None:
            funnel, stage_id, on = place
            if not enrollments.ever_in(self.store, customer_id, funnel.id):
                customer = customers.get(self.store, customer_id)
                assert customer is not None
                self.enroll(customer, funnel, stage_id, on)
                self.result.enrolled += 1

    def enroll(self, customer: Customer, funnel: Funnel, stage_id: str | None, on: str) -> None:
        """Enroll, running the stage's entry actions unless --no-actions (or no settings)."""
        note = f"imported from {self.source}"
        if self.settings is None or not self.options.run_actions:
            _engine().record_enrollment(
                self.store, customer, funnel, stage_id=stage_id, on=on, by=BY, note=note
            )
            return
        if self._engine is None:  # one engine: round-robin turns carry across the rows
            self._engine = _engine().Engine(
                self.store, self.playbooks.get(), self.settings, self.today, BY
            )
        self._engine.enroll(customer, funnel, stage_id, on=on, note=note, run_actions=True)


def import_customers(
    store: Store,
    library: Library | Callable[[], Library],
    path: Path,
    options: ImportOptions,
    today: str,
    on_row: Callable[[int], None] | None = None,
    *,
    settings: Settings | None = None,
    on_columns: Callable[[list[tuple[str, str]]], None] | None = None,
    name: str | None = None,
) -> ImportResult:
    """Upsert customers from a CSV file; see the module docstring for the guarantees.

    ``library`` may be a function that loads it: the playbooks are then read only when
    the import places customers in a funnel. Enrolling runs the stage's entry actions
    (tasks, emails, assignment) when ``settings`` (the workspace's) is given and
    ``options.run_actions`` is true; without settings an enrollment is recorded only.
    ``name`` is how messages and the timeline call the file (``<stdin>``; default: its path).
    """
    shown = name or str(path)
    if options.key not in IDENTIFIERS:
        raise UsageError("--key must be email or external_id")
    if options.stage and not options.funnel:
        raise UsageError("--stage needs --funnel")
    if options.decimal is not None and options.decimal not in (".", ","):
        raise UsageError("--decimal must be '.' or ','")
    playbooks = _Lazy(library)
    if options.funnel:
        funnel = playbooks.get().funnel(options.funnel)
        if options.stage:
            funnel.stage(options.stage)
    csvfile = open_table(
        path, options.encoding, options.delimiter, shown, options.sheet, options.decimal
    )
    rejects: _Rejects | None = None
    try:
        targets = _column_targets(csvfile, options, shown)
        if on_columns is not None:
            on_columns(describe_columns(csvfile.header, targets))
        importer = _Importer(store, playbooks, options, today, name or path.name, settings, csvfile)
        importer.result.custom_columns = [
            column
            for column, target in zip(csvfile.header, targets, strict=True)
            if target is not None and target.startswith("fields.")
        ]
        if options.skip_bad is not None:
            rejects = _Rejects(options.skip_bad, csvfile)

        with _all_or_nothing(store, options.dry_run):
            bulk, csvfile = _set_based(importer, csvfile, targets, on_row, path, shown, rejects)
            if bulk is None:
                _row_by_row(importer, csvfile, targets, on_row, rejects)
            if rejects is None:
                importer.result.bad.raise_if_any(
                    shown,
                    "nothing was imported (fix them, or pass --skip-bad FILE to import the good rows)",
                )
            elif not options.dry_run:
                # Before the commit: a rejects file that cannot be written (a full disk)
                # fails the import, which then changes nothing.
                rejects.sync()
    except BaseException:
        if rejects is not None:
            rejects.discard()
        raise
    finally:
        csvfile.close()
    if rejects is not None:
        if options.dry_run:
            rejects.discard()
        else:
            rejects.keep()
    return importer.result


def _row_by_row(
    importer: _Importer,
    csvfile: Table,
    targets: Sequence[str | None],
    on_row: Callable[[int], None] | None,
    rejects: _Rejects | None,
) -> None:
    """The reference import: each row checked and applied in its own savepoint."""
    store = importer.store

    def import_row(line: int, cells: list[str]) -> None:
        importer.check_unique(line, targets, cells)
        with store.savepoint("import_row"):
            importer.apply_row(line, importer.row_values(targets, cells))

    imports.start_seen(store)
    importer.result.bad = each_row(
        csvfile, import_row, on_row=on_row, on_bad=rejects.write if rejects else None
    )
    imports.end_seen(store)


def _set_based(
    importer: _Importer,
    csvfile: Table,
    targets: Sequence[str | None],
    on_row: Callable[[int], None] | None,
    path: Path,
    shown: str,
    rejects: _Rejects | None,
) -> tuple[ImportResult | None, Table]:
    """The set-based import (bulkimport.py); when the file needs the row import instead,
    None and the file (opened again if it was read: nothing was written). --skip-bad
    writes each bad row's cells as it is read: it always imports row by row."""
    if rejects is not None or not importer.options.set_based:
        return None, csvfile
    from .bulkimport import import_set_based

    result = import_set_based(importer, csvfile, targets, on_row)
    if result is not None:
        return result, csvfile
    csvfile.close()
    options = importer.options
    reopened = open_table(
        path, options.encoding, options.delimiter, shown, options.sheet, options.decimal
    )
    return None, reopened


class _Lazy:
    """The playbook library, loaded on first use."""

    def __init__(self, source: Library | Callable[[], Library]) -> None:
        self._source = source
        self._library = source if isinstance(source, Library) else None

    def get(self) -> Library:
        if self._library is None:
            assert not isinstance(self._source, Library)
            self._library = self._source()
        return self._library


class _Rejects:
    """The --skip-bad file: written beside its final name, moved in place only on success.

    A row keeps its cells (a short row is padded to the header) and gains the reason in a
    ``funnelctl_reason`` column; a file that already has that column (rejects being
    imported again) reuses it, so that the fixed file can be imported as it is.
    """

    def __init__(self, target: Path, table: Table) -> None:
        header = table.header
        # the form of the file read, so that fixed it imports again as it is: its encoding
        # (a BOM too: Excel needs one to read UTF-8; a workbook's rejects get one) and
        # delimiter (so its decimal mark). A reason in a legacy encoding may lose a sign.
        encoding = getattr(table, "encoding", None) or "utf-8-sig"
        self.file = PendingFile(target, encoding=encoding, errors="replace")
        self.width = len(header)
        self.reason_at = header.index(REASON_COLUMN) if REASON_COLUMN in header else None
        self.writer = csv.writer(self.file.stream, delimiter=table.delimiter, lineterminator="\n")
        self.writer.writerow(
            list(header) if self.reason_at is not None else [*header, REASON_COLUMN]
        )

    def write(self, cells: Sequence[str], reason: str) -> None:
        # a file to open in a spreadsheet and fix: a cell it would run as a formula is
        # written as export writes it (the import takes the ' off again)
        row = [_guarded(cell) for cell in cells] + [""] * (self.width - len(cells))
        if self.reason_at is not None and len(cells) <= self.width:
            row[self.reason_at] = reason
        else:
            row.append(reason)
        self.writer.writerow(row)

    def sync(self) -> None:
        self.file.sync()

    def discard(self) -> None:
        self.file.discard()

    def keep(self) -> None:
        self.file.commit()


# -- signals -------------------------------------------------------------------------------

SIGNAL_CUSTOMER = ("customer", "email", "external_id")
SIGNAL_DATE = ("date", "measured_on", "at")


def import_signals(
    store: Store,
    path: Path,
    today: str,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    date_format: str | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Signals from CSV, all or nothing.

    Long format: a customer column (customer, email or external_id), ``metric``,
    ``value`` and an optional date (date, measured_on or at; default today).
    Wide format: the customer column, the optional date, and one column per
    metric (an empty cell is no measurement).
    """
    from .dates import parse_date
    from .health import check_metric, check_range, parse_value

    csvfile = open_csv(path, encoding, delimiter)
    try:
        header = [_normal(h) for h in csvfile.header]
        who = next((c for c in SIGNAL_CUSTOMER if c in header), None)
        if who is None:
            raise ValidationError(
                f"{path}:1: the header needs a customer column (customer, email or external_id)"
            )
        when = next((c for c in SIGNAL_DATE if c in header), None)
        long = "metric" in header and "value" in header
        metrics: dict[int, str] = {}
        if not long:
            for index, name in enumerate(csvfile.header):
                if header[index] in (who, when):
                    continue
                try:
                    metrics[index] = check_metric(name)
                except ValueError as exc:
                    raise ValidationError(f"{path}:1: column {index + 1}: {exc}") from None
            if not metrics:
                raise ValidationError(f"{path}:1: no metric columns (or metric and value columns)")
        counts = {"imported": 0, "duplicates": 0}

        def record(line: int, cells: list[str]) -> None:
            row = dict(zip(header, cells, strict=True))
            ref = row[who].strip()
            try:
                customer = customers.find(store, ref)
            except NotFound:
                raise RowError(f"no customer {ref!r}") from None
            on = today
            if when and row[when].strip():
                try:
                    on = parse_date(row[when], date_format).isoformat()
                except ValueError as exc:
                    raise RowError(str(exc)) from None
                if on > today:
                    raise RowError(f"the date {on} is after today ({today})")
            pairs = (
                [(row["metric"], row["value"])]
                if long
                else [(metrics[i], cells[i]) for i in metrics if cells[i].strip()]
            )
            for metric, raw in pairs:
                try:
                    name, value = check_metric(metric), parse_value(raw)
                    check_range(name, value)
                except ValueError as exc:
                    raise RowError(str(exc)) from None
                if signals.has_signal(store, customer.id, name, on, value):
                    counts["duplicates"] += 1  # imported before: importing a file twice is harmless
                    continue
                signals.add_signal(
                    store,
                    customer_id=customer.id,
                    metric=name,
                    value=value,
                    measured_on=on,
                    source=path.name,
                    today=today,
                )
                counts["imported"] += 1

        with _all_or_nothing(store, dry_run):
            bad = each_row(csvfile, record)
            bad.raise_if_any(path, "no signal was imported")
    finally:
        csvfile.close()
    return {**counts, "rejected": bad.count}


# -- tickets -------------------------------------------------------------------------------

TICKET_COLUMNS = ("id", "customer", "opened_at", "first_response_at", "resolved_at", "csat")


def parse_moment(raw: str) -> str:
    """An ISO date or date-time, normalised (``2026-03-02`` or ``2026-03-02T09:30``)."""
    from datetime import datetime, timezone

    text = raw.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO date or date and time") from None
    if len(text) == 10:
        return moment.date().isoformat()
    if moment.tzinfo is not None:  # compare moments, not wall clocks: store them in UTC
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="minutes")


def import_tickets(
    store: Store, path: Path, today: str, *, encoding: str | None = None
) -> dict[str, int]:
    """Help-desk tickets from CSV (id, customer, opened_at, first_response_at, resolved_at,
    csat), upserted by id; all or nothing."""
    csvfile = open_csv(path, encoding)
    try:
        header = [_normal(h) for h in csvfile.header]
        missing = [c for c in ("id", "customer", "opened_at") if c not in header]
        if missing:
            raise ValidationError(
                f"{path}:1: missing column(s) {', '.join(missing)} (expected {', '.join(TICKET_COLUMNS)})"
            )
        from .health import parse_value

        counts = {"inserted": 0, "updated": 0}
        seen: dict[str, int] = {}

        def upsert(line: int, cells: list[str]) -> None:
            row = {k: v.strip() for k, v in zip(header, cells, strict=True)}
            ref = row["customer"]
            customer = customers.by(store, "email", ref) or customers.by(store, "external_id", ref)
            if customer is None:
                raise RowError(f"no customer {ref!r}")
            if not row["id"]:
                raise RowError("the ticket id is empty")
            values: dict[str, object] = {"customer_id": customer.id}
            for column in ("opened_at", "first_response_at", "resolved_at"):
                raw = row.get(column, "")
                try:
                    values[column] = parse_moment(raw) if raw else None
                except ValueError as exc:
                    raise RowError(f"{column}: {exc}") from None
            if values["opened_at"] is None:
                raise RowError("opened_at is empty")
            opened = str(values["opened_at"])
            for column in ("first_response_at", "resolved_at"):
                later = values[column]
                if later is None:
                    continue
                # a plain date is the whole day: compare dates when either is one
                plain = len(str(later)) == 10 or len(opened) == 10
                a, b = (str(later)[:10], opened[:10]) if plain else (str(later), opened)
                if a < b:
                    raise RowError(f"{column} is before opened_at")
            if str(values["opened_at"])[:10] > today:
                raise RowError(f"opened_at is after today ({today})")
            csat = row.get("csat", "")
            try:
                values["csat"] = parse_value(csat) if csat else None
            except ValueError:
                raise RowError(f"csat {csat!r} is not a number") from None
            if row["id"] in seen:
                raise RowError(f"ticket {row['id']!r} is already on line {seen[row['id']]}")
            seen[row["id"]] = line
            existing = touchpoints.ticket_id_of(store, row["id"])
            if existing:
                touchpoints.update_ticket(store, existing, values)
                counts["updated"] += 1
            else:
                touchpoints.insert_ticket(
                    store,
                    {
                        "ticket_id": row["id"],
                        **values,
                        "source": path.name,
                        "created_on": today,
                    },
                )
                counts["inserted"] += 1

        with _all_or_nothing(store, dry_run=False):
            bad = each_row(csvfile, upsert)
            # The ticket import has never added the "… and N more" line: kept, so that its
            # messages stay exactly as they were.
            bad.raise_if_any(path, "no ticket was imported", count_unlisted=False)
    finally:
        csvfile.close()
    return {**counts, "rejected": bad.count}
