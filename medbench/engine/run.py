"""The benchmark grid: dataset once, jobs (model x optimizer x fold x seed), resume, aggregates.

Resume rule: a job whose child run is FINISHED with the same config hash and dataset fingerprint
is skipped; an unfinished one continues from its checkpoint when the checkpoint belongs to that
run, otherwise its run is deleted and the job starts afresh. So rerunning a command never
duplicates a run and never loses a finished one.
"""

from __future__ import annotations

import hashlib
import math
import platform
import signal
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medbench.config import Config, config_hash, dump_yaml, load_config
from medbench.engine.jobs import Job, data_seed, derive_seed, init_seed, make_jobs
from medbench.engine.train import FoldData, JobResult, load_checkpoint, resolve_device, train_job
from medbench.paths import cache_dir


@dataclass
class Dataset:
    """A prepared dataset: manifest with folds, preprocessed images, and its fingerprint."""

    root: Path
    manifest: pd.DataFrame
    images: torch.Tensor
    labels: torch.Tensor
    fingerprint: str
    card: str | None  # data card name, when one describes this dataset

    @property
    def folds(self) -> list[int]:
        from medbench.data.folds import fold_ids

        return fold_ids(self.manifest)


_DATASETS: dict[tuple, Dataset] = {}


def synthetic_root(config: Config) -> Path:
    s = config.data.synthetic
    return cache_dir() / "synthetic" / f"bus-n{s.n}-seed{s.seed}"


def dataset_fingerprint(manifest: pd.DataFrame, digests: list[str]) -> str:
    """Digest of what a job sees: ids, labels, sites, folds and every image's content."""
    h = hashlib.sha256()
    for row, digest in zip(manifest.itertuples(index=False), digests, strict=True):
        h.update(f"{row.id}|{row.label}|{row.site}|{row.fold}|{digest}\n".encode())
    return h.hexdigest()


def prepare_dataset(config: Config, progress: bool = False) -> Dataset:
    """Read the manifest, assign folds and load the preprocessed images (memoised per process)."""
    from medbench.data.folds import assign_folds
    from medbench.data.manifest import read_manifest
    from medbench.data.transforms import PreprocessSettings, load_cached

    d = config.data
    key = (
        d.root,
        d.sheet,
        d.folds,
        d.n_folds,
        d.image_size,
        d.synthetic.n,
        d.synthetic.seed,
        min(config.seeds),
    )
    if key in _DATASETS:
        return _DATASETS[key]
    from medbench.data.synthetic import MARKER, generate

    if d.root:
        root = Path(d.root).expanduser()
    else:
        root = synthetic_root(config)
        generate(root, n=d.synthetic.n, seed=d.synthetic.seed)
    manifest = read_manifest(root, sheet=d.sheet)
    card = None
    if (root / MARKER).is_file():  # generated data, wherever it was written
        card = "synthetic_bus"
    elif manifest.attrs.get("layout") == "gdph_sysucc":
        card = "gdph_sysucc_bus"
    manifest = assign_folds(
        manifest, source=d.folds, k=d.n_folds, seed=min(config.seeds)
    ).reset_index(drop=True)
    cached = load_cached(
        list(manifest["path"]), PreprocessSettings(image_size=d.image_size), progress=progress
    )
    labels = torch.tensor(manifest["label"].to_numpy(dtype=np.int64))
    dataset = Dataset(
        root=root,
        manifest=manifest,
        images=cached.images,
        labels=labels,
        fingerprint=dataset_fingerprint(manifest, cached.digests),
        card=card,
    )
    _DATASETS[key] = dataset
    return dataset


def fold_data(dataset: Dataset, config: Config, job: Job) -> FoldData:
    from medbench.data.folds import split_fold

    split = split_fold(
        dataset.manifest,
        job.fold,
        val_fraction=config.data.val_fraction,
        seed=derive_seed("val", job.seed),
    )
    return FoldData(
        images=dataset.images, labels=dataset.labels, manifest=dataset.manifest, split=split
    )


def checkpoint_path(config: Config, fingerprint: str, job: Job) -> Path:
    safe = job.key.replace("/", "__")
    return (
        cache_dir()
        / "checkpoints"
        / config.name
        / f"{config_hash(config)}-{fingerprint[:12]}"
        / f"{safe}.pt"
    )


