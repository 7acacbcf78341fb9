"""Trigger rules against Airflow's semantics, one row per case."""

import pytest

from minimap.rules.triggerrules import UpstreamCounts, Verdict, evaluate

W, R, S, UF = Verdict.WAIT, Verdict.RUN, Verdict.SKIP, Verdict.UPSTREAM_FAILED


def c(total: int, success: int = 0, skipped: int = 0, failed: int = 0, upstream_failed: int = 0) -> UpstreamCounts:
    return UpstreamCounts(total, success, skipped, failed, upstream_failed)


CASES = [
    # rule, counts, verdict
    ("all_success", c(3, 3), R),
    ("all_success", c(3, 2), W),
    ("all_success", c(3, 1, failed=1), UF),  # fails fast: does not wait for the third
    ("all_success", c(3, 2, upstream_failed=1), UF),
    ("all_success", c(3, 2, skipped=1), S),
    ("all_success", c(0), R),
    ("all_failed", c(2, failed=1, upstream_failed=1), R),
    ("all_failed", c(2, 1, failed=1), S),
    ("all_failed", c(2, failed=1), W),
    ("all_done", c(3, 1, 1, 1), R),
    ("all_done", c(3, 1, 1), W),
    ("all_skipped", c(2, skipped=2), R),
    ("all_skipped", c(2, 1, skipped=1), S),
    ("one_success", c(3, 1), R),  # does not wait for the rest
    ("one_success", c(2, skipped=2), S),
    ("one_success", c(2, failed=2), UF),
    ("one_success", c(2, failed=1), W),
    ("one_failed", c(3, failed=1), R),
    ("one_failed", c(2, 2), S),
    ("one_failed", c(2, 1), W),
    ("one_done", c(3, 1), R),
    ("one_done", c(3, failed=1), R),
    ("one_done", c(2, skipped=2), S),
    ("none_failed", c(3, 2, 1), R),
    ("none_failed", c(3, 2, failed=1), UF),
    ("none_failed", c(3, 2), W),
    ("none_failed_min_one_success", c(2, 1, 1), R),
    ("none_failed_min_one_success", c(2, skipped=2), S),
    ("none_failed_min_one_success", c(2, 1, upstream_failed=1), UF),
    ("none_skipped", c(2, 1, failed=1), R),
    ("none_skipped", c(2, 1, skipped=1), S),
    ("none_skipped", c(2, 1), W),
    ("always", c(5), R),
]


@pytest.mark.parametrize(("rule", "counts", "verdict"), CASES)
def test_trigger_rule(rule: str, counts: UpstreamCounts, verdict: Verdict) -> None:
    assert evaluate(rule, counts) is verdict
