"""The one scheduling loop, on a scripted executor: queue, follow, retries, interrupts, lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from medbench.engine.executors.loop import run_works
from medbench.engine.jobs import Job
from medbench.engine.work import JobOutcome, Status, Work


@dataclass
class Spec:
    name: str
    ends: list[tuple[Status, bool]]  # (status, retryable) of each attempt, in turn
    ran: list[str] = field(default_factory=list)  # shared log of what ran, in order


def _run(spec: Spec, bar=None) -> JobOutcome:
    spec.ran.append(spec.name)
    status, retryable = spec.ends.pop(0)
    if status == "interrupt":
        raise KeyboardInterrupt
    reason = None if status == Status.FINISHED else "why"
    return JobOutcome(Job("m", spec.name, 0, 0), status, reason=reason, retryable=retryable)


def _close(spec: Spec, status: Status, reason: str) -> JobOutcome:
    return JobOutcome(Job("m", spec.name, 0, 0), status, reason=reason)


def work(name: str, ran: list[str], *ends: tuple[Status, bool]) -> Work:
    return Work(Spec(name, list(ends) or [(Status.FINISHED, False)], ran), _run, _close)


class Scripted:
    """Runs a submitted work when the loop waits, oldest first; ``capacity`` at once."""

    name = label = "scripted"
    slots = 0

    def __init__(self, capacity: int = 1, retries: int = 0) -> None:
        self.capacity, self.retries = capacity, retries
        self.submitted: dict[int, Work] = {}
        self.count = 0
        self.cancelled: list[str] = []
        self.closed = False

    def start(self, display) -> None:
        pass

    def submit(self, work: Work) -> int:
        self.count += 1
        self.submitted[self.count] = work
        return self.count

    def wait(self, handles, timeout=None):
        handle = handles[0]
        work = self.submitted[handle]
        outcome = work.run(work.spec)
        del self.submitted[handle]
        return [(handle, outcome)]

    def cancel(self, error=None):
        ended = [(h, w.close(w.spec, Status.KILLED, "stopped")) for h, w in self.submitted.items()]
        self.cancelled += [w.name for w in self.submitted.values()]
        self.submitted.clear()
        return ended

    def close(self) -> None:
        self.closed = True


def test_what_follows_runs_next_depth_first():
    ran: list[str] = []
    a, b = work("a", ran), work("b", ran)

    def follow(done: Work, outcome: JobOutcome) -> list[Work]:
        return [work("a1", ran), work("a2", ran)] if done.name == "a" else []

    outcomes, interrupted = run_works(Scripted(), [a, b], follow, progress=False)
    assert ran == ["a", "a1", "a2", "b"] and not interrupted
    assert [o.job.optimizer for o in outcomes] == ["a", "a1", "a2", "b"]


def test_a_retryable_failure_is_submitted_again_up_to_the_executors_retries():
    ran: list[str] = []
    failed, finished = (Status.FAILED, True), (Status.FINISHED, False)
    outcomes, _ = run_works(
        Scripted(retries=2), [work("a", ran, failed, failed, finished)], progress=False
    )
    assert ran == ["a"] * 3 and [o.status for o in outcomes] == [Status.FINISHED]

    ran.clear()
    outcomes, _ = run_works(Scripted(retries=1), [work("a", ran, failed, failed)], progress=False)
    assert ran == ["a"] * 2 and [o.status for o in outcomes] == [Status.FAILED]

    ran.clear()  # a divergence is not retryable: one attempt, whatever the retries
    diverged = (Status.FAILED, False)
    outcomes, _ = run_works(Scripted(retries=3), [work("a", ran, diverged)], progress=False)
    assert ran == ["a"] and [o.status for o in outcomes] == [Status.FAILED]


def test_a_killed_run_stops_the_grid_and_the_rest_is_cancelled():
    ran: list[str] = []
    executor = Scripted(capacity=2)
    works = [work("a", ran, (Status.KILLED, False)), work("b", ran), work("c", ran)]
    outcomes, interrupted = run_works(executor, works, progress=False)
    assert interrupted and ran == ["a"]  # b was submitted beside it, c never
    assert [(o.job.optimizer, o.status) for o in outcomes] == [
        ("a", Status.KILLED),
        ("b", Status.KILLED),
    ]
    assert executor.cancelled == ["b"] and executor.closed


def test_ctrl_c_while_waiting_stops_what_runs():
    ran: list[str] = []
    executor = Scripted(capacity=2)
    works = [work("a", ran, ("interrupt", False)), work("b", ran)]
    outcomes, interrupted = run_works(executor, works, progress=False)
    assert interrupted and executor.cancelled == ["a", "b"] and executor.closed
    assert {o.status for o in outcomes} == {Status.KILLED} and len(outcomes) == 2


def test_without_a_terminal_one_line_per_finished_work_with_the_total_so_far(capsys):
    ran: list[str] = []

    def follow(done: Work, outcome: JobOutcome) -> list[Work]:
        return [work("a1", ran)] if done.name == "a" else []

    run_works(Scripted(), [work("a", ran, (Status.FAILED, False)), work("b", ran)], follow, False)
    assert capsys.readouterr().err.splitlines() == [
        "[1/2] a                            FAILED: why",
        "[2/3] a1                           FINISHED",
        "[3/3] b                            FINISHED",
    ]