def parent_params(config: Config, model: str, optimizer: str) -> dict[str, Any]:
    return {
        "model": model,
        "optimizer": optimizer,
        "lr": config.optimizer.lr,
        "rho": config.optimizer.rho,
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "image_size": config.data.image_size,
        "seed": ",".join(map(str, config.seeds)),
        "weight_decay": config.optimizer.weight_decay,
        "gc_norm": config.optimizer.gc_norm,
        "gc_conv_only": config.optimizer.gc_conv_only,
        "early_stopping_monitor": config.train.early_stopping.monitor,
        "early_stopping_patience": config.train.early_stopping.patience,
        "val_fraction": config.data.val_fraction,
        "folds": config.data.folds,
        "augment": config.data.augment,
        "freeze_bn_second_pass": config.train.freeze_bn_second_pass,
    }


def environment_tags(device: torch.device) -> dict[str, str]:
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return {
        "medbench.device": f"{device.type}: {name}",
        "medbench.python": platform.python_version(),
        "medbench.torch": torch.__version__,
        "medbench.platform": platform.platform(),
    }


@dataclass
class JobSpec:
    """Everything a worker needs to run one job: plain values only (picklable, for Ray)."""

    job: Job
    config: Config
    tracking_uri: str
    parent_id: str


@dataclass
class JobOutcome:
    job: Job
    status: str  # FINISHED | FAILED | KILLED | SKIPPED
    run_id: str | None = None
    reason: str | None = None
    metrics: dict[str, float] | None = None


def run_job(spec: JobSpec, progress: bool = False) -> JobOutcome:
    """Run one job end to end, tracked in its child run; safe to call again after any crash."""
    from medbench.tracking import FLATNESS_FILE, PREDICTIONS_FILE, Tracker

    job, config = spec.job, spec.config
    dataset = prepare_dataset(config)
    chash, fp = config_hash(config), dataset.fingerprint
    tracker = Tracker(spec.tracking_uri, config.name)
    refs = tracker.find_child(job.key, chash, fp)
    done = [r for r in refs if r.status == "FINISHED"]
    if done:
        return JobOutcome(job, "SKIPPED", done[0].run_id)
    ckpt = checkpoint_path(config, fp, job)
    saved = load_checkpoint(ckpt)
    saved_run = (saved or {}).get("meta", {}).get("run_id")
    resume = saved_run if saved_run in {r.run_id for r in refs} else None
    for ref in refs:
        if ref.run_id != resume:
            tracker.delete(ref.run_id)
    device = resolve_device(config.train.device)
    if resume is None:
        ckpt.unlink(missing_ok=True)
        run_id = tracker.start_child(
            spec.parent_id,
            job.run_name,
            job.key,
            {
                "fold": job.fold,
                "seed": job.seed,
                "model": job.model,
                "optimizer": job.optimizer,
                "init_seed": init_seed(job),
                "data_seed": data_seed(job),
            },
            chash,
            fp,
            tags=environment_tags(device),
        )
        tracker.log_dataset(
            run_id, dataset.manifest, dataset.root.name, str(dataset.root), fp, "training"
        )
        logged: set[int] = set()
    else:
        run_id = resume
        tracker.set_status(run_id, "RUNNING")
        logged = tracker.logged_steps(run_id)
        for row in saved["state"]["history"]:  # epochs checkpointed but not yet logged
            if row["epoch"] not in logged:
                tracker.log_metrics(
                    run_id, {k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"]
                )
                logged.add(row["epoch"])

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if epoch not in logged:
            tracker.log_metrics(run_id, metrics, step=epoch)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.train.epochs, desc=job.run_name, unit="epoch", leave=False)
    try:
        result: JobResult = train_job(
            job,
            config,
            fold_data(dataset, config, job),
            device,
            ckpt,
            on_epoch,
            bar,
            meta={"run_id": run_id},
        )
    except Exception as err:  # noqa: BLE001 - one broken job must not stop the grid
        reason = f"{type(err).__name__}: {err}"
        tracker.set_tags(run_id, {"medbench.traceback": traceback.format_exc()[-4000:]})
        tracker.finish(run_id, "FAILED", reason)
        return JobOutcome(job, "FAILED", run_id, reason)
    finally:
        if bar is not None:
            bar.close()
    if result.status == "FINISHED":
        tracker.log_metrics(run_id, result.metrics)
        tracker.log_table(run_id, result.predictions, PREDICTIONS_FILE)
        if result.flatness is not None:
            tracker.log_json(run_id, result.flatness, FLATNESS_FILE)
        tracker.finish(run_id, "FINISHED")
        ckpt.unlink(missing_ok=True)
    elif result.status == "FAILED":
        tracker.finish(run_id, "FAILED", result.reason)
        ckpt.unlink(missing_ok=True)
    else:
        tracker.finish(run_id, "KILLED", result.reason)
    return JobOutcome(job, result.status, run_id, result.reason, result.metrics)


