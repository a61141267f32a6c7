"""Workspaces: find one, create one, read its settings (``funnelctl.yaml``).

A workspace is a folder holding ``funnelctl.yaml``, ``playbooks/``,
``templates/`` and the database ``funnel.db``.

The settings are named tuples, not frozen dataclasses: as immutable and as typed, and
every command reads them as it starts, where defining a frozen dataclass (dataclasses
compiles six methods for each) costs five times as much or more. Change one with
``settings._replace(team=...)``; read a default from an instance (``Transport().port``):
on the class, ``Transport.port`` is the field's accessor, not its default.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import yamlfile
from .errors import WorkspaceError
from .yamlfile import Fields, Problems, YList, YMap

if TYPE_CHECKING:  # zoneinfo is imported when a zone is used: not when --today is given
    from zoneinfo import ZoneInfo

CONFIG_NAME = "funnelctl.yaml"
DB_NAME = "funnel.db"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words a playbook uses for an owner that are not people: a team member may not be called so.
_NOT_NAMES = ("customer-owner", "round-robin", "least-busy")
_NO_PASSWORD = (
    "a password is never stored in funnelctl.yaml; set transport.password_env to the name of "
    "an environment variable that holds it"
)


class SendWindow(NamedTuple):
    start_minute: int = 0
    end_minute: int = 24 * 60
    weekdays: tuple[str, ...] = WEEKDAYS


class SendSettings(NamedTuple):
    window: SendWindow = SendWindow()
    max_late_days: int = 3
    rate_per_minute: int = 0


class Transport(NamedTuple):
    kind: str = "maildir"
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password_env: str = "FUNNELCTL_SMTP_PASSWORD"
    timeout_s: float = 30.0
    command: str = "/usr/sbin/sendmail -i"
    path: str = "outbox"
    ca_file: str | None = None  # a private CA to trust for TLS, instead of the system's

    @property
    def sendmail_argv(self) -> tuple[str, ...]:
        return tuple(sendmail_argv(self.command))


# Options of sendmail that take a value glued to them (-oi, -bm, -fana@x, -FName): a
# cluster starting with one of these is not a cluster of switches.
_VALUED = set("bBCFfhLNOopqRrVX")


def sendmail_argv(command: str) -> list[str]:
    """The sendmail command as argv, without the switches that make it take recipients
    from the message's headers (-t, alone or in a cluster such as -ti; msmtp's
    --read-recipients). Raises ValueError for a command it cannot read that way."""
    argv: list[str] = []
    for arg in shlex.split(command):
        if arg == "-t" or arg.startswith("--read-recipients"):
            continue
        if re.fullmatch(r"-[A-Za-z]{2,}", arg) and arg[1] not in _VALUED and "t" in arg:
            if set(arg[1:]) <= {"i", "t"}:
                argv.append("-i")  # -ti, -it
                continue
            raise ValueError(
                f"{arg!r} may tell sendmail to read the recipients from the headers (-t); "
                "write the switches apart, without -t: funnelctl gives the recipients itself"
            )
        argv.append(arg)
    if not argv:
        raise ValueError("the command is empty")
    return argv


class Inbox(NamedTuple):
    """Where ``funnelctl inbox`` reads the consultant's mail: an IMAP server, or Maildir
    folders another program keeps in sync (mbsync, offlineimap). Read only, always."""

    kind: str = "imap"
    host: str = "localhost"
    port: int = 993
    security: str = "ssl"
    username: str | None = None
    password_env: str = "FUNNELCTL_IMAP_PASSWORD"
    timeout_s: float = 30.0
    ca_file: str | None = None
    inbox_folder: str = "INBOX"  # IMAP folder names
    sent_folder: str | None = None
    maildir_inbox: str | None = None  # Maildir paths, resolved against the workspace
    maildir_sent: str | None = None


class Member(NamedTuple):
    """A member of the team: the id that owners and playbooks use and, when funnelctl.yaml
    says so, the person behind it (display name, email address, signature) and how many
    tasks a week they can do (``capacity``: what the report's workload projection is
    judged against; None when not said, and then nobody guesses)."""

    id: str
    name: str | None = None
    email: str | None = None
    signature: str | None = None
    capacity: int | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def address(self) -> str | None:
        """``Name <email>`` for a From: or Reply-To: line; None without an email."""
        if not self.email:
            return None
        from email.headerregistry import Address  # the email package: when mail is written

        return str(Address(display_name=self.display_name, addr_spec=self.email))


class Settings(NamedTuple):
    timezone: str = "UTC"
    sender: str = ""
    team: tuple[str, ...] = ()  # the members' ids, in order: what assignment picks from
    send: SendSettings = SendSettings()
    transport: Transport = Transport()
    members: tuple[Member, ...] = ()  # the team as written, one per id of ``team``
    signature: str | None = None  # the sign-off when the workspace sender speaks
    inbox: Inbox | None = None  # where replies, bounces and unsubscribes are read

    @property
    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    def person(self, owner: str | None) -> Member | None:
        """The team member whose id is ``owner``; None for anyone outside the team."""
        if not owner:
            return None
        found = next((m for m in self.members if m.id == owner), None)
        if found is None and owner in self.team:
            return Member(owner)  # settings made in code, with bare names only
        return found

    def speaker(self, owner: str | None) -> Member | None:
        """Who speaks in an email to a customer of ``owner``: that member when they have
        an email address, else None (the workspace sender speaks)."""
        member = self.person(owner)
        return member if member is not None and member.email else None

    def sender_problem(self) -> str | None:
        """Why the sender is not fit for mail that really leaves, or None."""
        if not self.sender or self.sender == PLACEHOLDER_SENDER:
            return (
                f"the sender is still {self.sender or 'empty'!r}: set 'sender' in funnelctl.yaml "
                "to your name and address (customers would see it, and reply to it)"
            )
        return None


# What a new workspace says until the consultant writes their own name and address.
PLACEHOLDER_SENDER = "Your Name <you@example.com>"


# What a cached settings file may hold, by name (jsoncache): nothing else is ever built.
_SETTINGS_CLASSES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (Settings, SendSettings, SendWindow, Transport, Member, Inbox)
}


class Workspace(NamedTuple):
    root: Path
    settings: Settings

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def playbooks_dir(self) -> Path:
        return self.root / "playbooks"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def cache_dir(self) -> Path:
        """What funnelctl keeps to start faster (the checked playbooks): safe to delete."""
        return self.root / ".cache"

    def own_file(self, path: Path) -> str | None:
        """What ``path`` is to the workspace ("the workspace's database", ...), or None when
        it is none of the workspace's own files. Symbolic and hard links are seen through."""
        real = _real(path)
        db = DB_NAME
        files = {
            self.db_path: "the workspace's database",
            self.root / f"{db}-wal": "the workspace database's write-ahead log",
            self.root / f"{db}-shm": "the workspace database's shared-memory file",
            self.root / f"{db}-journal": "the workspace database's journal",
            self.root / CONFIG_NAME: "the workspace's settings file",
        }
        for own, what in files.items():
            if real == _real(own) or _same_file(path, own):
                return what
        for folder in (self.playbooks_dir, self.templates_dir):
            # by name, and by identity for the folders above it (a bind mount, a hard-linked
            # tree): the target need not exist yet, its folder does
            if real == _real(folder) or any(_same_file(up, folder) for up in real.parents):
                return f"in the workspace's {folder.name} folder"
        return None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    """The same file under two names (a hard link): only files that exist can be."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def user_data_dir() -> Path:
    """The per-user default workspace, following each platform's convention."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "funnelctl"


