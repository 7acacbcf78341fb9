"""Trigger rules (Airflow's names and semantics) as a pure function of upstream counts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

TRIGGER_RULES = (
    "all_success",
    "all_failed",
    "all_done",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
)


# Rules whose verdict can change with the number of upstream successes while an upstream instance is unfinished.
# For every other rule, counts without the successes give the same verdict whenever some upstream instance is
# unfinished (all_* wait, failures and skips are counted), so the scheduler need not count a million successes.
EARLY_ON_SUCCESS = frozenset({"all_failed", "all_skipped", "one_success", "one_done"})


class Verdict(Enum):
    """What a waiting task should do given its upstream instances."""

    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(frozen=True)
class UpstreamCounts:
    """How the upstream instances of a task stand; every mapped instance counts as one upstream."""

    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total


def _flagged(rule: str, c: UpstreamCounts) -> Verdict | None:
    """The state Airflow gives a task without running it, as soon as the counts make it certain."""
    failures = c.failed + c.upstream_failed
    if rule == "all_success":
        return Verdict.UPSTREAM_FAILED if failures else Verdict.SKIP if c.skipped else None
    if rule == "all_failed":
        return Verdict.SKIP if c.success or c.skipped else None
    if rule == "one_success" and c.all_done:
        return Verdict.SKIP if c.done == c.skipped else None if c.success else Verdict.UPSTREAM_FAILED
    if rule == "one_failed" and c.all_done and not failures:
        return Verdict.SKIP
    if rule == "one_done" and c.all_done and not (c.failed or c.success):
        return Verdict.SKIP
    if rule in ("none_failed", "none_failed_min_one_success") and failures:
        return Verdict.UPSTREAM_FAILED
    if rule == "none_failed_min_one_success" and c.skipped == c.total:
        return Verdict.SKIP
    if rule == "none_skipped" and c.skipped:
        return Verdict.SKIP
    if rule == "all_skipped" and (c.success or failures):
        return Verdict.SKIP
    return None


def _met(rule: str, c: UpstreamCounts) -> bool:
    """Whether the rule lets the task run now."""
    return {
        "all_success": c.success >= c.total,
        "all_failed": c.failed + c.upstream_failed >= c.total,
        "all_done": c.all_done,
        "all_skipped": c.skipped >= c.total,
        "one_success": c.success > 0,
        "one_failed": c.failed + c.upstream_failed > 0,
        "one_done": c.success + c.failed > 0,
        "none_failed": c.success + c.skipped >= c.total,
        "none_failed_min_one_success": c.success + c.skipped >= c.total,
        "none_skipped": c.all_done and c.skipped == 0,
        "always": True,
    }[rule]


def evaluate(rule: str, counts: UpstreamCounts) -> Verdict:
    """What a task with trigger rule `rule` does, given its upstream `counts`."""
    if rule == "always" or counts.total == 0:
        return Verdict.RUN
    flagged = _flagged(rule, counts)
    if flagged is not None:
        return flagged
    return Verdict.RUN if _met(rule, counts) else Verdict.WAIT
