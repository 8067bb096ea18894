"""`python -m cup_core verify`: every entry of an experiment checked to its weights' SHA-256, broken ones
reported and (unless asked not to) removed, and the tables rebuilt from what is valid.

A page rerun never hashes weights (knowing what is cached costs metadata, see cache.py); this is the
explicit check, for a cache copied from elsewhere or one a user suspects. Removing a broken entry is the
repair: the next sweep recomputes it, as it would have on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .experiment import ROLES, Experiment


@dataclass(frozen=True)
class Finding:
    """One broken entry: its folder, what is wrong, and whether it was removed."""

    entry: Path
    problem: str
    removed: bool


@dataclass(frozen=True)
class Verification:
    checked: int  # entries looked at (reference models and point folders)
    findings: tuple[Finding, ...]
    tables_rebuilt: bool
    not_computed: tuple[Path, ...] = ()  # reference models with no folder at all: missing, not damage

    @property
    def ok(self) -> bool:
        """No damage: a reference that is simply not computed yet is missing (a sweep computes it), not broken."""
        return not self.findings


def verify_experiment(experiment: Experiment, repair: bool = True) -> Verification:
    """Checks every reference model and point folder of `experiment` (record, content, weights' size and
    SHA-256), each under its lock so that a running sweep's entries are never judged half-written. With
    `repair`, broken entries are removed and results.csv / references.csv rewritten from the valid ones (and
    where they are missing or unreadable: readers show them from the records but never rewrite them)."""
    if repair:
        experiment.refuse_links()
    findings: list[Finding] = []
    not_computed: list[Path] = []
    checked = 0
    for role in experiment.roles:
        entry = experiment.reference_entry(role)
        if not os.path.lexists(entry):  # never written (a link or a file in its place is judged below)
            not_computed.append(entry)
            continue
        checked += 1
        with cache.locked(entry):
            try:
                cache.check_entry(entry, experiment.reference_key(role), experiment.reference_check,
                                  verify_weights=True)
            except cache.BrokenEntry as err:
                findings.append(_broken(entry, err, repair))
    for folder in sorted((experiment.root / "models").glob("*/")):
        if folder.name not in experiment.roles:
            checked += 1
            why = "a reference this experiment does not have" if folder.name in ROLES else "not a reference model"
            findings.append(_broken(folder, cache.BrokenEntry(f"{folder}: {why}"), repair, lock=True))
    for entry, _ in experiment.point_entries():
        checked += 1
        with cache.locked(entry):
            try:
                record = experiment.point_record_at(entry)
                cache.check_entry(entry, record["key"], experiment.point_check, verify_weights=True)
            except cache.BrokenEntry as err:
                findings.append(_broken(entry, err, repair))
    # The tables are rewritten here, not by a reader: after a removal, and where results.csv is missing beside
    # points (an interrupted sweep) or either table cannot be read (Experiment.damaged_tables).
    rebuilt = (repair and bool(findings or experiment.damaged_tables())
               and (experiment.root / "config.json").exists())
    if rebuilt:
        experiment.write_tables()
    return Verification(checked, tuple(findings), rebuilt, tuple(not_computed))


def _broken(entry: Path, err: cache.BrokenEntry, repair: bool, lock: bool = False) -> Finding:
    if not repair:
        return Finding(entry, str(err), False)
    removing = "removing (the next sweep recomputes it)"
    if lock:
        with cache.locked(entry):
            cache.discard(entry, err, removing)
    else:
        cache.discard(entry, err, removing)
    return Finding(entry, str(err), True)
