"""How a server setting is declared once, then read from a file or a flag and checked.

Like the table in Redis's ``config.c``: each setting is one row (name, type, default,
range or allowed values, help text, flag). ``ServerConfig`` declares its fields with
:func:`setting`; the TOML file, the command-line flags and the final check of a whole
config all read those rows, so a rule is written in one place only.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_KEY = "setting"  # where a dataclass field keeps its row, in ``field.metadata``

Check = Callable[[str], str | None]  # a further test of a text value: the complaint, or None
Number = int | float


class ConfigError(Exception):
    """A config file or flag that cannot be used; the CLI prints it as one line."""


class SettingError(ValueError):
    """A value a setting refuses; the text says what is wrong, not where it came from."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the schema. ``name``, ``kind`` and ``optional`` come from the field."""

    name: str
    kind: type  # int, float, str, bool, or dict (of str to str)
    default: Any
    help: str
    optional: bool = False  # None is allowed (the setting is off or unset)
    flag: str = ""  # the command-line flag; "" = --name-with-dashes
    metavar: str = ""
    low: Number | None = None
    high: Number | None = None
    low_open: bool = False  # low itself is refused (a rate of 0 would divide by zero)
    choices: tuple[str, ...] = ()  # allowed text values, any case; stored in upper case
    at_most: str = ""  # another setting this one may not exceed (lowered to it if unset)
    requires: str = ""  # another setting that must be set when this one is
    check: Check | None = None  # run on non-empty text values
    secret: bool = False  # never echoed in an error (passwords, URLs that may hold one)

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def setting(
    default: Any,
    help: str,
    *,
    flag: str = "",
    metavar: str = "",
    low: Number | None = None,
    high: Number | None = None,
    low_open: bool = False,
    choices: tuple[str, ...] = (),
    at_most: str = "",
    requires: str = "",
    check: Check | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field that carries its schema row (see :func:`schema`)."""
    row = Setting(
        name="",
        kind=object,
        default=default,
        help=help,
        flag=flag,
        metavar=metavar,
        low=low,
        high=high,
        low_open=low_open,
        choices=choices,
        at_most=at_most,
        requires=requires,
        check=check,
        secret=secret,
    )
    meta = {SCHEMA_KEY: row}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def schema(cls: type) -> tuple[Setting, ...]:
    """The rows of a dataclass whose fields were all declared with :func:`setting`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        row = f.metadata.get(SCHEMA_KEY)
        if not isinstance(row, Setting):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        kind, optional = _kind(hints[f.name])
        rows.append(dataclasses.replace(row, name=f.name, kind=kind, optional=optional))
    return tuple(rows)


def _kind(hint: Any) -> tuple[type, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _kind(inner[0])[0], True
    return typing.get_origin(hint) or hint, False


# -- checking one value ----------------------------------------------------------------


def check_value(row: Setting, value: object) -> Any:
    """``value`` as the setting stores it (ints widened to float, choices upper-cased)."""
    if value is None:
        if row.optional:
            return None
        raise SettingError("must be set")
    if row.kind is bool:
        if not isinstance(value, bool):
            raise SettingError(f"must be true or false, not {_what(value)}")
        return value
    if row.kind is int or row.kind is float:
        number = _number(row, value)
        _check_range(row, number)
        return float(number) if row.kind is float else number
    if row.kind is str:
        if not isinstance(value, str):
            raise SettingError(f"must be a string, not {_what(value)}")
        if row.choices:
            if value.upper() not in row.choices:
                raise SettingError(f"must be one of {', '.join(row.choices)}, got {value!r}")
            return value.upper()
        complaint = row.check(value) if row.check is not None and value else None
        if complaint:
            raise SettingError(complaint if row.secret else f"{complaint}, got {value!r}")
        return value
    if row.kind is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SettingError(f"must be a table of strings, not {_what(value)}")
        if row.check is not None:
            for key in value:
                complaint = row.check(key)
                if complaint:
                    raise SettingError(f"{complaint}, got {key!r}")  # a name, not a secret
        return dict(value)
    raise TypeError(f"setting {row.name}: no rules for type {row.kind!r}")


def _number(row: Setting, value: object) -> Number:
    if isinstance(value, bool):  # True is an int to Python, not to a person
        raise SettingError(f"must be a number, not {_what(value)}")
    if row.kind is int:
        if not isinstance(value, int):
            raise SettingError(f"must be a whole number, not {_what(value)}")
        return value
    if not isinstance(value, int | float):
        raise SettingError(f"must be a number, not {_what(value)}")
    if math.isnan(value):
        raise SettingError("must be a number, got nan")
    return value


def _check_range(row: Setting, value: Number) -> None:
    low_ok = row.low is None or (value > row.low if row.low_open else value >= row.low)
    if low_ok and (row.high is None or value <= row.high):
        return
    raise SettingError(f"must be {describe_range(row)}, got {_show(value)}")


def describe_range(row: Setting) -> str:
    """The allowed values in words: ``between 1 and 65535``, ``greater than 0``."""
    low, high = row.low, row.high
    if low is not None and high is not None and not row.low_open:
        return f"between {_show(low)} and {_show(high)}"
    parts = []
    if low is not None:
        parts.append(f"greater than {_show(low)}" if row.low_open else f"at least {_show(low)}")
    if high is not None:
        parts.append(f"at most {_show(high)}")
    return " and ".join(parts)


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # "got -1", as it was typed, not "got -1.0"
    return repr(value) if isinstance(value, str) else str(value)


def _what(value: object) -> str:
    names = {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "a list", dict: "a table",
    }  # fmt: skip
    kind = names.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if isinstance(value, bool | int | float | str) else kind


def from_text(row: Setting, text: str) -> Any:
    """A flag's text as the setting's value (checked)."""
    value: object = text
    if row.kind is int:
        try:
            value = int(text)
        except ValueError:
            raise SettingError(f"must be a whole number, got {text!r}") from None
    elif row.kind is float:
        try:
            value = float(text)
        except ValueError:
            raise SettingError(f"must be a number, got {text!r}") from None
    return check_value(row, value)


# -- whole configs ---------------------------------------------------------------------


def from_mapping(rows: Sequence[Setting], data: Mapping[str, object], where: str) -> dict[str, Any]:
    """Check the settings of a file's table; unknown keys are an error naming the key."""
    by_name = {row.name: row for row in rows}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        row = by_name.get(name)
        if row is None:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        if name in out:
            raise ConfigError(f"{where}: {name} is set twice")
        try:
            out[name] = check_value(row, value)
        except SettingError as exc:
            raise ConfigError(f"{where}: {key} {exc}") from None
    return out


def settle(rows: Sequence[Setting], record: object, explicit: Collection[str]) -> None:
    """Check every value of ``record`` and the rules between settings, in place.

    A setting bounded by another (``at_most``) that was not given explicitly follows
    the other down (``--sendq 65536`` alone lowers the soft limit with it); given
    explicitly, a value over the bound is an error.
    """
    by_name = {row.name: row for row in rows}
    for row in rows:
        try:
            setattr(record, row.name, check_value(row, getattr(record, row.name)))
        except SettingError as exc:
            raise ConfigError(f"{row.name} {exc}") from None
    for row in rows:
        value = getattr(record, row.name)
        if row.at_most and value is not None:
            bound = getattr(record, row.at_most)
            if value > bound and row.name not in explicit:
                setattr(record, row.name, bound)
            elif value > bound:
                raise ConfigError(
                    f"{row.name} ({_show(value)}) must not exceed {row.at_most} ({_show(bound)})"
                )
        if row.requires and value and not getattr(record, row.requires):
            other = by_name[row.requires]
            raise ConfigError(
                f"{row.name} needs {other.name} as well ({row.flag_name} needs "
                f"{other.flag_name} {other.metavar or 'VALUE'})"
            )


def read_table(path: str | Path, table: str) -> dict[str, object]:
    """A TOML file's ``[table]``, or its top-level keys when it has no such table.

    Other tables are left alone (the file may hold other programs' sections); a plain
    key outside ``[table]`` when the file has one is an error, as it would be ignored.
    """
    p = Path(path)
    where = f"config file {p}"
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except IsADirectoryError:
        raise ConfigError(f"{where} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"config file not readable: {p}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror or exc}") from None
    section = data.get(table)
    if section is None:
        return data
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [{table}] must be a table")
    for key, value in data.items():
        if key != table and not isinstance(value, dict):
            raise ConfigError(f"{where}: {key!r} is outside the [{table}] table")
    return section


# -- flags -----------------------------------------------------------------------------


def add_flags(parser: argparse.ArgumentParser, rows: Sequence[Setting]) -> None:
    """One flag per setting; each stores its checked value under the setting's name.

    A bool's flag sets False when it starts with ``--no-`` (True otherwise); a dict's
    flag is repeatable ``KEY:VALUE``. Unused flags leave None, so the file's value or
    the default stands.
    """
    for row in rows:
        help_text = _help(row)
        if row.kind is bool:
            parser.add_argument(
                row.flag_name,
                dest=row.name,
                action="store_const",
                const=not row.flag_name.startswith("--no-"),
                default=None,
                help=help_text,
            )
        elif row.kind is dict:
            parser.add_argument(
                row.flag_name,
                dest=row.name,
                action="append",
                type=_pair_parser(row),
                metavar=row.metavar or "KEY:VALUE",
                help=help_text,
            )
        else:
            parser.add_argument(
                row.flag_name,
                dest=row.name,
                type=_text_parser(row),
                metavar=row.metavar or _metavar(row),
                help=help_text,
            )


def _help(row: Setting) -> str:
    notes = []
    if row.low is not None or row.high is not None:
        low = "" if row.low is None else f"{'>' if row.low_open else '>='} {row.low}"
        if row.high is None:
            notes.append(low)
        elif row.low is not None and not row.low_open:
            notes.append(f"{row.low}..{row.high}")
        else:
            notes.append(f"{low}, <= {row.high}".lstrip(", "))
    if row.at_most:
        notes.append(f"<= {row.at_most}")
    if row.kind is not bool and row.default not in (None, {}, "") and len(str(row.default)) < 40:
        notes.append(f"default {row.default}")
    text = f"{row.help} ({'; '.join(notes)})" if notes else row.help
    return text.replace("%", "%%")  # argparse formats help with %


def _metavar(row: Setting) -> str:
    if row.choices:
        return "|".join(row.choices)
    return {int: "N", float: "X"}.get(row.kind, "TEXT")


def _text_parser(row: Setting) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return from_text(row, text)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _pair_parser(row: Setting) -> Callable[[str], tuple[str, str]]:
    def parse(text: str) -> tuple[str, str]:
        key, sep, value = text.partition(":")
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"wants {row.metavar or 'KEY:VALUE'}, got {text!r}")
        try:
            check_value(row, {key: value})
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return key, value

    return parse
