from __future__ import annotations

import enum

import pytest

from config.transitions import IllegalTransition, Machine


class Door(enum.StrEnum):
    OPEN = "open"
    SHUT = "shut"
    LOCKED = "locked"


class Move(enum.StrEnum):
    CLOSE = "close"
    OPEN = "open"
    LOCK = "lock"


class IllegalDoorMove(IllegalTransition):
    pass


MACHINE = Machine("门", "door", Door, Move,
                  {(Move.CLOSE, Door.OPEN): Door.SHUT, (Move.OPEN, Door.SHUT): Door.OPEN,
                   (Move.LOCK, Door.SHUT): Door.LOCKED},
                  {Door.OPEN: "开着", Door.SHUT: "关着", Door.LOCKED: "锁着"},
                  {Move.CLOSE: "关门", Move.OPEN: "开门", Move.LOCK: "上锁"}, IllegalDoorMove)


def test_legal_moves_follow_the_table() -> None:
    assert MACHINE.apply("open", "close") is Door.SHUT
    assert MACHINE.apply(Door.SHUT, Move.LOCK) is Door.LOCKED
    assert MACHINE.allowed(Door.SHUT) == [Move.OPEN, Move.LOCK]
    assert MACHINE.can("open", "close") and not MACHINE.can("locked", "open")


def test_illegal_move_names_what_is_allowed_in_both_languages() -> None:
    with pytest.raises(IllegalDoorMove) as err:
        MACHINE.apply(Door.OPEN, Move.LOCK)
    assert err.value.zh == "门处于“开着”状态，不能上锁；可执行：关门"
    assert err.value.en == "cannot lock a door that is open; allowed: close"
    with pytest.raises(IllegalDoorMove) as err:
        MACHINE.apply(Door.LOCKED, Move.OPEN)
    assert "可执行：无" in err.value.zh and err.value.en.endswith("allowed: none")


def test_a_given_reason_replaces_the_default_message() -> None:
    exc = IllegalDoorMove(Move.OPEN, Door.LOCKED, "钥匙丢了", "the key is lost")
    assert (exc.zh, exc.en, str(exc)) == ("钥匙丢了", "the key is lost", "the key is lost")
