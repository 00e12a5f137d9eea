"""The state tables walked whole: every move the tables allow passes the one door, every other
move raises, and the rules that pick a batch's move only ever pick allowed ones."""

from __future__ import annotations

import itertools

import pytest

from batchgate.domain.states import (
    BATCH_TRANSITIONS,
    FINISHED_ROWS,
    INITIAL_ROWS,
    OPEN_ROWS,
    RETRY_BATCH_MOVES,
    RETRY_ROW_MOVES,
    ROW_TRANSITIONS,
    TERMINAL,
    BatchStatus,
    RowState,
    advance,
    advance_row,
    on_cancel,
    on_finalize,
    on_finish,
    on_retry,
    on_validated,
    on_validation_failed,
    stamp_of,
)
from batchgate.errors import InvalidTransition
from batchgate.storage.rows import row_move_sql

BATCH_PAIRS = list(itertools.product(BatchStatus, BatchStatus))
ROW_PAIRS = list(itertools.product(RowState, RowState))


@pytest.mark.parametrize(("current", "target"), BATCH_PAIRS)
def test_every_batch_move_is_allowed_exactly_when_the_table_says(
    current: BatchStatus, target: BatchStatus
) -> None:
    if target in BATCH_TRANSITIONS[current]:
        assert advance(current, target) is target
    else:
        with pytest.raises(InvalidTransition) as err:
            advance(current, target)
        assert (err.value.current, err.value.target) == (current.value, target.value)


@pytest.mark.parametrize(("current", "target"), ROW_PAIRS)
def test_every_row_move_is_allowed_exactly_when_the_table_says(
    current: RowState, target: RowState
) -> None:
    if target in ROW_TRANSITIONS[current]:
        assert advance_row(current, target) is target
        sql = row_move_sql(current, target, "", "batch_id = :b")
        assert f"state = '{target.value}'" in sql and f"state = '{current.value}'" in sql
    else:
        with pytest.raises(InvalidTransition, match="request row"):
            advance_row(current, target)
        with pytest.raises(InvalidTransition):
            row_move_sql(current, target, "", "batch_id = :b")


def test_a_move_to_one_of_several_states_checks_each_and_takes_the_state_as_a_parameter() -> None:
    sql = row_move_sql(RowState.LEASED, (RowState.SUCCEEDED, RowState.FAILED), "", "line = ?")
    assert sql.startswith("UPDATE requests SET state = ? WHERE line = ?")
    assert sql.endswith("AND state = 'leased'")
    with pytest.raises(InvalidTransition):
        row_move_sql(RowState.LEASED, (RowState.SUCCEEDED, RowState.CANCELED), "", "line = ?")


def test_the_tables_cover_every_state_and_ended_states_go_nowhere_but_to_a_retry() -> None:
    assert set(BATCH_TRANSITIONS) == set(BatchStatus)
    assert set(ROW_TRANSITIONS) == set(RowState)
    assert (
        {s: BATCH_TRANSITIONS[s] for s in TERMINAL if BATCH_TRANSITIONS[s]}
        == (RETRY_BATCH_MOVES)
        == {BatchStatus.COMPLETED: {BatchStatus.IN_PROGRESS}}
    )
    assert (
        {s: ROW_TRANSITIONS[s] for s in FINISHED_ROWS if ROW_TRANSITIONS[s]}
        == (RETRY_ROW_MOVES)
        == {RowState.FAILED: {RowState.QUEUED}}
    )
    assert set(RowState) == OPEN_ROWS | FINISHED_ROWS and not OPEN_ROWS & FINISHED_ROWS
    assert {RowState.QUEUED} | FINISHED_ROWS >= INITIAL_ROWS
    # Every state is reachable from where a batch or a row starts.
    for table, starts in (
        (BATCH_TRANSITIONS, {BatchStatus.VALIDATING}),
        (ROW_TRANSITIONS, INITIAL_ROWS),
    ):
        seen, todo = set(starts), list(starts)
        while todo:
            for nxt in table[todo.pop()]:  # type: ignore[index]
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(table)


@pytest.mark.parametrize("current", list(BatchStatus))
def test_the_rules_pick_only_allowed_moves(current: BatchStatus) -> None:
    """Each rule, from each status, stays (None) or picks a move the table allows, or the table
    refuses it (which then raises at the door): a cancel of an ended batch is a 409."""
    rules = [on_cancel, on_validated, on_validation_failed, on_finalize, on_finish(True),
             on_finish(False)]  # fmt: skip
    for rule in rules:
        target = rule(current)
        if target is not None and target not in BATCH_TRANSITIONS[current]:
            with pytest.raises(InvalidTransition):
                advance(current, target)
    # A retry refuses by itself where the table would let a wrong move through (validating
    # -> in_progress is ingest's move, not a retry's).
    if current in (BatchStatus.COMPLETED, BatchStatus.IN_PROGRESS):
        target = on_retry(current)
        assert target is None or advance(current, target) is target
    else:
        with pytest.raises(InvalidTransition):
            on_retry(current)


def test_the_rules_say_what_the_domain_says() -> None:
    s = BatchStatus
    assert on_cancel(s.IN_PROGRESS) is s.CANCELLING and on_cancel(s.CANCELLED) is None
    assert on_cancel(s.CANCELLING) is None
    assert on_validated(s.VALIDATING) is s.IN_PROGRESS and on_validated(s.CANCELLING) is None
    assert on_validation_failed(s.VALIDATING) is s.FAILED
    assert on_validation_failed(s.CANCELLING) is s.CANCELLED  # the cancel wins
    assert on_finalize(s.IN_PROGRESS) is s.FINALIZING and on_finalize(s.CANCELLING) is None
    assert on_finish(True)(s.FINALIZING) is s.EXPIRED
    assert on_finish(False)(s.FINALIZING) is s.COMPLETED
    assert on_finish(False)(s.CANCELLING) is s.CANCELLED  # a cancelling batch ends cancelled
    assert stamp_of(s.CANCELLED) == "cancelled_at"
    assert on_retry(s.COMPLETED) is s.IN_PROGRESS and on_retry(s.IN_PROGRESS) is None


def test_no_status_literal_is_typed_into_storage_sql() -> None:
    """States reach SQL only from the enums (``storage/sqltext.py``): no quoted state name
    stands in a storage module's source."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "src" / "batchgate" / "storage"
    names = {s.value for s in BatchStatus} | {s.value for s in RowState}
    found = [
        f"{p.name}: '{n}'"
        for p in root.glob("*.py")
        if p.name != "schema.py"  # the partial indexes' predicates, mirrored by migrations
        for n in names
        if f"'{n}'" in p.read_text()
    ]
    assert found == []
