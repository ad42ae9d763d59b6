"""Declared stage parameters: name, default, help text and allowed range.

Each stage declares its options once (a :class:`ParamSet`); the library, the
command line and the campaign files all read the same declaration, and a bad
value fails at load time with the parameter's name, the allowed range and the
value given.

>>> ps = ParamSet("ground", [Param("cell", 0.25, "grid cell size (m)", lo=0.05, hi=2.0)])
>>> ps.resolve({"cell": 0.5})["cell"]
0.5
>>> ps.resolve({"cell": 5})
Traceback (most recent call last):
...
hdmap.errors.ParameterError: ground.cell: must be between 0.05 and 2.0, got 5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ParameterError

__all__ = ["Param", "ParamSet", "resolve_stages"]


@dataclass(frozen=True)
class Param:
    """One option of a stage."""

    name: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None

    def check(self, value, where: str):
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ParameterError(f"{where}: expected true or false, got {value!r}")
            return value
        if self.choices is not None:
            if value not in self.choices:
                raise ParameterError(f"{where}: must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return value
        if isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{where}: expected a number, got {value!r}")
            if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
                raise ParameterError(f"{where}: must be between {self.lo} and {self.hi}, got {value!r}")
            return type(self.default)(value) if isinstance(self.default, float) else value
        return value


@dataclass(frozen=True)
class ParamSet:
    """The declared parameters of one stage."""

    stage: str
    params: list = field(default_factory=list)

    def __post_init__(self):
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in stage {self.stage}")

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def resolve(self, values: Mapping | None = None, *, source: str | None = None) -> dict:
        """Defaults updated with *values*, every value checked; unknown names are errors."""
        out = self.defaults()
        prefix = f"{source}: " if source else ""
        by_name = {p.name: p for p in self.params}
        for name, value in (values or {}).items():
            if name not in by_name:
                known = ", ".join(sorted(by_name))
                raise ParameterError(f"{prefix}{self.stage}.{name}: unknown parameter; {self.stage} has: {known}")
            out[name] = by_name[name].check(value, f"{prefix}{self.stage}.{name}")
        return out

    def describe(self) -> str:
        """One line per parameter, for --help texts and the README."""
        lines = []
        for p in self.params:
            rng = ""
            if p.choices:
                rng = f" (one of {', '.join(map(str, p.choices))})"
            elif p.lo is not None or p.hi is not None:
                rng = f" ({p.lo} .. {p.hi})"
            lines.append(f"{self.stage}.{p.name} = {p.default!r}{rng}: {p.help}")
        return "\n".join(lines)


def resolve_stages(stages: Mapping[str, ParamSet], values: Mapping | None, *, source: str | None = None) -> dict:
    """Resolve nested ``{stage: {name: value}}`` (or flat ``{"stage.name": value}``) against declarations."""
    nested: dict = {}
    for key, value in (values or {}).items():
        if "." in key:
            stage, name = key.split(".", 1)
            nested.setdefault(stage, {})[name] = value
        elif isinstance(value, Mapping):
            nested.setdefault(key, {}).update(value)
        else:
            prefix = f"{source}: " if source else ""
            raise ParameterError(f"{prefix}{key}: expected a table of {key} parameters or 'stage.name = value'")
    prefix = f"{source}: " if source else ""
    for stage in nested:
        if stage not in stages:
            raise ParameterError(f"{prefix}{stage}: unknown stage; stages: {', '.join(sorted(stages))}")
    return {name: ps.resolve(nested.get(name), source=source) for name, ps in stages.items()}
