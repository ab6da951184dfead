"""Several jobs at once (executor.jobs_per_device): same results, same failures and interruptions."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from medbench.config import config_hash, load_config
from medbench.engine import executors
from medbench.engine.executors import display as display_module
from medbench.engine.executors import packed
from medbench.engine.executors.display import Display
from medbench.engine.executors.local import LocalExecutor
from medbench.engine.grid import run_grid
from medbench.engine.jobs import Job
from medbench.engine.work import JobOutcome, JobSpec, Status
from medbench.engine.worker import job_work
from medbench.errors import ConfigError
from tests.engine.conftest import child_runs, start_run

PINNED = ["train.threads=1", "data.n_folds=2"]  # 2 optimizers x 2 folds = 4 jobs


def _history(uri, run_id, metric="train_loss"):
    client = mlflow.MlflowClient(tracking_uri=uri)
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, metric))


def test_two_jobs_per_device_give_the_metrics_of_one_at_a_time(
    tiny_config, tmp_path, capsys, monkeypatch
):
    import shutil

    monkeypatch.setattr(display_module, "EPOCH_LINE_S", 0.0)  # every epoch gets its line in the log

    one = tiny_config(*PINNED)
    other = tmp_path / "packed.db"
    shutil.copy(one.tracking.uri.removeprefix("sqlite:///"), other)
    two = tiny_config(*PINNED, "executor.jobs_per_device=2", f"tracking.uri=sqlite:///{other}")
    assert config_hash(one) == config_hash(two)  # packing changes no result
    first = run_grid(one, progress=False)
    second = run_grid(two, progress=False)
    assert len(second.outcomes) == 4
    # without a terminal, each epoch of each job is a line, relayed from the packed workers too
    epochs = [
        line.split()[:3] for line in capsys.readouterr().err.splitlines() if " epoch " in line
    ]
    expected = [[o.job.run_name, "epoch", f"{e}/2:"] for o in first.outcomes for e in (1, 2)]
    assert sorted(epochs) == sorted(expected * 2)
    assert {o.status for o in first.outcomes + second.outcomes} == {Status.FINISHED}
    a, b = child_runs(one.tracking.uri, "tiny"), child_runs(two.tracking.uri, "tiny")
    cols = ["tags.mlflow.runName", *sorted(c for c in a if c.startswith("metrics.test_"))]
    cols += ["metrics.best_epoch", "params.init_seed", "params.data_seed"]
    assert a[cols].equals(b[cols]), (a[cols], b[cols])
    for (_, x), (_, y) in zip(a.iterrows(), b.iterrows(), strict=True):
        assert _history(one.tracking.uri, x["run_id"]) == _history(two.tracking.uri, y["run_id"])


def test_packed_tuning_runs_each_study_in_order_with_the_results_of_one_at_a_time(
    tiny_config, tmp_path
):
    """Trials come from ``follow``: each study's next trial, then its job, run in a free slot."""
    import shutil

    tune = ["tune.enabled=true", "tune.trials=2", "tune.epochs=2"]
    one = tiny_config(*PINNED, *tune)
    other = tmp_path / "packed.db"
    shutil.copy(one.tracking.uri.removeprefix("sqlite:///"), other)
    two = tiny_config(
        *PINNED, *tune, "executor.jobs_per_device=2", f"tracking.uri=sqlite:///{other}"
    )
    first = run_grid(one, progress=False)
    second = run_grid(two, progress=False)
    assert len(second.outcomes) == len(first.outcomes) == 4  # the jobs (trials are runs)
    assert {o.status for o in second.outcomes} == {Status.FINISHED}
    a, b = child_runs(one.tracking.uri, "tiny"), child_runs(two.tracking.uri, "tiny")
    a, b = (
        x.sort_values(["tags.mlflow.runName", "tags.medbench.trial"]).reset_index(drop=True)
        for x in (a, b)
    )
    cols = ["tags.mlflow.runName", "tags.medbench.trial", "params.lr", "params.rho"]
    cols += sorted(c for c in a if c.startswith("metrics.test_") or c == "metrics.val_auc")
    assert len(a) == 4 + 4 * 2
    assert a[cols].equals(b[cols]), (a[cols], b[cols])