def locate(home: str | Path | None, cwd: Path) -> Path:
    """The workspace folder: ``--home``/``FUNNELCTL_HOME`` (given as ``home``),
    else the nearest parent of ``cwd`` holding funnelctl.yaml, else the user's data folder."""
    if home:
        return Path(home).expanduser().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return user_data_dir()


def open_workspace(home: str | Path | None, cwd: Path) -> Workspace:
    root = locate(home, cwd)
    if not (root / CONFIG_NAME).is_file():
        raise WorkspaceError(
            f"No funnelctl workspace at {root}: create one with 'funnelctl init {root}' "
            "(or 'funnelctl init DIR' and run commands inside DIR, or pass --home DIR)."
        )
    return Workspace(root=root, settings=cached_settings(root / CONFIG_NAME, root / ".cache"))


SETTINGS_CACHE = "settings.json"


def cached_settings(path: Path, cache_dir: Path) -> Settings:
    """funnelctl.yaml's checked settings, kept in ``.cache/settings.json`` (jsoncache)
    under a key made of the file's content and the code that checks it: a command then
    starts without PyYAML or the email package. Settings with a problem are never
    cached, so it is reported on every command until fixed."""
    from . import jsoncache

    try:
        content = path.read_bytes()
        text = content.decode("utf-8")
        reader = Path(yamlfile.__file__)
        rules = [p.read_bytes() for p in (Path(__file__), reader, reader.with_name("yamlparse.py"))]
    except (OSError, UnicodeDecodeError):
        return load_settings(path)  # which says what is wrong with the file
    key = jsoncache.cache_key([content, *rules])
    cache = cache_dir / SETTINGS_CACHE
    cached = jsoncache.read(cache, key, _SETTINGS_CLASSES)
    if isinstance(cached, Settings):
        return cached
    settings = load_settings(path, text)
    jsoncache.write(cache, key, settings)
    return settings


