"""The Repo's curation half: aliases, model rules, retention and gc, lineage, edits, usage."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amber.catalog import aliases as alias_rules
from amber.catalog import queries
from amber.errors import InvalidInput, Refused
from amber.ids import check_name
from amber.ops import labels, locks, manifest
from amber.ops.context import Context
from amber.types import Version

if TYPE_CHECKING:
    from amber.ops import retention

# Deleting, retention and materialising are imported by the methods that use them,
# so opening a repository to read it does not load them.

MODES = ("min", "max")


@dataclass(frozen=True)
class GcResult:
    deleted: list[Version]
    kept: dict[str, list[str]]  # ref -> reasons
    freed_bytes: int
    orphans_removed: int = 0
    dry_run: bool = True


@dataclass(frozen=True)
class ModelSettings:
    best_metric: str | None = None
    mode: str = "min"
    protect: list[str] = field(default_factory=list)
    retention: str | None = None


class Curation:
    _ctx: Context

    def _resolve(self, text: str) -> Version:
        raise NotImplementedError

    def _model_row(self, name: str) -> Any:
        raise NotImplementedError

    def set_alias(self, ref: str, name: str) -> Version:
        """Point alias ``name`` of the version's model at version ``ref`` (moving it if it exists)."""
        version = self._resolve(ref)
        labels.set_alias(self._ctx, version, name)
        return self._resolve(version.id)

    def remove_alias(self, model: str, name: str) -> None:
        """Remove alias ``name`` (removing ``best`` returns it to the model's metric rule)."""
        labels.remove_alias(self._ctx, self._model_row(model)["id"], model, name)

    def model_settings(self, model: str) -> ModelSettings:
        s = alias_rules.settings(self._ctx.catalog, self._model_row(model)["id"])
        return ModelSettings(s.get("best_metric"), s.get("mode", "min"), list(s.get("protect", [])), s.get("retention"))

    def set_model(
        self,
        model: str,
        *,
        best_metric: str | None = None,
        mode: str | None = None,
        protect: Sequence[str] = (),
        unprotect: Sequence[str] = (),
        retention: str | None = None,
    ) -> ModelSettings:
        """Change a model's rules: its best metric and mode, protected aliases, retention policy."""
        row = self._model_row(model)
        current = self.model_settings(model)
        if mode is not None and mode not in MODES:
            raise InvalidInput(f"--mode must be 'min' or 'max', not '{mode}'")
        for name in protect:
            check_name(name, "alias name")
        changes: dict[str, Any] = {}
        if best_metric is not None:
            changes["best_metric"] = best_metric or None
        if mode is not None:
            changes["mode"] = mode
        if protect or unprotect:
            kept = [p for p in current.protect if p not in unprotect]
            changes["protect"] = kept + [p for p in protect if p not in kept]
        if retention is not None:
            if retention:
                policy = retention_policy(retention)
                if policy.keep_best and not (best_metric or current.best_metric):
                    raise InvalidInput("keep-best needs a best metric", hint="add --best-metric NAME")
                changes["retention"] = str(policy)
            else:
                changes["retention"] = None
        labels.update_settings(self._ctx, row["id"], changes)
        return self.model_settings(model)

    def _check_protected(self, version: Version, force: bool) -> None:
        row = self._model_row(version.model)
        guarded = [a for a in version.aliases if a in labels.protected(self._ctx, row["id"])]
        if guarded and not force:
            raise Refused(
                f"{version.ref} carries the protected alias {', '.join(guarded)}",
                hint="move the alias first, or pass --force",
            )

    def gc(self, policy: retention.Policy | str, *, model: str | None = None, dry_run: bool = True) -> GcResult:
        """Delete the versions no keep rule keeps (``dry_run``: only say which, and the bytes freed)."""
        from amber.ops import delete as delete_op
        from amber.ops import retention

        if isinstance(policy, str):
            policy = retention_policy(policy)
        names = [model] if model else queries.model_names(self._ctx.catalog)
        with locks.store(self._ctx.amber, exclusive=not dry_run):
            doomed: list[Version] = []
            kept: dict[str, list[str]] = {}
            for name in names:
                row = self._model_row(name)
                versions = queries.versions(self._ctx.catalog, name)
                settings = alias_rules.settings(self._ctx.catalog, row["id"])
                order = retention.best_order(self._ctx.catalog, row["id"], settings, bool(policy.keep_best))
                plan = retention.plan(versions, policy, order)
                by_id = {v.id: v for v in versions}
                kept.update({by_id[vid].ref: reasons for vid, reasons in plan.keep.items()})
                doomed += plan.delete
            ids = [v.id for v in doomed]
            if dry_run:
                freed = sum(r["stored_size"] for r in queries.chunks_only_in(self._ctx.catalog, ids)) if ids else 0
                return GcResult(doomed, kept, freed)
            freed, _ = delete_op.delete_locked(self._ctx, ids)
            orphans = delete_op.sweep_orphans(self._ctx)
        return GcResult(doomed, kept, freed, orphans, dry_run=False)

    def _apply_retention(self, model: str) -> GcResult | None:
        rule = self.model_settings(model).retention
        return self.gc(rule, model=model, dry_run=False) if rule else None

    def lineage(self, model: str) -> list[Version]:
        """The model's versions, oldest first; each names its parent, so they form a tree."""
        self._model_row(model)
        return sorted(queries.versions(self._ctx.catalog, model), key=lambda v: v.number)

    def edit(
        self,
        ref: str,
        *,
        name: str | None = None,
        notes: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        remove_metadata: Sequence[str] = (),
    ) -> Version:
        """Change a version's label, notes, tags or metadata. Its files never change."""
        version = self._resolve(ref)
        if name is not None and not name.strip():
            raise InvalidInput("a version's name cannot be empty")
        if any(not t.strip() for t in add_tags):
            raise InvalidInput("tags must be non-empty")
        fields: dict[str, Any] = {"label": name, "notes": notes, "add_tags": list(add_tags)}
        fields |= {"remove_tags": list(remove_tags), "metadata": metadata or {}}
        fields["remove_metadata"] = list(remove_metadata)
        labels.edit(self._ctx, version, fields)
        return self._resolve(version.id)

    def use(self, ref: str, *, by: str | None = None) -> Version:
        """Record that ``by`` used version ``ref`` (shown by ``show`` as "used by")."""
        version = self._resolve(ref)
        labels.record_use(self._ctx, version, "use", by)
        return version

    def local_path(self, ref: str, *, used_by: str | None = None) -> str:
        """A local folder (or file) holding version ``ref``, materialised once into the cache."""
        version = self._resolve(ref)
        folder = os.path.join(self._ctx.amber, "cache", version.id)
        root, entries = manifest.decode(self._ctx.store.get(version.manifest))  # as restore.load_manifest
        if not os.path.isdir(folder):
            from amber.ops.materialize import materialize_new

            os.makedirs(os.path.dirname(folder), exist_ok=True)
            materialize_new(self._ctx, root, entries, folder, "cache")
        labels.record_use(self._ctx, version, "path", used_by)
        return os.path.join(folder, entries[0].path) if root == "file" else folder


def retention_policy(text: str) -> retention.Policy:
    from amber.ops import retention

    return retention.Policy.parse(text)