def test_failures_are_recorded_and_the_grid_goes_on(tiny_config, tmp_path):
    """Diverging jobs end FAILED with the reason they have one at a time, and the others run."""
    import shutil

    one = tiny_config(*PINNED, "optimizer.lr=1e12")
    other = tmp_path / "packed.db"
    shutil.copy(one.tracking.uri.removeprefix("sqlite:///"), other)
    two = tiny_config(
        *PINNED,
        "optimizer.lr=1e12",
        "executor.jobs_per_device=2",
        f"tracking.uri=sqlite:///{other}",
    )
    ended = [
        {o.job.run_name: (o.status, o.reason) for o in run_grid(c, progress=False).outcomes}
        for c in (one, two)
    ]
    assert ended[0] == ended[1] and len(ended[1]) == 4
    assert any(status == Status.FAILED for status, _ in ended[1].values())
    kids = child_runs(two.tracking.uri, "tiny")
    assert "RUNNING" not in set(kids["status"]) and len(kids) == 4


def test_a_worker_that_dies_fails_its_job_and_is_replaced(tiny_config, monkeypatch, tmp_path):
    # a cache of its own: checkpoints other tests left in the shared one would look like training
    # under way, and a worker killed before it opened its MLflow run leaves no run to mark FAILED
    cache = tmp_path / "cache"
    monkeypatch.setenv("MEDBENCH_CACHE_DIR", str(cache))
    config = tiny_config(
        *PINNED,
        "executor.jobs_per_device=2",
        "train.epochs=60",
        "train.early_stopping.patience=60",
    )
    killed = []

    def kill_one_worker():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            ckpts = list((cache / "checkpoints").rglob("*.pt"))
            workers = [p for p in packing_children() if p.is_alive()]
            if len(ckpts) >= 2 and workers:  # both workers are training
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    result = run_grid(config, progress=False)
    killer.join()
    assert killed
    died = [o for o in result.outcomes if o.status == Status.FAILED]
    assert len(died) == 1 and "worker process died" in died[0].reason and died[0].retryable
    assert sum(o.status == Status.FINISHED for o in result.outcomes) == 3
    kids = child_runs(config.tracking.uri, "tiny")
    assert sorted(kids["status"]) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    again = run_grid(config, progress=False)  # a rerun runs the failed job again
    assert sorted(o.status.value for o in again.outcomes) == ["FINISHED"] + ["SKIPPED"] * 3


def packing_children():
    import multiprocessing as mp

    return [p for p in mp.active_children() if p.name == "medbench-job"]


# ------------------------------------------------------------------------ a real command


CONFIG = {
    "name": "packed",
    "models": ["smallcnn"],
    "optimizers": ["adam", "gcsam"],
    "data": {"folds": "stratified", "n_folds": 2, "image_size": 32},
    "optimizer": {"lr": 0.003},
    "train": {"epochs": 20, "batch_size": 16, "early_stopping": {"patience": 20}, "threads": 1},
    "flatness": {"enabled": False},
    "report": {"enabled": False},
    "executor": {"jobs_per_device": 2},
}


def _start(tmp_path, data_root, epochs=None, **popen):
    """``medbench run`` of CONFIG as a user starts it; ``epochs``: jobs that long (with no early
    stop), so that an interrupt finds both running rather than one just finished."""
    config = CONFIG
    if epochs is not None:
        train = {**CONFIG["train"], "epochs": epochs, "early_stopping": {"patience": epochs}}
        config = {**CONFIG, "train": train}
    config_path = tmp_path / "packed.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return start_run(config_path, data_root, tmp_path, tmp_path / "cache", **popen)