def shipped_dir(name: str) -> Path:
    """The folder of shipped playbooks or templates: inside the wheel, or the source tree."""
    from importlib import resources

    packaged = Path(str(resources.files("funnelctl"))) / "shipped" / name
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parent.parent / name
    if source.is_dir():
        return source
    raise WorkspaceError(f"The shipped {name} are missing from this installation of funnelctl.")


CONFIG_TEMPLATE = """\
# funnelctl workspace settings. Every key is optional.

# Time zone of "today" and of the send window.
timezone: {timezone}

# The From: of every email (a template may override it), unless the customer's owner is
# a team member with an email address (below).
sender: "{sender}"
# The sign-off of the shipped templates when the sender above speaks; without it, its name.
# signature: |
#   Your Name
#   Customer success

# Consultants who own customers; round-robin and least-busy assignment pick from here.
# A member is a short name, or a person: emails to the customers they own then go out
# From and Reply-To them, signed with their signature. For example:
#   team:
#     - ana
#     - id: bruno
#       name: Bruno Costa
#       email: bruno@example.com
#       signature: |
#         Bruno Costa
#         Customer success
#       capacity: 25          # tasks a week: `report` says whether the team can sustain
#                             # the coming weeks' work or must scale
team: [{team}]

send:
  # Emails go out only inside this window, in the time zone above.
  window: {{hours: "09:00-17:00", weekdays: [mon, tue, wed, thu, fri]}}
  # A queued email older than this many days is skipped as stale, never blasted.
  max_late_days: 3
  # Messages per minute at most; 0 = no limit.
  rate_per_minute: 0

transport:
  # maildir writes each email into a Maildir at `path` (any mail client opens it) for
  # review; switch to smtp or sendmail to deliver.
  kind: maildir
  path: outbox
  # kind: smtp
  # host: smtp.example.com
  # port: 587
  # security: starttls             # ssl | starttls | none
  # username: you@example.com
  # password_env: FUNNELCTL_SMTP_PASSWORD   # the password only ever comes from the environment
  # timeout_s: 30
  # ca_file: my-ca.pem                 # trust a private CA (a PEM file) for TLS
  # kind: sendmail
  # command: "/usr/sbin/sendmail -i"   # funnelctl gives the recipients and -f itself

# Where 'funnelctl inbox' (and 'funnelctl run', first) reads replies, out-of-office
# answers, bounces and unsubscribes. It only reads: no flag is set, nothing is moved.
# inbox:
#   kind: imap                         # imap | maildir
#   host: imap.example.com
#   port: 993
#   security: ssl                      # ssl | starttls (certificates verified; ca_file as above)
#   username: you@example.com
#   password_env: FUNNELCTL_IMAP_PASSWORD   # the password only ever comes from the environment
#   folders: {{inbox: INBOX, sent: Sent}}
#   # kind: maildir                    # for mbsync/offlineimap users:
#   # maildir: {{inbox: ~/Mail/INBOX, sent: ~/Mail/Sent}}
"""


