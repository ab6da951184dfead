"""The log of a grid without a terminal, driven by a fake clock: never silent for a minute while
a job trains, and not flooded by fast epochs."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from types import SimpleNamespace

from medbench.engine.executors import display as display_module
from medbench.engine.executors.display import Display, SlotBar
from medbench.engine.jobs import Job
from medbench.engine.work import JobOutcome, Status, Work


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _work(optimizer: str, epochs: int) -> Work:
    config = SimpleNamespace(train=SimpleNamespace(epochs=epochs))
    job = Job("smallcnn", optimizer, 1, 0)
    spec = SimpleNamespace(job=job, name=job.run_name, config=config)
    return Work(spec, run=lambda spec, bar=None: None, close=lambda *a: None)


def _train(display: Display, clock: Clock, capsys, epoch_s: float, epochs: int, name: str):
    """Train one work with epochs of ``epoch_s`` seconds as the Progress handler reports them,
    the silence watch looking every 5 s; returns (time, line) of each line printed."""
    work = _work(name, epochs)
    display.started(0, work)
    bar = SlotBar(lambda message: display.receive(0, message))
    bar.total = epochs
    bar.update(0)
    lines: list[tuple[float, str]] = []
    done, step = 0, 5.0
    while done < epochs:
        clock.now += step
        if clock.now >= (done + 1) * epoch_s:
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{1 / done:.3f}", val_auc=f"{0.5 + done / 100:.3f}")
        display.tick()
        lines += [(clock.now, line) for line in capsys.readouterr().err.splitlines()]
    display.finished(work.name, JobOutcome(work.spec.job, Status.FINISHED))
    lines += [(clock.now, line) for line in capsys.readouterr().err.splitlines()]
    return lines


def test_long_epochs_still_give_a_line_a_minute(capsys):
    """ResNet-50 at paper scale: 150 s epochs; the log speaks at least once a minute."""
    clock = Clock()
    display = Display(total=1, label="grid", slots=1, bars=False, clock=clock, tick_every=None)
    lines = _train(display, clock, capsys, epoch_s=150, epochs=3, name="sam")
    times = [0.0] + [t for t, _ in lines]
    assert max(b - a for a, b in pairwise(times)) < 60
    said = [line.strip() for _, line in lines]
    assert "smallcnn/sam/fold1  epoch 1/3: loss=1.000, val_auc=0.510" in said
    assert "smallcnn/sam/fold1  epoch 1/3 training, 50 s since the last line" in said
    assert (
        "smallcnn/sam/fold1  epoch 2/3 training, 50 s since the last line "
        "(epoch 1: loss=1.000, val_auc=0.510)" in said
    )
    assert said[-1].startswith("[1/1] smallcnn/sam/fold1") and "FINISHED" in said[-1]
    display.close()


def test_fast_epochs_give_a_line_every_ten_seconds_at_most(capsys):
    clock = Clock()
    display = Display(total=2, label="grid", slots=1, bars=False, clock=clock, tick_every=None)
    lines = _train(display, clock, capsys, epoch_s=5, epochs=12, name="adam")
    epochs = [line.split()[2] for _, line in lines if " epoch " in line]
    assert epochs == ["2/12:", "4/12:", "6/12:", "8/12:", "10/12:", "12/12:"]
    times = [t for t, line in lines if " epoch " in line]
    assert min(b - a for a, b in pairwise(times)) >= display_module.EPOCH_LINE_S
    assert lines[0][1].startswith(
        "      smallcnn/adam/fold1  epoch 2/12: loss=0.500"
    )  # under [1/2]
    display.close()


def test_epoch_lines_of_a_resumed_job_count_from_its_checkpoint(capsys):
    clock = Clock()
    display = Display(total=1, label="grid", slots=1, bars=False, clock=clock, tick_every=None)
    display.started(0, _work("gcsam", 10))
    display.receive(0, ("epochs", 6, None))  # Progress.started: the epochs already done
    clock.now = 30
    display.receive(0, ("epochs", 1, None))
    display.receive(0, ("epochs", 0, "loss=0.2, val_auc=0.9"))
    assert (
        capsys.readouterr().err.strip() == "smallcnn/gcsam/fold1  epoch 7/10: loss=0.2, val_auc=0.9"
    )
    display.close()


def test_the_watch_thread_speaks_for_a_silent_job_and_stops_on_close(capsys, monkeypatch):
    """With a real thread (looking every 10 ms) and a clock that has moved a minute on."""
    monkeypatch.setattr(display_module, "SILENCE_S", 0.0)
    clock = Clock()
    display = Display(total=1, label="grid", slots=1, bars=False, clock=clock, tick_every=0.01)
    display.started(0, _work("adam", 4))
    clock.now = 61
    for _ in range(500):  # the thread's first look, however slow the machine
        if "training" in capsys.readouterr().err:
            break
        display.stop.wait(0.01)
    else:
        raise AssertionError("no line from the watch thread")
    display.close()
    assert not display.watch.is_alive()
