"""The reaper: lists running tasks and describes the ones a listing cannot settle.

It reads nothing from the ledger directly. After each listing it sends what
it learned to the actor, which replies with the task ids to describe.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import structlog
import trio

if TYPE_CHECKING:
    from fleetactor._config import FleetConfig

logger = structlog.get_logger("fleetactor.reaper")


class ReaperReport:
    """A reaper's listing on its way to the actor, and the actor's reply."""

    __slots__ = ("_replied", "describe")

    def __init__(self) -> None:
        self._replied = trio.Event()
        self.describe: list[str] = []

    def reply(self, describe: list[str]) -> None:
        self.describe = describe
        self._replied.set()

    async def wait(self) -> list[str]:
        await self._replied.wait()
        return self.describe


def _checked_listing(listing: Any) -> list[str]:
    if isinstance(listing, (str, bytes)) or not isinstance(listing, Collection):
        msg = f"provisioner.list_running returned {type(listing).__name__}; it must return a collection of task id strings"
        raise TypeError(msg)
    task_ids = list(listing)
    for task_id in task_ids:
        if not isinstance(task_id, str):
            msg = f"provisioner.list_running returned a task id of type {type(task_id).__name__}: {task_id!r}"
            raise TypeError(msg)
    return task_ids


async def run_reaper(provisioner: Any, inbox: trio.MemorySendChannel[Any], config: FleetConfig) -> None:
    """Reconcile every ``reconcile_interval`` seconds, starting at once, until cancelled."""
    from fleetactor._actor import Described, Listed, ListFailed

    async with inbox:
        deadline = trio.current_time()
        while True:
            report = ReaperReport()
            try:
                with trio.fail_after(config.provisioner_timeout):
                    listing = await provisioner.list_running()
                task_ids = _checked_listing(listing)
            except trio.TooSlowError:
                error_text = f"list_running timed out after {config.provisioner_timeout:g} s"
                await inbox.send(ListFailed(error_text, report))
            except Exception as error:  # noqa: BLE001 - the fleet fails closed on any listing error
                await inbox.send(ListFailed(f"{type(error).__name__}: {error}", report))
            else:
                await inbox.send(Listed(task_ids, report))

            to_describe = await report.wait()
            deadline += config.reconcile_interval

            # Tasks that left the listing but still stop are described again
            # every describe_interval until the next listing. While requests
            # wait, so are tasks a blind list never shows. A slot then frees
            # soon after STOPPED rather than up to a reconcile interval later.
            while to_describe:
                statuses = await _describe(provisioner, to_describe, config.provisioner_timeout)
                if not statuses:
                    break
                follow_up = ReaperReport()
                await inbox.send(Described(statuses, follow_up))
                to_describe = await follow_up.wait()
                next_describe = trio.current_time() + config.describe_interval
                if not to_describe or next_describe >= deadline:
                    break
                await trio.sleep_until(next_describe)

            await trio.sleep_until(max(deadline, trio.current_time()))


async def _describe(provisioner: Any, task_ids: list[str], timeout: float) -> dict[str, str]:
    try:
        with trio.fail_after(timeout):
            statuses = await provisioner.describe(task_ids)
        # An enum member's str() is its qualified name, so members become their value.
        return {
            str(task_id): status.value if isinstance(status, enum.Enum) else str(status)
            for task_id, status in dict(statuses).items()
        }
    except Exception as error:  # noqa: BLE001 - tasks stay counted and are described again next round
        logger.warning("describe.failed", error=f"{type(error).__name__}: {error}", tasks=len(task_ids))
        return {}
