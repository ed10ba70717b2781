"""Token-cost profiles: a model call's duration from its token counts (paper §4.1 latency).

A call's wall time is close to linear in its tokens (the authors' published 70B runs fit
``seconds = a + b·prompt + c·completion`` with R² ≈ 0.9999).  A ``CostProfile`` holds
four coefficients:

* ``fixed``       seconds per call (scheduling, sampling set-up);
* ``uncached``    seconds per prompt token that must be prefilled;
* ``cached``      seconds per prompt token served from a prefix (KV) cache;
* ``completion``  seconds per generated token.

With ``--timing PROFILE`` the simulated timeline charges every call
``fixed + uncached·(prompt - cached) + cached·cached_tokens + completion·completion_tokens``
instead of its measured wall time, so a run's latency depends on the tokens only: it is
the same on any machine, under any load, and two greedy runs give identical timelines.

Batches: in the real-time solver every question has its own simulated timeline (the
engine serving that question alone, as in the paper's one-question-at-a-time solver), so
each request of a batched call is charged ``seconds(...)`` on its own timeline, exactly as
if it had been sent alone.  ``batch_seconds`` gives the other reading -- what one batched
engine call would take (one fixed cost plus the token sums) -- for reporting engine time.

``cache_block`` (optional, tokens): an engine that caches prefixes in whole blocks
(vLLM) serves only whole blocks from its cache, so the modelled cache of a call
(``cachemodel.py``) is rounded down to a multiple of it; absent or 0, any count.

Profiles live in TOML tables ``[profiles.NAME]``: the packaged ``profiles.toml`` plus an
optional user file (``--profiles FILE``) whose entries add to or replace packaged ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .tomlfile import read_toml

PACKAGED_PROFILES = Path(__file__).resolve().parent / "profiles.toml"
MEASURED = "measured"
"""``--timing measured``: charge each call its measured wall time (no profile)."""
PER_MODEL = "model"
"""``--timing model``: charge each model's calls by the profile its models-file entry
names (``timing = "..."``; ``runconfig.role_profiles``)."""

COEFFICIENTS = ("fixed", "uncached", "cached", "completion")
_TEXT_KEYS = ("description", "machine", "source")


class ProfileError(ValueError):
    """A bad profile file or an unknown profile name (one line, for the user)."""


@dataclass(frozen=True)
class CostProfile:
    """Seconds per call, per uncached / cached prompt token and per completion token."""

    name: str
    fixed: float
    uncached: float
    cached: float
    completion: float
    description: str = ""
    machine: str = ""
    source: str = ""
    cache_block: int = 0  # the modelled cache counts whole blocks of this many tokens (0: any count)

    def seconds(self, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> float:
        """Modelled duration of one call (``cached_tokens`` is part of ``prompt_tokens``);
        never below 0 (a fitted fixed cost may be slightly negative, as the 8B profile's)."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        return max(0.0, self.fixed + self.uncached * (prompt_tokens - cached) + self.cached * cached
                   + self.completion * completion_tokens)

    def completion_seconds(self, completion: Any) -> float:
        """``seconds`` of a ``models.base.Completion`` (or anything with its token fields)."""
        return self.seconds(completion.prompt_tokens, completion.cached_tokens, completion.completion_tokens)

    def batch_seconds(self, usages: Sequence[tuple[int, int, int]]) -> float:
        """One batched engine call over ``(prompt, cached, completion)`` triples: one fixed
        cost plus the token costs summed over the batch."""
        if not usages:
            return 0.0
        tokens = sum(self.uncached * (p - min(max(c, 0), p)) + self.cached * min(max(c, 0), p) + self.completion * k
                     for p, c, k in usages)
        return max(0.0, self.fixed + tokens)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if not self.cache_block:
            del values["cache_block"]  # as saved before profiles could name a block
        return values

    def toml_entry(self) -> str:
        """The ``[profiles.NAME]`` table that defines this profile."""
        bare = all(ch.isalnum() or ch in "-_" for ch in self.name)  # a dotted name must be quoted in TOML
        lines = [f'[profiles.{self.name}]' if bare else f'[profiles."{_escape(self.name)}"]']
        for key in _TEXT_KEYS:
            value = getattr(self, key)  # its own fields, by name
            if value:
                lines.append(f'{key} = "{_escape(value)}"')
        for key in COEFFICIENTS:
            lines.append(f"{key} = {getattr(self, key):.6g}")  # its own fields, by name
        if self.cache_block:
            lines.append(f"cache_block = {self.cache_block}")
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def parse_profiles(data: dict[str, Any], source: str) -> dict[str, CostProfile]:
    """Check the ``profiles`` tables of a parsed TOML document."""
    tables = data.get("profiles")
    if not isinstance(tables, dict):
        raise ProfileError(f"{source}: no [profiles.NAME] tables")
    out: dict[str, CostProfile] = {}
    for name, table in tables.items():
        if name in (MEASURED, PER_MODEL):
            raise ProfileError(f"{source}: '{name}' is reserved (--timing {MEASURED} / --timing {PER_MODEL})")
        if not isinstance(table, dict):
            raise ProfileError(f"{source}: profiles.{name} is not a table")
        unknown = sorted(set(table) - set(COEFFICIENTS) - set(_TEXT_KEYS) - {"cache_block"})
        if unknown:
            raise ProfileError(f"{source}: profiles.{name}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key in COEFFICIENTS:
            value = table.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProfileError(f"{source}: profiles.{name}.{key} must be a number (seconds)")
            values[key] = float(value)
        for key in _TEXT_KEYS:
            value = table.get(key, "")
            if not isinstance(value, str):
                raise ProfileError(f"{source}: profiles.{name}.{key} must be a string")
            values[key] = value
        block = table.get("cache_block", 0)
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise ProfileError(f"{source}: profiles.{name}.cache_block must be a whole number of tokens >= 0")
        out[name] = CostProfile(name=name, **values, cache_block=block)
    return out


def read_profiles(path: str | Path) -> dict[str, CostProfile]:
    """The profiles of one TOML file."""
    data = read_toml(path, ProfileError, "profiles file")
    return parse_profiles(data, str(path))


def load_profiles(user_file: str | Path | None = None) -> dict[str, CostProfile]:
    """Packaged profiles, then the user file's (added, or replacing same names)."""
    profiles = read_profiles(PACKAGED_PROFILES)
    if user_file is not None:
        profiles.update(read_profiles(user_file))
    return profiles


def resolve(name: str | None, user_file: str | Path | None = None) -> CostProfile | None:
    """The profile called ``name``; ``None`` for measured timing (``None``/``"measured"``)."""
    if name is None or name == MEASURED:
        if user_file is not None:
            read_profiles(user_file)  # a bad file is an error even when unused
        return None
    profiles = load_profiles(user_file)
    if name not in profiles:
        raise ProfileError(f"unknown timing profile {name!r}; choose '{MEASURED}', '{PER_MODEL}' (each model's own) "
                           f"or one of: {', '.join(sorted(profiles))}")
    return profiles[name]


def names(user_file: str | Path | None = None) -> Iterable[str]:
    return sorted(load_profiles(user_file))