def _aggregate(values: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def update_parent(
    tracker, parent_id: str, expected: int, interrupted: bool = False
) -> dict[str, float]:
    """Recompute a parent's cross-validation aggregates from its finished child runs."""
    children = tracker.child_metrics(parent_id)
    finished = children[children["status"] == "FINISHED"] if not children.empty else children
    metrics: dict[str, float] = {
        "cv_n_finished": float(len(finished)),
        "cv_n_failed": float((children["status"] == "FAILED").sum()) if not children.empty else 0.0,
    }
    for name in ("test_auc", "test_accuracy", "test_sensitivity", "test_specificity", "test_f1"):
        if not finished.empty and name in finished:
            mean, std = _aggregate(finished[name])
            metrics[f"cv_{name}_mean"], metrics[f"cv_{name}_std"] = mean, std
    tracker.log_metrics(parent_id, metrics)
    if len(finished) == expected:
        tracker.finish(parent_id, "FINISHED")
    elif interrupted:
        tracker.finish(parent_id, "KILLED")
    elif metrics["cv_n_failed"] > 0:
        tracker.finish(
            parent_id, "FAILED", f"{int(metrics['cv_n_failed'])} of {expected} folds failed"
        )
    return metrics


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends the current job like Ctrl-C does (run KILLED, checkpoint kept)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. inside a Ray worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class GridResult:
    config: Config
    tracking_uri: str
    outcomes: list[JobOutcome]
    summary: pd.DataFrame
    parent_ids: dict[str, str]
    fingerprint: str = ""
    report_dir: Path | None = None


def summary_table(aggregates: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Model x optimizer: test AUC and accuracy over folds, from the parents' aggregates."""
    rows = []
    for name, m in aggregates.items():
        model, optimizer = name.split("/", 1)
        rows.append(
            {
                "model": model,
                "optimizer": optimizer,
                "runs": int(m["cv_n_finished"]),
                "failed": int(m["cv_n_failed"]),
                "auc_mean": m.get("cv_test_auc_mean", math.nan),
                "auc_std": m.get("cv_test_auc_std", math.nan),
                "accuracy_mean": m.get("cv_test_accuracy_mean", math.nan),
                "accuracy_std": m.get("cv_test_accuracy_std", math.nan),
            }
        )
    return pd.DataFrame(rows)


def render_summary(summary: pd.DataFrame) -> str:
    def pm(m: float, s: float) -> str:
        return "undefined" if math.isnan(m) else f"{m:.3f} ± {s:.3f}"

    lines = [f"{'model':<16} {'optimizer':<10} {'test AUC':<16} {'test accuracy':<16} runs"]
    for r in summary.itertuples():
        runs = f"{r.runs}" + (f" ({r.failed} failed)" if r.failed else "")
        lines.append(
            f"{r.model:<16} {r.optimizer:<10} {pm(r.auc_mean, r.auc_std):<16} {pm(r.accuracy_mean, r.accuracy_std):<16} {runs}"
        )
    return "\n".join(lines)


def run_grid(
    config: Config,
    executor: str | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> GridResult:
    """Run (or resume) every job of ``config`` and record it in MLflow."""
    from medbench.tracking import CONFIG_FILE, Tracker, check_store, resolve_tracking_uri

    uri = resolve_tracking_uri(config.tracking.uri)
    check_store(uri)  # before any data or training work
    kind = executor or config.executor.kind
    if kind == "ray":
        from medbench.engine.ray_executor import check_ray_store

        check_ray_store(uri, ray_address or config.executor.address)
    dataset = prepare_dataset(config, progress=progress)
    chash = config_hash(config)
    tracker = Tracker(uri, config.name)
    jobs = make_jobs(config.models, config.optimizers, dataset.folds, config.seeds)
    parent_ids: dict[str, str] = {}
    for job in jobs:
        if job.parent_name in parent_ids:
            continue
        ref = tracker.find_parent(job.parent_name, chash, dataset.fingerprint)
        if ref is None:
            pid = tracker.start_parent(
                job.parent_name,
                parent_params(config, job.model, job.optimizer),
                chash,
                dataset.fingerprint,
            )
            tracker.log_text(pid, dump_yaml(config), CONFIG_FILE)
            tracker.log_dataset(
                pid,
                dataset.manifest,
                dataset.root.name,
                str(dataset.root),
                dataset.fingerprint,
                "training",
            )
            if dataset.card:
                tracker.set_tags(pid, {"medbench.dataset_card": dataset.card})
        else:
            pid = ref.run_id
            if ref.status != "RUNNING":
                tracker.set_status(pid, "RUNNING")
        parent_ids[job.parent_name] = pid
    finished = {
        job
        for job in jobs
        if any(
            r.status == "FINISHED" for r in tracker.find_child(job.key, chash, dataset.fingerprint)
        )
    }
    todo = [job for job in jobs if job not in finished]
    specs = [JobSpec(job, config, uri, parent_ids[job.parent_name]) for job in todo]
    outcomes = [JobOutcome(job, "SKIPPED") for job in jobs if job in finished]
    if finished:
        print(
            f"resuming: {len(finished)} of {len(jobs)} jobs already finished, {len(todo)} to run",
            file=sys.stderr,
        )
    interrupted = False
    with _sigterm_as_interrupt():
        if kind == "ray":
            from medbench.engine.ray_executor import run_on_ray

            try:
                outcomes += run_on_ray(
                    specs, config, ray_address or config.executor.address, progress=progress
                )
            except KeyboardInterrupt:
                interrupted = True
        else:
            bar = None
            if progress and specs:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(specs), desc="grid", unit="job")
            try:
                for spec in specs:
                    outcome = run_job(spec, progress=progress)
                    outcomes.append(outcome)
                    if bar is not None:
                        bar.update(1)
                        if outcome.status == "FAILED":
                            bar.write(
                                f"medbench: warning: {spec.job.run_name} failed: {outcome.reason}"
                            )
                    if outcome.status == "KILLED":
                        interrupted = True
                        break
            except KeyboardInterrupt:
                interrupted = True
            finally:
                if bar is not None:
                    bar.close()
    n_per_parent = len(dataset.folds) * len(config.seeds)
    aggregates = {
        name: update_parent(tracker, pid, n_per_parent, interrupted)
        for name, pid in parent_ids.items()
    }
    summary = summary_table(aggregates)
    result = GridResult(config, uri, outcomes, summary, parent_ids, dataset.fingerprint)
    if interrupted:
        print(render_summary(summary), file=sys.stderr)
        raise KeyboardInterrupt
    return result


def run_benchmark(
    config: str | Path | Config,
    data_root: str | None = None,
    overrides: list[str] | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    report: bool = True,
    progress: bool = True,
) -> GridResult:
    """``medbench run``: load the config, run the grid, print the summary, build the report."""
    cfg = config if isinstance(config, Config) else load_config(config, overrides, data_root)
    result = run_grid(cfg, executor=executor, ray_address=ray_address, progress=progress)
    print(render_summary(result.summary))
    if report and cfg.report.enabled:
        from medbench.report.build import build_report

        result.report_dir = build_report(
            cfg.name,
            tracking_uri=result.tracking_uri,
            out_dir=cfg.report.out,
            select=(config_hash(cfg), result.fingerprint),
        )
        print(f"report: {result.report_dir / 'report.md'}")
    return result


def run_demo(overrides: list[str] | None = None, report: bool = True) -> GridResult:
    """``medbench demo``: the synthetic dataset (generated once into the cache) and the demo config."""
    return run_benchmark("demo", overrides=overrides, report=report)