def _workers_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _wait_for_two_checkpoints(tmp_path, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((tmp_path / "cache").rglob("checkpoints/**/*.pt"))
        if len(found) >= 2:
            return found
        if proc.poll() is not None:
            pytest.fail(f"medbench run ended early: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("two jobs never ran at once")


@pytest.mark.slow
def test_sigterm_stops_every_running_job_cleanly(tmp_path, tiny_bus):
    proc = _start(tmp_path, tiny_bus, epochs=100_000)
    ckpts = _wait_for_two_checkpoints(tmp_path, proc)
    workers = _workers_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "medbench: interrupted" in err
    kids = child_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "packed")
    assert list(kids["status"]).count("KILLED") == 2 and "RUNNING" not in set(kids["status"]), (
        err,
        kids[["tags.mlflow.runName", "status"]],
    )
    assert all(p.exists() for p in ckpts)  # kept for the resume
    assert not any(_alive(pid) for pid in workers)


@pytest.mark.slow
def test_ctrl_c_reaches_every_process_and_ends_like_sigterm(tmp_path, tiny_bus):
    """A terminal's Ctrl-C signals the whole process group: workers leave it to the grid."""
    proc = _start(  # its own process group, with Ctrl-C heard even if this shell ignores it
        tmp_path,
        tiny_bus,
        epochs=100_000,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_two_checkpoints(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    kids = child_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "packed")
    assert list(kids["status"]).count("KILLED") == 2 and "RUNNING" not in set(kids["status"]), (
        err,
        kids[["tags.mlflow.runName", "status"]],
    )


@pytest.mark.slow
def test_a_killed_grid_takes_its_workers_along_and_resumes(tmp_path, tiny_bus):
    proc = _start(tmp_path, tiny_bus)
    _wait_for_two_checkpoints(tmp_path, proc)
    workers = _workers_of(proc.pid)
    assert workers
    proc.kill()
    proc.wait()
    deadline = time.time() + 30
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)  # no orphan goes on training
    rerun = _start(tmp_path, tiny_bus)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    kids = child_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "packed")
    assert len(kids) == 4 and set(kids["status"]) == {"FINISHED"}


# ------------------------------------------------------------------------ parts


def test_jobs_per_device_is_checked_and_changes_no_hash():
    assert load_config("paper", data_root=".").executor.jobs_per_device == 1  # the default
    base = load_config("demo")
    assert base.executor.jobs_per_device == "auto"  # the demo packs a job per core
    assert config_hash(load_config("demo", ["executor.jobs_per_device=4"])) == config_hash(base)
    assert load_config("demo", ["executor.jobs_per_device=4"]).executor.jobs_per_device == 4
    with pytest.raises(ConfigError, match=r"executor\.jobs_per_device: must be at least 1"):
        load_config("demo", ["executor.jobs_per_device=0"])
    with pytest.raises(ConfigError, match=r"jobs_per_device: 'fast' is neither a number .* auto"):
        load_config("demo", ["executor.jobs_per_device=fast"])
    with pytest.raises(ConfigError, match=r"jobs_per_device: expected an integer, got True"):
        load_config("demo", ["executor.jobs_per_device=true"])
    with pytest.raises(ConfigError, match="would each ask Ray for 1.5 GPUs"):
        load_config("demo", ["executor.jobs_per_device=2", "executor.gpus_per_job=3"])


def test_auto_packs_a_job_per_core_and_never_changes_a_jobs_threads(monkeypatch):
    monkeypatch.setattr(executors, "available_cpus", lambda: 8)
    monkeypatch.setattr(packed, "available_cpus", lambda: 8)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")

    def shared(*overrides, device=cpu):
        return executors.packing(load_config("demo", list(overrides)), device)

    # the demo pins one thread per job: auto fills the cores, each job on its one thread
    assert shared() == executors.Packing(jobs=8, threads=1)
    assert shared("train.threads=2") == executors.Packing(jobs=4, threads=2)
    assert shared("train.threads=16") == executors.Packing(jobs=1, threads=16)
    # unpinned, auto runs one job at a time on every thread (measured faster than packing)
    assert shared("train.threads=0") == executors.Packing(jobs=1, threads=0)
    assert shared(device=cuda) == executors.Packing(jobs=1, threads=1)  # CUDA: one job
    # a number is taken as is: workers split the CPUs unless train.threads pins their count
    three = shared("executor.jobs_per_device=3", "train.threads=0")
    assert (three.jobs, three.threads, three.worker_threads) == (3, 0, 2)
    assert shared("executor.jobs_per_device=3").worker_threads == 1


def test_auto_runs_a_lone_job_on_its_threads_in_this_process(monkeypatch):
    monkeypatch.setattr(executors, "available_cpus", lambda: 2)
    monkeypatch.setattr(packed, "available_cpus", lambda: 2)
    executor_for = executors.choose_executor(load_config("demo"), "sqlite:///unused.db")
    two = executor_for(4)  # the demo pins one thread: a 1-thread job per core
    assert isinstance(two, packed.PackedExecutor) and (two.capacity, two.threads) == (2, 1)
    lone = executor_for(1)
    assert isinstance(lone, LocalExecutor) and lone.threads == 1
    unpinned = executors.choose_executor(load_config("demo", ["train.threads=0"]), "sqlite:///u")
    for works in (1, 4):  # one job at a time on the process's threads
        local = unpinned(works)
        assert isinstance(local, LocalExecutor) and local.threads == 0


