"""What an expansion does to existing instances (pure): a table of cases, no database."""

import pytest

from minimap.rules.mapping import Existing, ExpansionPlan, plan_expansion
from minimap.states import TIState

W, OK, F, R, Q = TIState.SCHEDULED, TIState.SUCCESS, TIState.FAILED, TIState.RUNNING, TIState.QUEUED


def old(*states: TIState, args: str = "a") -> list[Existing]:
    return [Existing(i, s, f"{args}{i}") for i, s in enumerate(states)]


CASES = [
    ("first expansion replaces the placeholder",
     [Existing(-1, W, None)], ["a0", "a1", "a2"],
     ExpansionPlan(drop_placeholder=True, add=(0, 1, 2))),
    ("the placeholder mapped over nothing is skipped",
     [Existing(-1, W, None)], [],
     ExpansionPlan(skip=True)),
    ("re-expansion to the same items queues the waiting ones, arguments unchanged",
     old(W, W, W), ["a0", "a1", "a2"],
     ExpansionPlan(queue=(0, 1, 2))),
    ("re-expansion to fewer items removes the waiting ones past the end",
     old(W, W, W, W), ["a0", "a1"],
     ExpansionPlan(queue=(0, 1), remove=(2, 3))),
    ("re-expansion to more items adds the new indexes",
     old(W, W), ["a0", "a1", "a2", "a3"],
     ExpansionPlan(add=(2, 3), queue=(0, 1))),
    ("new arguments are written only where they changed",
     old(W, W, W), ["a0", "b1", "a2"],
     ExpansionPlan(queue=(0, 1, 2), new_args=(1,))),
    ("what finished or runs is kept, even past the end",
     old(OK, W, R, F, Q, W), ["a0", "a1"],
     ExpansionPlan(queue=(1,), remove=(5,), keep=(0, 2, 3, 4))),
    ("re-expansion to nothing removes every waiting index and keeps the rest",
     old(OK, W), [],
     ExpansionPlan(remove=(1,), keep=(0,))),
]  # fmt: skip


@pytest.mark.parametrize(("name", "before", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_expansion(name: str, before: list[Existing], new: list[str], expected: ExpansionPlan) -> None:
    assert plan_expansion(before, new) == expected


def test_every_index_below_the_new_length_exists_or_is_added() -> None:
    before = old(OK, W, F, W, W)
    for n in range(8):
        plan = plan_expansion(before, [f"a{i}" for i in range(n)])
        accounted = set(plan.add) | set(plan.queue) | set(plan.keep)
        assert set(range(n)) <= accounted
        assert not set(plan.add) & {e.map_index for e in before}
        assert set(plan.remove) == {i for i in (1, 3, 4) if i >= n}
