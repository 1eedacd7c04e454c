"""Two launches that return the same task id must not leave a request open forever."""

import itertools

import trio

from fleetactor import FleetConfig, Job, open_fleet


class PairedIdProvisioner:
    """Backend that returns one task id for every two client tokens. Each task runs 10 s.

    A buggy backend or adapter can do this. The fleet must still end every
    request once the shared task is STOPPED, or fail it with a clear error.
    """

    def __init__(self):
        self.ends_at = {}
        self.by_token = {}
        self.tokens = itertools.count()

    async def launch(self, job, *, client_token):
        await trio.lowlevel.checkpoint()
        if client_token not in self.by_token:
            task_id = f"task-{next(self.tokens) // 2}"
            self.ends_at.setdefault(task_id, trio.current_time() + 10)
            self.by_token[client_token] = task_id
        return self.by_token[client_token]

    async def list_running(self):
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        return [task_id for task_id, ends_at in self.ends_at.items() if now < ends_at]

    async def describe(self, task_ids):
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        statuses = {}
        for task_id in task_ids:
            if task_id not in self.ends_at:
                statuses[task_id] = "MISSING"
            elif now >= self.ends_at[task_id]:
                statuses[task_id] = "STOPPED"
            else:
                statuses[task_id] = "RUNNING"
        return statuses


async def test_shared_task_id_ends_every_request(autojump_clock):
    config = FleetConfig(max_workers=4, reconcile_interval=1, shutdown_timeout=5, seed=1, fleet_id="collide")
    outcomes = []
    async with open_fleet(PairedIdProvisioner(), config) as fleet:
        tickets = [await fleet.submit(Job(key=f"job-{index}")) for index in range(8)]

        async def wait(ticket):
            try:
                await ticket.wait_finished()
                outcomes.append("finished")
            except Exception as error:  # noqa: BLE001 - a clear failure is also an end
                outcomes.append(type(error).__name__)

        with trio.move_on_after(600):
            async with trio.open_nursery() as nursery:
                for ticket in tickets:
                    nursery.start_soon(wait, ticket)
        statistics = fleet.statistics()

    assert len(outcomes) == 8, f"{8 - len(outcomes)} of 8 requests never ended"
    assert statistics.active == 0
