"""A grid's progress, whatever the executor: on a terminal, a bar for the grid and one per
running work, side by side; in logs (CI, a file, a batch system), lines on stderr.

In logs each finished work gets a line, and each running work a line per epoch (job, epoch, loss
and validation AUC), at most one every ``EPOCH_LINE_S`` seconds per work so that fast epochs do
not flood the log; a work whose epochs are long gets a line after ``SILENCE_S`` seconds without
one, so that a log never stays silent for a minute while a job trains (at paper scale an epoch
of ResNet-50 takes minutes). Packed jobs relay their epochs from their worker processes.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from medbench.engine.work import JobOutcome, Status, Work

#: What a work's bar sends its display: (kind, value, postfix); kind "epochs" (value: epochs
#: done since the last message) or "total" (value: the epochs the work will train).
Message = tuple[str, int, "str | None"]

#: In logs: the least seconds between two epoch lines of one work.
EPOCH_LINE_S = 10.0
#: In logs: seconds without a line about a running work after which one says it still trains.
SILENCE_S = 50.0
#: In logs: how often running works are looked at for silence (SILENCE_S + TICK_S < 60 s).
TICK_S = 5.0


def report_line(name: str, outcome: JobOutcome, done: int, total: int) -> None:
    """Without progress bars (logs, CI): one line per finished job or trial on stderr."""
    print(f"[{done:>{len(str(total))}}/{total}] {outcome.line(name)}", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


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


@dataclass
class _Running:
    """What the log knows of one running work."""

    name: str
    total: int
    last_line: float  # when the last line about it was printed (or it started)
    epoch: int = 0
    metrics: str | None = None  # the last finished epoch's loss and validation AUC


class Display:
    """``total`` works so far (each study's next trial adds one: :meth:`more`), ``slots`` of
    which may show their epochs at once; ``bars``: tqdm bars (a terminal), else lines.

    ``clock`` and ``tick_every`` (seconds between looks for silent works; None: only when
    :meth:`tick` is called) are there for tests, which drive the log with a fake clock.
    """

    def __init__(
        self,
        total: int,
        label: str,
        slots: int,
        bars: bool,
        clock: Callable[[], float] = time.monotonic,
        tick_every: float | None = TICK_S,
    ) -> None:
        self.total, self.done, self.bars = total, 0, bars
        self.grid = None
        self.jobs: list[Any] = []
        self.clock = clock
        self.running: dict[int, _Running] = {}  # logs: slot -> its work
        self.lock = threading.Lock()  # logs: the silence watch prints from its own thread
        self.stop = threading.Event()
        self.watch: threading.Thread | None = None
        if bars:
            self.grid = tqdm(total=total, desc=label, unit="run", position=0)
            self.jobs = [
                tqdm(total=1, desc="waiting", unit="epoch", position=i + 1, leave=False)
                for i in range(slots)
            ]
        elif tick_every is not None and slots:
            self.watch = threading.Thread(
                target=self._watch, args=(tick_every,), name="medbench-progress", daemon=True
            )
            self.watch.start()

    def bar(self, slot: int) -> SlotBar | None:
        """The bar a work running in ``slot`` of this process advances."""
        return SlotBar(lambda message: self.receive(slot, message))

    def more(self, n: int) -> None:
        """``n`` works were added (a tuning study's next trial, its job)."""
        self.total += n
        if self.grid is not None and n:
            self.grid.total = self.total
            self.grid.refresh()

    def started(self, slot: int, work: Work) -> None:
        epochs = work.spec.config.train.epochs
        if slot < len(self.jobs):
            self.jobs[slot].reset(total=epochs)
            self.jobs[slot].set_description(work.name)
        elif not self.bars:
            with self.lock:
                self.running[slot] = _Running(work.name, epochs, self.clock())

    def receive(self, slot: int, message: Message) -> None:
        """What the bar of the work in ``slot`` sent."""
        if not self.bars:
            self._log_epoch(slot, message)
            return
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
            with self.lock:
                self.running = {k: w for k, w in self.running.items() if w.name != name}
                report_line(name, outcome, self.done, self.total)
            return
        self.grid.update(1)
        if outcome.status == Status.FAILED:
            self.grid.write(f"medbench: warning: {name} failed: {outcome.reason}")

    def close(self) -> None:
        self.stop.set()
        if self.watch is not None:
            self.watch.join()
        for bar in [*self.jobs, self.grid]:
            if bar is not None:
                bar.close()

    # -- logs -------------------------------------------------------------------------------------

    def _say(self, work: _Running, text: str) -> None:
        """One line about a running work, indented under the names of the finished ones."""
        indent = " " * (2 * len(str(self.total)) + 4)  # under the name of "[d/n] name"
        print(f"{indent}{work.name}  {text}", file=sys.stderr, flush=True)
        work.last_line = self.clock()

    def _log_epoch(self, slot: int, message: Message) -> None:
        kind, value, metrics = message
        with self.lock:
            work = self.running.get(slot)
            if work is None:
                return
            if kind == "total":
                work.total = value
                return
            work.epoch += value
            if metrics is None:  # the epoch's metrics follow in a message of their own
                return
            work.metrics = metrics
            if self.clock() - work.last_line >= EPOCH_LINE_S:
                self._say(work, f"epoch {work.epoch}/{work.total}: {metrics}")

    def tick(self) -> None:
        """A line for each running work nothing was said about for ``SILENCE_S`` seconds."""
        with self.lock:
            for work in self.running.values():
                silent = self.clock() - work.last_line
                if silent < SILENCE_S:
                    continue
                after = f" (epoch {work.epoch}: {work.metrics})" if work.metrics else ""
                self._say(
                    work,
                    f"epoch {work.epoch + 1}/{work.total} training, "
                    f"{_duration(silent)} since the last line{after}",
                )

    def _watch(self, every: float) -> None:
        while not self.stop.wait(every):
            self.tick()
