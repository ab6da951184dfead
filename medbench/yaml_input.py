"""YAML written by a user (config files, ``--set`` values), read so that mistakes are one line.

PyYAML's ``safe_load`` alone lets through what a config must not hold: a duplicated key silently
drops the first value (two ``train:`` sections), a few hundred bytes of aliases expand to
gigabytes (and an error message that prints them), deep nesting ends in a ``RecursionError``,
and YAML 1.1 reads ``010`` as 8 and ``1:30`` as 90, so ``--set name=010`` made experiment ``8``.
:func:`load_yaml` refuses the first three with a :class:`~medbench.errors.ConfigError` naming the
source and line, and keeps the text of every number: a setting typed as a string gets the text
the user wrote (:func:`as_text`).
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import ConfigError

#: Most values (mappings, lists and scalars, aliases counted as often as they are used) a
#: config may expand to; the shipped configs hold under 200.
MAX_VALUES = 100_000
#: Deepest nesting of mappings and lists; the config's own is 4.
MAX_DEPTH = 50


class YamlSyntaxError(ConfigError):
    """The text is not valid YAML (``--set`` then takes it as plain text)."""


class SourcedInt(int):
    """An integer read from YAML that remembers how it was written (``010``, ``1:30``)."""

    text: str


class SourcedFloat(float):
    """A number read from YAML that remembers how it was written (``1e-4``, ``.5``)."""

    text: str


def as_text(value: Any) -> str:
    """The text of a scalar as the user wrote it, for settings typed as strings."""
    return getattr(value, "text", None) or str(value)


def short(value: Any, size: int = 80) -> str:
    """``repr`` of a value cut to about ``size`` characters, for one-line messages."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = size
    r.maxlist = r.maxdict = r.maxtuple = 6
    r.maxlevel = 3
    text = r.repr(value)
    return text if len(text) <= size else text[: size - 3] + "..."


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and excessive nesting, and keeps numbers' text."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                line = seen.get(key)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                break
            if line is not None:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: key {short(key)} appears twice in "
                    f"one mapping (first on line {line + 1}); the second would silently win"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _sourced(kind: type, base: str):
    construct = getattr(yaml.SafeLoader, f"construct_yaml_{base}")

    def build(loader: _Loader, node: yaml.ScalarNode):
        value = kind(construct(loader, node))
        value.text = node.value
        return value

    return build


_Loader.add_constructor("tag:yaml.org,2002:int", _sourced(SourcedInt, "int"))
_Loader.add_constructor("tag:yaml.org,2002:float", _sourced(SourcedFloat, "float"))


def _count(value: Any, memo: dict[int, int]) -> int:
    """Values ``value`` expands to, each alias counted as often as it is used (linear in the
    distinct nodes: shared ones are counted once and multiplied)."""
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, dict):
        n = 1 + sum(_count(k, memo) + _count(v, memo) for k, v in value.items())
    elif isinstance(value, list):
        n = 1 + sum(_count(v, memo) for v in value)
    else:
        n = 1
    if isinstance(value, (dict, list)):
        memo[key] = n
    return n


def load_yaml(text: str, source: str) -> Any:
    """Parse user YAML; every problem is a :class:`ConfigError` that names ``source``.

    Raises
    ------
    ConfigError
        Invalid YAML (with its line), a key twice in one mapping, nesting deeper than
        :data:`MAX_DEPTH`, or more than :data:`MAX_VALUES` values once aliases are expanded.
    """
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{source} {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise YamlSyntaxError(f"{source}{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    if _count(value, {}) > MAX_VALUES:
        raise ConfigError(
            f"{source}: expands to more than {MAX_VALUES:,} values (YAML aliases used many "
            "times over); write the settings out instead"
        )
    return value


def read_text(path: Path) -> str:
    """A config file's text, which must be UTF-8 (a UTF-8 byte-order mark is allowed).

    Raises
    ------
    ConfigError
        The file cannot be read, is UTF-16/32 or binary.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: is UTF-16 text; save it as UTF-8")
    if b"\x00" in data:
        raise ConfigError(f"{path}: is not a text file (it holds NUL bytes); a config is YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line}: is not UTF-8 text (byte 0x{data[err.start]:02x}); "
            "save it as UTF-8"
        ) from None
