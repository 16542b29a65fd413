"""`optimistic_update`: lost races are retried from a fresh read, up to the one limit, with a
growing pause; everything else ends the update as it came. Nothing here sleeps for real."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aorta.errors import Conflict, ErrorCode, Invalid, Unavailable
from aorta.store import kept_changing, optimistic_update
from aorta.store.optimistic import ATTEMPTS, FIRST_PAUSE, MAX_PAUSE


class Race:
    """A document whose writes lose the first `losses` races; records reads, writes, pauses."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.reads = 0
        self.writes: list[int] = []
        self.pauses: list[float] = []

    async def read(self) -> int:
        self.reads += 1
        return self.reads

    async def write(self, state: int) -> str:
        self.writes.append(state)
        if len(self.writes) <= self.losses:
            raise Conflict("version moved on")
        return f"written from read {state}"

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def gave_up() -> Exception:
    return Conflict("it kept changing", code=ErrorCode.PAYLOAD_STORE_ERROR)


async def test_a_lost_race_is_tried_again_from_a_fresh_read() -> None:
    race = Race(losses=3)
    result = await optimistic_update(race.read, race.write, gave_up=gave_up, sleep=race.sleep)
    assert result == "written from read 4"
    assert race.writes == [1, 2, 3, 4]  # every write used the state read just before it
    assert len(race.pauses) == 3


async def test_it_gives_up_after_the_limit_with_the_callers_error() -> None:
    race = Race(losses=ATTEMPTS)
    with pytest.raises(Conflict) as raised:
        await optimistic_update(race.read, race.write, gave_up=gave_up, sleep=race.sleep)
    assert raised.value.code == ErrorCode.PAYLOAD_STORE_ERROR
    assert str(raised.value) == "it kept changing"
    assert isinstance(raised.value.__cause__, Conflict)  # the last lost race
    assert race.reads == len(race.writes) == ATTEMPTS
    assert len(race.pauses) == ATTEMPTS - 1  # none after the last try


async def test_one_win_on_the_last_try_is_enough() -> None:
    race = Race(losses=ATTEMPTS - 1)
    result = await optimistic_update(race.read, race.write, gave_up=gave_up, sleep=race.sleep)
    assert result == f"written from read {ATTEMPTS}"


async def test_other_errors_of_the_write_are_not_retried() -> None:
    race = Race(losses=0)

    async def unavailable(state: int) -> str:
        race.writes.append(state)
        raise Unavailable("store closed")

    with pytest.raises(Unavailable, match="store closed"):
        await optimistic_update(race.read, unavailable, gave_up=gave_up, sleep=race.sleep)
    assert (race.reads, race.writes, race.pauses) == (1, [1], [])


@pytest.mark.parametrize(
    "refusal", [Invalid("not allowed"), Conflict("already started", code=ErrorCode.JOB_STORE_ERROR)]
)
async def test_whatever_the_read_raises_ends_the_update_even_a_conflict(
    refusal: Exception,
) -> None:
    race = Race(losses=0)

    async def refuse() -> int:
        race.reads += 1
        raise refusal

    with pytest.raises(type(refusal)) as raised:
        await optimistic_update(refuse, race.write, gave_up=gave_up, sleep=race.sleep)
    assert raised.value is refusal
    assert (race.reads, race.writes, race.pauses) == (1, [], [])


async def pauses_of_a_lost_update(jitter: Callable[[], float] | None = None) -> list[float]:
    """The pauses an update that loses every race takes, with `jitter` (or the default)."""
    race = Race(losses=ATTEMPTS)
    with pytest.raises(Conflict):
        if jitter is None:
            await optimistic_update(race.read, race.write, gave_up=gave_up, sleep=race.sleep)
        else:
            await optimistic_update(
                race.read, race.write, gave_up=gave_up, sleep=race.sleep, jitter=jitter
            )
    return race.pauses


async def test_the_pause_ceiling_doubles_from_the_first_pause_up_to_the_cap() -> None:
    ceilings = await pauses_of_a_lost_update(lambda: 1.0)
    assert ceilings[0] == FIRST_PAUSE
    assert max(ceilings) == MAX_PAUSE
    growing = [pause for pause in ceilings if pause < MAX_PAUSE]
    assert growing == [FIRST_PAUSE * 2**n for n in range(len(growing))]
    assert ceilings == sorted(ceilings)


async def test_the_jitter_scales_each_pause_between_zero_and_its_ceiling() -> None:
    ceilings = await pauses_of_a_lost_update(lambda: 1.0)
    halves = await pauses_of_a_lost_update(lambda: 0.5)
    assert halves == [ceiling / 2 for ceiling in ceilings]
    drawn = await pauses_of_a_lost_update()
    assert all(0 <= d <= c for d, c in zip(drawn, ceilings, strict=True))


async def test_cancelled_during_a_pause_it_stops_at_once() -> None:
    race = Race(losses=ATTEMPTS)
    paused = asyncio.Event()

    async def sleep_until_cancelled(seconds: float) -> None:
        paused.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        optimistic_update(race.read, race.write, gave_up=gave_up, sleep=sleep_until_cancelled)
    )
    await paused.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (race.reads, race.writes) == (1, [1])


async def test_a_write_cancelled_midway_is_not_tried_again() -> None:
    race = Race(losses=0)
    writing = asyncio.Event()

    async def slow_write(state: int) -> str:
        race.writes.append(state)
        writing.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(
        optimistic_update(race.read, slow_write, gave_up=gave_up, sleep=race.sleep)
    )
    await writing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (race.reads, race.writes, race.pauses) == (1, [1], [])


def test_kept_changing_names_what_and_keeps_the_services_code() -> None:
    error = kept_changing("model 7f3a", code=ErrorCode.MODEL_STORE_ERROR)()
    assert isinstance(error, Conflict)
    assert error.code == ErrorCode.MODEL_STORE_ERROR
    assert str(error) == (
        f"model 7f3a kept changing while being updated ({ATTEMPTS} attempts); try again"
    )