def local_zone(environ: Mapping[str, str], localtime: Path = Path("/etc/localtime")) -> str:
    """The IANA name of this machine's time zone, for a new workspace's settings: TZ when
    it names a zone, else what /etc/localtime links to, else UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates = [environ.get("TZ", "").removeprefix(":")]
    with contextlib.suppress(OSError):
        target = os.path.realpath(localtime)
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
        return name
    return "UTC"


def init_workspace(
    root: Path,
    *,
    team: tuple[str, ...] = (),
    sender: str = "",
    timezone: str = "UTC",
    capacity: Mapping[str, int] | None = None,
) -> Workspace:
    """Create a workspace folder with settings, shipped playbooks and templates; a member
    with a ``capacity`` (tasks a week) is written as ``{id: ana, capacity: 12}``.

    Never overwrites: an existing funnelctl.yaml, playbooks/ or templates/ is an error.
    The database is created by the caller through the store.
    """
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a folder.")
    taken = [
        name for name in (CONFIG_NAME, "playbooks", "templates", DB_NAME) if (root / name).exists()
    ]
    if taken:
        raise WorkspaceError(
            f"{root} already holds a workspace ({', '.join(taken)}); "
            "funnelctl init never overwrites one."
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_NAME).write_text(
        CONFIG_TEMPLATE.format(
            timezone=timezone,
            sender=sender or PLACEHOLDER_SENDER,
            team=", ".join(
                f"{{id: {m}, capacity: {capacity[m]}}}" if capacity and m in capacity else m
                for m in team
            ),
        ),
        encoding="utf-8",
    )
    shutil.copytree(shipped_dir("playbooks"), root / "playbooks")
    shutil.copytree(shipped_dir("templates"), root / "templates")
    return Workspace(root=root, settings=load_settings(root / CONFIG_NAME))


_OWN_NAMES = (CONFIG_NAME, "playbooks", "templates", DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm")


@contextmanager
def undone_on_failure(root: Path) -> Iterator[None]:
    """Creating a workspace in ``root`` is all or nothing: if the block fails (a full disk,
    Ctrl-C), what it created is removed, so that ``funnelctl init`` can simply be run
    again. Only what was not there before the block is ever removed."""
    root = root.expanduser().resolve()
    existed = root.exists()
    before = {name for name in _OWN_NAMES if os.path.lexists(root / name)}
    try:
        yield
    except BaseException:
        for name in _OWN_NAMES:
            path = root / name
            if name in before or not os.path.lexists(path):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        if not existed:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


def load_settings(path: Path, text: str | None = None) -> Settings:
    """The settings of funnelctl.yaml at ``path`` (its ``text`` when already read),
    checked: every problem is reported at once, as ``file:line: message``."""
    data = yamlfile.load(path, text)
    if data is None:
        return Settings()
    problems = Problems()
    if not isinstance(data, YMap):
        problems.add(path, 1, "funnelctl.yaml must be a mapping of settings")
        problems.raise_if_any(f"{path} is not valid")
    top = Fields(data, path, problems, "settings")
    timezone = top.get("timezone", str, default="UTC")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a folder of the zone database such as "Europe" is no zone.
        top.problem("timezone", f"unknown time zone {timezone!r} (use a name like Europe/Lisbon)")
        timezone = "UTC"
    sender = top.get("sender", str, default="")
    if "\r" in sender or "\n" in sender:
        top.problem("sender", "sender must be one line")
        sender = ""
    elif sender and "@" not in _address_of(sender):
        top.problem("sender", f"sender {sender!r} has no email address")
    signature = _signature(top.get("signature", str))
    members = _team(top.get("team", YList, default=YList()), path, problems)
    send = _send_settings(top.get("send", YMap), path, problems)
    transport = _transport(top.get("transport", YMap), path, problems)
    inbox = _inbox(top.get("inbox", YMap), path, problems)
    _refuse_password(top)
    top.done()
    problems.raise_if_any(f"{path} has {{n}} problem(s)")
    return Settings(
        timezone=timezone,
        sender=sender,
        team=tuple(m.id for m in members),
        send=send,
        transport=transport,
        members=members,
        signature=signature,
        inbox=inbox,
    )


def _address_of(sender: str) -> str:
    from email.utils import parseaddr  # the email package, only when settings are read

    return parseaddr(sender)[1]


def _signature(value: str | None) -> str | None:
    """A signature as written, without the line break a ``|`` block ends with."""
    value = value.rstrip() if value else None
    return value or None


_MEMBER = "settings: team member"
_PERSON_HINT = (
    " (a person with a name and an address: {{id: {id}, name: {name}, email: {id}@example.com}})"
)
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _team(entries: YList, path: Path, problems: Problems) -> tuple[Member, ...]:
    """The members of ``team:``: short names (``ana``) or people (``{id, name, email,
    signature}``); an id follows the same rules either way."""
    members: dict[str, Member] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, YMap):
            member = _person(entry, path, problems)
            if member is None:
                continue
            line = entry.line_of("id")
        else:
            line = entries.line_of(index)
            if not isinstance(entry, str) or not _NAME.match(entry):
                text = yamlfile.describe(entry, entries.source_of(index))
                hint = ""
                if (
                    isinstance(entry, str)
                    and " " in entry.strip()
                    and not set("<@\"'") & set(entry)
                ):
                    # a full name where an id belongs: show how to write the person
                    first = entry.split()[0].lower()
                    short = first if _NAME.match(first) else "ana"
                    hint = _PERSON_HINT.format(id=short, name=entry.strip())
                problems.add(path, line, f"{_MEMBER} {text} must be a short name like ana{hint}")
                continue
            member = Member(entry)
        if member.id in _NOT_NAMES:
            problems.add(
                path,
                line,
                f"{_MEMBER} {member.id!r} would be taken for the owner rule of that name in the "
                "playbooks; choose another name",
            )
        elif member.id in members:
            problems.add(path, line, f"{_MEMBER} {member.id!r} twice")
        else:
            members[member.id] = member
    return tuple(members.values())


def _person(entry: YMap, path: Path, problems: Problems) -> Member | None:
    """A team member written as a mapping; None when its id is unusable (reported)."""
    raw_id = entry.get("id")
    usable = isinstance(raw_id, str) and bool(_NAME.match(raw_id))
    f = Fields(entry, path, problems, f"{_MEMBER} {raw_id!r}" if usable else _MEMBER)
    f.seen.add("id")
    if raw_id is None:
        problems.add(
            path,
            entry.line,
            "settings: a team member written as a mapping needs an 'id', a short name like ana",
        )
    elif not usable:
        text = yamlfile.describe(raw_id, entry.source_of("id"))
        problems.add(
            path, entry.line_of("id"), f"{_MEMBER} id {text} must be a short name like ana"
        )
    name = f.get("name", str)
    if name is not None and ("\r" in name or "\n" in name):
        f.problem("name", "name must be one line")
        name = None
    elif name is not None and _CONTROL.search(name):
        f.problem("name", "name must not contain control characters")
        name = None
    email = _email(f)
    signature = _signature(f.get("signature", str))
    capacity = f.get("capacity", int, convert=_capacity)
    f.done()
    if not usable:
        return None
    assert isinstance(raw_id, str)
    return Member(raw_id, (name or "").strip() or None, email, signature, capacity)


def _capacity(value: int) -> int:
    if value < 1:
        raise ValueError(f"capacity is tasks a week, a whole number of at least 1, not {value}")
    return value


def _email(f: Fields) -> str | None:
    email: str | None = f.get("email", str)
    if email is None:
        return None
    if "\r" in email or "\n" in email:
        f.problem("email", "email must be one line")
    elif not email.isascii():
        f.problem(
            "email",
            f"email {email!r} has non-ASCII characters, which SMTP cannot carry without "
            "SMTPUTF8; use an ASCII address",
        )
    elif not _EMAIL.match(email.strip()):
        hint = " (write the name under 'name')" if "<" in email else ""
        f.problem(
            "email", f"email {email!r} is not an email address such as bruno@example.com{hint}"
        )
    else:
        return email.strip()
    return None


def _send_settings(data: YMap | None, path: Path, problems: Problems) -> SendSettings:
    if data is None:
        return SendSettings()
    fields = Fields(data, path, problems, "send")
    window = SendWindow()
    window_map = fields.get("window", YMap)
    if window_map is not None:
        wf = Fields(window_map, path, problems, "send.window")
        hours = wf.get("hours", str, default="00:00-24:00")
        match = _HOURS.match(hours)
        start, end = 0, 24 * 60
        if not match:
            wf.problem(
                "hours", f"hours {hours!r} must look like 09:00-17:00 (times from 00:00 to 24:00)"
            )
        else:
            start = _minutes(*match.group(1, 2))
            end = _minutes(*(match.group(3, 4) if match.group(3) else match.group(5, 6)))
            if end <= start:
                wf.problem("hours", f"hours {hours!r} must end after they start")
        days = wf.get("weekdays", YList, default=YList(WEEKDAYS))
        for index, day in enumerate(days):
            if not isinstance(day, str) or day not in WEEKDAYS:
                text = yamlfile.describe(day, days.source_of(index))
                problems.add(
                    path,
                    days.line_of(index),
                    f"send.window: unknown weekday {text}; use {', '.join(WEEKDAYS)}",
                )
        if not days:
            wf.problem("weekdays", "'weekdays' is empty: no email would ever be sent")
        wf.done()
        window = SendWindow(start, end, tuple(d for d in WEEKDAYS if d in days))
    max_late = fields.get("max_late_days", int, default=3)
    rate = fields.get("rate_per_minute", int, default=0)
    for key, value in (("max_late_days", max_late), ("rate_per_minute", rate)):
        if value < 0:
            fields.problem(key, f"'{key}' must not be negative")
    fields.done()
    return SendSettings(window=window, max_late_days=max_late, rate_per_minute=rate)


def _transport(data: YMap | None, path: Path, problems: Problems) -> Transport:
    if data is None:
        return Transport()
    f = Fields(data, path, problems, "transport")
    default = Transport()
    kind = f.get("kind", str, default="maildir")
    if kind not in ("smtp", "sendmail", "maildir"):
        f.problem("kind", f"transport kind {kind!r} must be smtp, sendmail or maildir")
    security = f.get("security", str, default="starttls" if kind == "smtp" else "none")
    if security not in ("ssl", "starttls", "none"):
        f.problem("security", f"security {security!r} must be ssl, starttls or none")
    port_default = {"ssl": 465, "starttls": 587}.get(security, 25)
    transport = Transport(
        kind=kind,
        host=f.get("host", str, default=default.host),
        port=f.get("port", int, default=port_default),
        security=security,
        username=f.get("username", str),
        password_env=_password_env(f, default.password_env),
        timeout_s=f.get("timeout_s", (int, float), default=default.timeout_s),
        command=f.get("command", str, default=default.command),
        path=f.get("path", str, default=default.path),
        ca_file=_ca_file(f, path.parent),
    )
    if transport.kind == "sendmail":
        try:
            sendmail_argv(transport.command)
        except ValueError as exc:
            f.problem("command", f"command {transport.command!r}: {exc}")
    if not 1 <= transport.port <= 65535:
        f.problem("port", f"port {transport.port} must be between 1 and 65535")
    if transport.timeout_s <= 0:
        f.problem("timeout_s", "'timeout_s' must be more than 0 seconds")
    _refuse_password(f)
    f.done()
    return transport


# Where a password may cross the network in clear: this machine only.
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _inbox(data: YMap | None, path: Path, problems: Problems) -> Inbox | None:
    """``inbox:``, checked as ``transport:`` is; None when the workspace has none."""
    if data is None:
        return None
    f = Fields(data, path, problems, "inbox")
    default = Inbox()
    kind = f.get("kind", str, default="imap")
    if kind not in ("imap", "maildir"):
        f.problem("kind", f"inbox kind {kind!r} must be imap or maildir")
    security = f.get("security", str, default="ssl")
    if security not in ("ssl", "starttls", "none"):
        f.problem("security", f"security {security!r} must be ssl or starttls")
    host = f.get("host", str, default=default.host)
    if security == "none" and host not in _LOOPBACK:
        f.problem(
            "security",
            "security 'none' would send the password in clear: use ssl or starttls "
            "(none is for a server on this machine only)",
        )
    port = f.get("port", int, default=143 if security != "ssl" else 993)
    if not 1 <= port <= 65535:
        f.problem("port", f"port {port} must be between 1 and 65535")
    timeout = f.get("timeout_s", (int, float), default=default.timeout_s)
    if timeout <= 0:
        f.problem("timeout_s", "'timeout_s' must be more than 0 seconds")
    folders = _roles(f, "folders", path, problems, lambda v: v)
    maildirs = _roles(
        f, "maildir", path, problems, lambda v: str((path.parent / Path(v).expanduser()).resolve())
    )
    username = f.get("username", str)
    if kind == "imap" and not username:
        f.problem("username", "an imap inbox needs a 'username' to log in with")
    if kind == "maildir" and "inbox" not in maildirs:
        f.problem("maildir", "a maildir inbox needs 'maildir: {inbox: PATH}' (sent: PATH too)")
    inbox = Inbox(
        kind=kind,
        host=host,
        port=port,
        security=security,
        username=username,
        password_env=_password_env(f, default.password_env),
        timeout_s=timeout,
        ca_file=_ca_file(f, path.parent),
        inbox_folder=folders.get("inbox", default.inbox_folder),
        sent_folder=folders.get("sent"),
        maildir_inbox=maildirs.get("inbox"),
        maildir_sent=maildirs.get("sent"),
    )
    _refuse_password(f)
    f.done()
    return inbox


def _roles(
    f: Fields, key: str, path: Path, problems: Problems, value_of: Callable[[str], str]
) -> dict[str, str]:
    """``{inbox: X, sent: Y}`` under ``key``: the folders the inbox reads, by role."""
    data = f.get(key, YMap)
    if data is None:
        return {}
    roles = Fields(data, path, problems, f"inbox.{key}")
    found: dict[str, str] = {}
    for role in ("inbox", "sent"):
        value = roles.get(role, str)
        if value is not None and value.strip():
            found[role] = value_of(value.strip())
        elif value is not None:
            roles.problem(role, f"inbox.{key}.{role} is empty")
    roles.done()
    return found


def _ca_file(f: Fields, root: Path) -> str | None:
    """The PEM file of a private CA, relative to the workspace; it must exist."""
    value = f.get("ca_file", str)
    if value is None:
        return None
    ca = (root / Path(value).expanduser()).resolve()
    if not ca.is_file():
        f.problem("ca_file", f"ca_file {value!r}: no such file ({ca})")
        return None
    return str(ca)


def _password_env(f: Fields, default: str) -> str:
    """The name of the variable holding the password; never echoed in a message, since
    a user may have written the password itself there."""
    f.seen.add("password_env")
    value = f.map.get("password_env")
    if value is None:
        return default
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        f.problem(
            "password_env",
            "'password_env' must be the name of an environment variable, such as "
            f"{default}, never the password itself",
        )
        return default
    return value


def _refuse_password(f: Fields) -> None:
    """A password key is an error, reported without its value, wherever it is written."""
    for key in f.map:
        if key in ("password", "smtp_password", "pass", "passwd"):
            f.ignore(key)
            message = _NO_PASSWORD
            if f.where == "inbox":
                message = message.replace("transport.password_env", "inbox.password_env")
            f.problem(key, message)
