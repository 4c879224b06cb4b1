"""Retention policies: which versions to keep, and gc, which removes the rest.

A policy is a set of keep rules; a version survives if any rule keeps it:

* ``keep-last=N``     the N newest versions (backups aside)
* ``keep-best=K``     the K best by the model's metric (``amber model set --best-metric``)
* ``keep-every=N``    per iteration milestone (0, N, 2N, …) the first version to reach it
* ``keep-aliased``    every version carrying an alias (always true: gc never deletes one)
* ``keep-backups=N``  the N newest backups; without it backups are never rotated

Versions carrying any alias (``latest`` and ``best`` included) are always kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from amber.catalog import aliases as alias_rules
from amber.errors import InvalidInput
from amber.types import Version

_RULE = re.compile(r"^(keep-last|keep-best|keep-every|keep-backups)=(\d+)\Z|^(keep-aliased)\Z")


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    keep_best: int | None = None
    keep_every: int | None = None
    keep_backups: int | None = None
    keep_aliased: bool = True

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Parse ``"keep-last=5,keep-best=3,keep-aliased"``."""
        values: dict[str, int | bool] = {}
        for part in (p.strip() for p in text.split(",")):
            match = _RULE.match(part)
            if not match:
                raise InvalidInput(
                    f"'{part}' is not a retention rule; use keep-last=N, keep-best=N, keep-every=N, "
                    "keep-backups=N or keep-aliased, separated by commas"
                )
            if match.group(3):
                values["keep_aliased"] = True
            else:
                values[match.group(1).replace("-", "_")] = int(match.group(2))
        policy = cls(**values)  # type: ignore[arg-type]
        policy.check()
        return policy

    def check(self) -> None:
        if self.keep_every is not None and self.keep_every <= 0:
            raise InvalidInput("keep-every needs a positive number of iterations")
        rules = (self.keep_last, self.keep_best, self.keep_every, self.keep_backups)
        if all(v is None for v in rules) and not self.keep_aliased:
            raise InvalidInput("a retention policy must keep something")

    def __str__(self) -> str:
        parts = [
            f"{name.replace('_', '-')}={value}"
            for name, value in (
                ("keep_last", self.keep_last),
                ("keep_best", self.keep_best),
                ("keep_every", self.keep_every),
                ("keep_backups", self.keep_backups),
            )
            if value is not None
        ]
        return ",".join([*parts, "keep-aliased"])


@dataclass
class Plan:
    keep: dict[str, list[str]] = field(default_factory=dict)  # version id -> reasons
    delete: list[Version] = field(default_factory=list)


def plan(versions: list[Version], policy: Policy, best_order: list[str]) -> Plan:
    """Decide for one model's versions (any order) which stay and why."""
    out = Plan()

    def keep(v: Version, reason: str) -> None:
        out.keep.setdefault(v.id, []).append(reason)

    newest_first = sorted(versions, key=lambda v: v.number, reverse=True)
    normal = [v for v in newest_first if v.kind != "backup"]
    backups = [v for v in newest_first if v.kind == "backup"]
    for v in newest_first:
        if v.aliases:
            keep(v, "alias " + ",".join(v.aliases))
    for v in normal[: policy.keep_last or 0]:
        keep(v, "keep-last")
    if policy.keep_best:
        rank = {vid: n for n, vid in enumerate(best_order)}
        for v in sorted((v for v in normal if v.id in rank), key=lambda v: rank[v.id])[: policy.keep_best]:
            keep(v, "keep-best")
    if policy.keep_every:
        milestones: dict[int, Version] = {}
        for v in sorted((v for v in normal if v.iteration is not None), key=lambda v: (v.iteration, -v.number)):
            milestones.setdefault((v.iteration or 0) // policy.keep_every, v)
        for v in milestones.values():
            keep(v, "keep-every")
    if policy.keep_backups is None:
        for v in backups:
            keep(v, "backup")
    else:
        for v in backups[: policy.keep_backups]:
            keep(v, "keep-backups")
    out.delete = [v for v in newest_first if v.id not in out.keep]
    return out


def best_order(cat: object, model_id: int, settings: dict[str, object], needed: bool) -> list[str]:
    metric = settings.get("best_metric")
    if not metric:
        if needed:
            raise InvalidInput(
                "keep-best needs the model's best metric",
                hint="set one with: amber model set MODEL --best-metric NAME --mode min",
            )
        return []
    return alias_rules.best_by_metric(cat, model_id, str(metric), str(settings.get("mode", "min")), 1 << 30)  # type: ignore[arg-type]
