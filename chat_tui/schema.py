"""How a chat-tui setting is declared once, then read from the config file, a flag or
the environment.

Like chat_server's ``settings.py`` (the table in Redis's ``config.c``): each setting
is one row (name, kind, default, help, file keys, flag, environment variable) carried
by the dataclass field it fills. The TOML loader, the command line and ``--help`` all
read the rows, so a rule is written in one place. It is the client's own small
equivalent, not the server's: a client takes lists (rooms, servers, masks) and warns
about keys it does not know, where the server refuses them (a newer client's config
should not stop an older client).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_KEY = "setting"  # where a dataclass field keeps its row, in ``field.metadata``


class ConfigError(ValueError):
    """A config file or flag that cannot be used; the message says what to fix."""


class SettingError(ValueError):
    """A value a setting refuses; the text names the setting (``label``) and the fault."""


@dataclass(frozen=True, slots=True)
class Kind:
    """How one kind of value is read: a TOML value, or the text of a flag. Each is
    given the label to name in a complaint (the key, or the flag). ``None`` from
    either means "not set": the default stands."""

    from_toml: Callable[[object, str], Any]
    from_text: Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the schema; ``name`` is the field's."""

    name: str
    kind: Kind
    help: str
    keys: tuple[str, ...]  # file keys; the first is the documented one, others old names
    flag: str = ""  # the command-line flag, if any
    metavar: str = ""
    env: str = ""  # an environment variable that gives the value, if any
    secret: bool = False  # a password: never echoed, and its file should be private
    # The flag is declared by chat_protocol.client_tls for every client program; this
    # row only says which setting it fills.
    shared_flag: bool = False

    @property
    def dest(self) -> str:
        """Where argparse keeps the flag's value."""
        return self.flag.lstrip("-").replace("-", "_")


def setting(
    default: Any,
    help: str,
    *,
    kind: Kind,
    key: str | None = None,
    old_keys: tuple[str, ...] = (),
    flag: str = "",
    metavar: str = "",
    env: str = "",
    secret: bool = False,
    shared_flag: bool = False,
) -> Any:
    """A dataclass field that carries its schema row (see :func:`schema`). The file's
    key is the field's name unless ``key`` says otherwise; ``old_keys`` are read too."""
    row = Setting(
        name="",
        kind=kind,
        help=help,
        keys=(key, *old_keys) if key else old_keys,  # the name goes first (``schema``)
        flag=flag,
        metavar=metavar,
        env=env,
        secret=secret,
        shared_flag=shared_flag,
    )
    meta = {SCHEMA_KEY: row, "keyed_by_name": key is None}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, repr=not secret, metadata=meta)


def schema(cls: type) -> tuple[Setting, ...]:
    """The rows of the dataclass ``cls``, for the fields declared with :func:`setting`."""
    rows = []
    for f in dataclasses.fields(cls):
        row = f.metadata.get(SCHEMA_KEY)
        if isinstance(row, Setting):
            keys = (f.name, *row.keys) if f.metadata.get("keyed_by_name") else row.keys
            rows.append(dataclasses.replace(row, name=f.name, keys=keys))
    return tuple(rows)


# -- reading -------------------------------------------------------------------------


@dataclass
class FileValues:
    """What the config file ``where`` said: values by setting name, and what it said
    in vain."""

    where: str
    values: dict[str, Any]
    warnings: list[str]


def from_file(rows: Sequence[Setting], data: Mapping[str, object], where: str) -> FileValues:
    """Check a parsed TOML document against the rows; unknown keys are warned about.

    A row with several keys (an old name beside the new) takes the first one given.
    """
    known = [key for row in rows for key in row.keys]
    values: dict[str, Any] = {}
    for row in rows:
        key = next((k for k in row.keys if k in data), None)
        if key is None:
            continue
        try:
            value = row.kind.from_toml(data[key], key)
        except SettingError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if value is not None:
            values[row.name] = value
    warnings = []
    unknown = sorted(set(data) - set(known))
    if unknown:
        warnings.append(
            f"{where}: unknown setting(s) {', '.join(unknown)} ignored (known: {', '.join(known)})"
        )
    return FileValues(where, values, warnings)


def from_flags(rows: Sequence[Setting], given: Mapping[str, str | bool | None]) -> dict[str, Any]:
    """Values from flags, by setting name: the text typed, or the value a flag without
    one sets (False for ``--no-tls-verify``); None for a flag not given."""
    by_name = {row.name: row for row in rows}
    values: dict[str, Any] = {}
    for name, text in given.items():
        row = by_name[name]
        if text is None or isinstance(text, bool):
            if text is not None:
                values[name] = text
            continue
        try:
            value = row.kind.from_text(text, row.flag)
        except SettingError as exc:
            raise ConfigError(str(exc)) from None
        if value is not None:
            values[name] = value
    return values


# -- the command line ------------------------------------------------------------------


def add_flags(
    parser: argparse.ArgumentParser,
    rows: Sequence[Setting],
    add_shared: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """One flag per row that has one, in the rows' order; the shared flags are added
    by ``add_shared`` (their owner's) where the first of them comes. A flag not given
    leaves None, so the file's value or the default stands."""
    for row in rows:
        if row.shared_flag and add_shared is not None:
            add_shared(parser)
            add_shared = None
        if not row.flag or row.shared_flag:
            continue
        help_text = row.help.replace("%", "%%")  # argparse formats help with %
        if row.flag.startswith("--no-"):
            parser.add_argument(row.flag, action="store_true", help=help_text)
        else:
            parser.add_argument(row.flag, metavar=row.metavar or None, help=help_text)


def given_flags(rows: Sequence[Setting], args: argparse.Namespace) -> dict[str, str | bool | None]:
    """The flags on the command line, by the name of the setting each fills: the text
    typed, or for a flag without a value the setting's value once it is given."""
    given: dict[str, str | bool | None] = {}
    for row in rows:
        if not row.flag:
            continue
        value = getattr(args, row.dest, None)
        if isinstance(value, bool):  # a store_true flag: False when not given
            value = (not row.flag.startswith("--no-")) if value else None
        given[row.name] = value
    return given