def test_the_local_executor_runs_a_work_on_its_threads_and_restores_the_process(monkeypatch):
    seen = []

    def run(spec, bar=None):
        seen.append(torch.get_num_threads())
        return JobOutcome(spec.job, Status.FINISHED)

    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    work = _work("adam")
    work = type(work)(work.spec, run, work.close)
    for threads, expected in ((target, target), (0, before)):
        local = LocalExecutor(threads)
        local.start(Display(total=1, label="grid", slots=1, bars=False))
        local.wait([local.submit(work)])
        assert seen[-1] == expected and torch.get_num_threads() == before


def test_ray_tasks_take_their_share_of_a_device():
    pytest.importorskip("ray")
    from medbench.engine.executors.ray import task_resources

    config = load_config(
        "paper", ["executor.jobs_per_device=4", "executor.cpus_per_job=4"], data_root="."
    )
    assert task_resources(config.executor) == {"num_cpus": 1.0, "num_gpus": 0.25}
    demo = load_config("demo", ["executor.jobs_per_device=2"])
    assert task_resources(demo.executor) == {"num_cpus": 0.5, "num_gpus": 0.0}
    # auto: a task asks for a whole job's share, Ray places it
    assert task_resources(load_config("demo").executor) == {"num_cpus": 1.0, "num_gpus": 0.0}


def test_cpu_threads_are_split_evenly(monkeypatch):
    monkeypatch.setattr(packed, "available_cpus", lambda: 16)
    assert [packed.threads_per_job(n) for n in (1, 2, 3, 4, 32)] == [16, 8, 5, 4, 1]


def _work(name: str, epochs: int = 5):
    config = load_config("demo", [f"train.epochs={epochs}"])
    return job_work(JobSpec(Job("smallcnn", name, 1, 0), config, "sqlite:///x.db", "p", "h", "f"))


def test_a_terminal_shows_the_running_jobs_side_by_side():
    display = Display(total=3, label="grid (2 at once)", slots=2, bars=True)
    display.started(0, _work("adam"))
    display.started(1, _work("sam", epochs=7))
    display.receive(0, ("epochs", 2, "loss=0.500, val_auc=0.700"))
    display.receive(1, ("epochs", 1, None))
    bars = display.jobs
    assert [b.desc.removesuffix(": ") for b in bars] == [
        "smallcnn/adam/fold1",
        "smallcnn/sam/fold1",
    ]
    assert [(b.n, b.total) for b in bars] == [(2, 5), (1, 7)]
    assert "val_auc=0.700" in bars[0].postfix
    display.finished("smallcnn/adam/fold1", JobOutcome(_work("adam").spec.job, Status.FINISHED))
    assert display.grid.n == 1
    display.close()


def test_without_a_terminal_one_line_per_finished_job(capsys):
    display = Display(total=2, label="grid (2 at once)", slots=2, bars=False)
    adam, sam = _work("adam"), _work("sam")
    display.started(0, adam)
    display.receive(0, ("epochs", 1, "loss=1"))  # nothing to draw
    display.finished(adam.name, JobOutcome(adam.spec.job, Status.FAILED, reason="diverged: nan"))
    display.finished(
        sam.name, JobOutcome(sam.spec.job, Status.KILLED, reason="interrupted by the user")
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "[1/2] smallcnn/adam/fold1          FAILED: diverged: nan",
        "[2/2] smallcnn/sam/fold1           KILLED: interrupted by the user",
    ]


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_packed_jobs_share_one_gpu(tiny_config):
    """On a GPU each worker has its own CUDA context on the same device (bench_gpu.sh)."""
    config = tiny_config(
        "executor.jobs_per_device=2", "train.device=cuda", "data.n_folds=2", "train.amp=off"
    )
    result = run_grid(config, progress=False)
    assert {o.status for o in result.outcomes} == {Status.FINISHED} and len(result.outcomes) == 4
    kids = child_runs(config.tracking.uri, "tiny")
    assert kids["tags.medbench.device"].str.startswith("cuda").all()
