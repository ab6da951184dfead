"""A grid's progress, whatever the executor: on a terminal, a bar for the grid and one per
running work, side by side; in logs (CI, a file), one line per finished work on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from medbench.engine.work import JobOutcome, Status, Work

#: What a work's bar sends its display: (kind, value, postfix); kind "epochs" (value: epochs
#: done since the last message) or "total" (value: the epochs the work will train).
Message = tuple[str, int, "str | None"]


def report_line(name: str, outcome: JobOutcome, done: int, total: int) -> None:
    """Without progress bars (logs, CI): one line per finished job or trial on stderr."""
    print(f"[{done:>{len(str(total))}}/{total}] {outcome.line(name)}", file=sys.stderr, flush=True)


class SlotBar:
    """A stand-in for the tqdm bar of one running work (what the ``Progress`` handler
    advances): it sends each update to the display, in this process or from a worker process."""

    def __init__(self, send: Callable[[Message], None]) -> None:
        self.send = send

    @property
    def total(self) -> None:
        return None

    @total.setter
    def total(self, epochs: int) -> None:
        self.send(("total", epochs, None))

    def update(self, n: int = 1) -> None:
        self.send(("epochs", n, None))

    def set_postfix(self, **values: Any) -> None:
        self.send(("epochs", 0, ", ".join(f"{k}={v}" for k, v in values.items())))

    def close(self) -> None:
        pass


class Display:
    """``total`` works so far (each study's next trial adds one: :meth:`more`), ``slots`` of
    which may show their epochs at once; ``bars``: tqdm bars (a terminal), else lines."""

    def __init__(self, total: int, label: str, slots: int, bars: bool) -> None:
        self.total, self.done, self.bars = total, 0, bars
        self.grid = None
        self.jobs: list[Any] = []
        if bars:
            self.grid = tqdm(total=total, desc=label, unit="run", position=0)
            self.jobs = [
                tqdm(total=1, desc="waiting", unit="epoch", position=i + 1, leave=False)
                for i in range(slots)
            ]

    def bar(self, slot: int) -> SlotBar | None:
        """The bar a work running in ``slot`` of this process advances (None in logs)."""
        if not self.jobs:
            return None
        return SlotBar(lambda message: self.receive(slot, message))

    def more(self, n: int) -> None:
        """``n`` works were added (a tuning study's next trial, its job)."""
        self.total += n
        if self.grid is not None and n:
            self.grid.total = self.total
            self.grid.refresh()

    def started(self, slot: int, work: Work) -> None:
        if slot < len(self.jobs):
            self.jobs[slot].reset(total=work.spec.config.train.epochs)
            self.jobs[slot].set_description(work.name)

    def receive(self, slot: int, message: Message) -> None:
        """What the bar of the work in ``slot`` sent."""
        kind, value, postfix = message
        if slot >= len(self.jobs):
            return
        bar = self.jobs[slot]
        if kind == "total":
            bar.total = value
            bar.refresh()
            return
        bar.update(value)
        if postfix:
            bar.set_postfix_str(postfix)

    def finished(self, name: str, outcome: JobOutcome) -> None:
        self.done += 1
        if self.grid is None:
            report_line(name, outcome, self.done, self.total)
            return
        self.grid.update(1)
        if outcome.status == Status.FAILED:
            self.grid.write(f"medbench: warning: {name} failed: {outcome.reason}")

    def close(self) -> None:
        for bar in [*self.jobs, self.grid]:
            if bar is not None:
                bar.close()
