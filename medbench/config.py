"""Typed configuration: YAML -> dataclasses, every value validated when the config loads.

The dataclasses below are the objects the code uses (the engine reads ``config.train``, flatness
takes ``config.flatness``, the optimizer registry ``config.optimizer``), and each default exists
here once. What a field means for the rest of the suite is in its metadata, declared with
:func:`setting`:

- ``choices``, ``gt``/``ge``/``lt``/``le``: the values it accepts (numbers must be finite);
- ``hashed=False``: it does not change a job's results, so it stays out of :func:`config_hash`
  (resuming on another store, executor or report folder still finds the finished jobs).

The data layer takes plain values, never this module's classes: :func:`data_settings` is the one
conversion from the ``data`` section.

Every mistake is one line that names its key: an unknown key (with the closest valid one), a
value of the wrong type, outside its range or its choices, an unknown model or optimizer, and
settings that make each other meaningless (``rho`` 0 with a SAM-family optimizer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medbench.data.folds import FOLD_SOURCES, check_repeats
from medbench.data.read.layouts import list_layouts
from medbench.data.read.manifest import LABEL_SOURCES
from medbench.data.settings import DataSettings, ExternalSettings
from medbench.errors import ConfigError, MedbenchWarning, closest
from medbench.models import check_model
from medbench.optim.defaults import DEFAULT_LR, DEFAULT_RHO, GC_NORMS
from medbench.optim.registry import is_sam_family, list_optimizers, tunable_settings
from medbench.yaml_input import YamlSyntaxError, as_text, load_yaml, read_text, short

_NO_DEFAULT: Any = dataclasses.MISSING


def setting(
    default: Any = _NO_DEFAULT,
    *,
    factory: Any = _NO_DEFAULT,
    choices: tuple[str, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    hashed: bool = True,
) -> Any:
    """A config field with what it accepts and what it changes (see the module docstring)."""
    meta = {
        "choices": choices,
        "bounds": (gt, ge, lt, le),
        "hashed": hashed,
    }
    if factory is not _NO_DEFAULT:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


#: ``train.device``: auto (CUDA when present), cpu, cuda or cuda:N.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class SyntheticConfig:
    """The synthetic BUS dataset used when ``data.root`` is empty."""

    n: int = setting(600, ge=20)
    seed: int = setting(0)


#: ``data.layout``: detected from what is on disk, or one of the layouts medbench reads.
LAYOUT_CHOICES = ("auto", *list_layouts())
#: An external dataset's name, as its metrics (``external_{name}_auc``) and files carry it.
EXTERNAL_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class ExternalConfig:
    """A dataset every fold's selected checkpoint is also tested on (external validation)."""

    root: str = setting("")  # the dataset folder (required)
    name: str | None = setting(None)  # default: its layout's name, or the folder's for flat
    layout: str = setting("auto", choices=LAYOUT_CHOICES)
    sheet: str | None = setting(None)
    include_normal: bool = setting(False)


@dataclass
class DataConfig:
    root: str | None = setting(None, hashed=False)  # empty: synthetic data
    # detected by default; the fingerprint covers what it reads, so it is not hashed
    layout: str = setting("auto", choices=LAYOUT_CHOICES, hashed=False)
    sheet: str | None = setting(None)  # worksheet, sheet or fold file to read
    include_normal: bool = setting(False)  # BUSI's normal images as benign
    # a sheet's label column against the file names: check (stop when they disagree) | sheet | names
    labels: str = setting("check", choices=LABEL_SOURCES)
    folds: str = setting("auto", choices=FOLD_SOURCES)
    n_folds: int = setting(5, ge=2)  # for stratified folds
    val_fraction: float = setting(0.2, gt=0.0, lt=1.0)  # of the training folds, for selection
    image_size: int = setting(256, ge=1)
    augment: bool = setting(False)
    synthetic: SyntheticConfig = setting(factory=SyntheticConfig)
    external: list[ExternalConfig] = setting(factory=list)  # tested with identical preprocessing
    # the folds to keep (empty: all), e.g. to leave out a stray fold of a few mistyped images
    folds_keep: list[str] = setting(factory=list)
    # image ids to leave out (e.g. one of each near-duplicate pair `data check` lists), before
    # folds are drawn; the dataset fingerprint covers which images were used, so not hashed
    exclude: list[str] = setting(factory=list, hashed=False)
    # Pillow's guard against decompression bombs, in pixels (its default); raise it for trusted
    # very large images
    max_image_pixels: int = setting(89_478_485, ge=1, hashed=False)


@dataclass
class OptimizerConfig:
    """Settings shared by every optimizer of the grid (each uses the ones it knows)."""

    lr: float = setting(DEFAULT_LR, gt=0.0)
    weight_decay: float = setting(0.0, ge=0.0)
    rho: float = setting(DEFAULT_RHO, ge=0.0)  # > 0 with a SAM-family optimizer
    gc_conv_only: bool = setting(False)
    gc_norm: str = setting("raw", choices=GC_NORMS)  # raw: authors' code; centralized: paper
    momentum: float = setting(0.9, ge=0.0)  # sgd only


@dataclass
class EarlyStoppingConfig:
    # on the validation split, never the test fold
    monitor: str = setting("val_auc", choices=("val_auc", "val_loss"))
    patience: int = setting(10, ge=1)
    min_delta: float = setting(0.0, ge=0.0)


@dataclass
class BudgetConfig:
    """How much training each job gets, the same for every optimizer (see engine.budget)."""

    kind: str = setting("epochs", choices=("epochs", "gradient_evals", "seconds"))
    # forward-backward passes on training batches; empty: train.epochs epochs of a one-pass step
    gradient_evals: int | None = setting(None, ge=1)
    seconds: float | None = setting(None, gt=0.0)  # wall time of training, validation included


@dataclass
class TrainConfig:
    epochs: int = setting(50, ge=1)
    batch_size: int = setting(32, ge=1)
    early_stopping: EarlyStoppingConfig = setting(factory=EarlyStoppingConfig)
    scheduler: str = setting("none", choices=("none", "cosine"))
    freeze_bn_second_pass: bool = setting(False)  # SAM family: keep BN stats in the 2nd pass
    device: str = setting("auto")  # auto | cpu | cuda | cuda:N
    amp: str = setting("auto", choices=("auto", "bf16", "off"))  # auto: bf16 on CUDA
    # TF32 matmuls and convolutions on CUDA; default: PyTorch's (convolutions on, matmuls off)
    tf32: str = setting("default", choices=("default", "on", "off"))
    channels_last: str = setting("auto", choices=("auto", "on", "off"))  # auto: on CUDA
    compile: bool = setting(False)  # torch.compile the model (CUDA)
    threshold: float = setting(0.5, gt=0.0, lt=1.0)  # P(malignant) called malignant
    checkpoint_every: int = setting(1, ge=1, hashed=False)  # epochs between checkpoints
    threads: int = setting(0, ge=0)  # CPU threads (0: torch's default); CPU results depend on it
    budget: BudgetConfig = setting(factory=BudgetConfig)  # epochs, gradient_evals or seconds


@dataclass
class FlatnessConfig:
    """How much work the flatness measures of each best checkpoint may do."""

    enabled: bool = setting(False)
    n_samples: int = setting(256, ge=1)  # training images in the seeded subset
    batch_size: int = setting(64, ge=1)  # bounds memory only
    # Hessian estimators (see medbench.flatness): lanczos needs about half the HVPs for the same
    # accuracy; power (power iteration + plain Hutchinson) is the reference
    method: str = setting("lanczos", choices=("lanczos", "power"))
    lanczos_steps: int = setting(10, ge=1)  # Krylov basis: the top eigenvalue, shared by the trace
    power_iters: int = setting(20, ge=1)  # most power iterations for the top eigenvalue
    power_tol: float = setting(1e-3, gt=0.0)  # stop when the eigenvalue changes less (relative)
    # Rademacher vectors for the trace (lanczos: for the part outside the Krylov basis)
    hutchinson_samples: int = setting(10, ge=1)
    landscape_points: int = setting(21, ge=2)  # odd puts alpha = 0 on the grid
    landscape_radius: float = setting(1.0, gt=0.0)  # in filter-normalised units
    # radius of the SAM sharpness, one for every optimizer whatever rho it trained (or tuned) with
    rho: float = setting(DEFAULT_RHO, gt=0.0)


@dataclass
class SearchSpaceConfig:
    """Where tuning searches: log-uniform ranges; rho for the SAM family only."""

    lr_low: float = setting(1e-5, gt=0.0)
    lr_high: float = setting(1e-2, gt=0.0)
    rho_low: float = setting(0.01, gt=0.0)
    rho_high: float = setting(0.5, gt=0.0)
    grid_points: int = setting(4, ge=2)  # sampler grid: log-spaced values per range


#: ``tune.objective``: each one's direction on the validation split (Optuna's words).
OBJECTIVES = {"val_auc": "maximize", "val_loss": "minimize"}


@dataclass
class TuneConfig:
    """Per-optimizer tuning nested in each outer fold, the same number of trials for every
    optimizer (see engine.tuning)."""

    enabled: bool = setting(False)
    trials: int = setting(8, ge=1)  # per (model, optimizer, fold, seed)
    epochs: int = setting(5, ge=1)  # per trial; a compute budget is scaled by epochs/train.epochs
    sampler: str = setting("tpe", choices=("tpe", "random", "grid"))
    objective: str = setting("val_auc", choices=tuple(OBJECTIVES))  # on the validation split
    space: SearchSpaceConfig = setting(factory=SearchSpaceConfig)


@dataclass
class CvConfig:
    """Repeated cross-validation: repeat 1 is the dataset's own folds; repeats 2..r re-partition
    the same images into as many folds, each seeded by its number (see
    :func:`medbench.data.folds.repartition`).

    ``repeats`` chooses which jobs run, not what a job gives (as ``seeds`` does), so it stays out
    of the config hash: raising it later reuses the runs of the repeats already done.
    """

    repeats: int = setting(1, ge=1, hashed=False)


@dataclass
class TrackingConfig:
    uri: str | None = None  # default: MLFLOW_TRACKING_URI, else MLflow's sqlite:///mlflow.db


@dataclass
class ExecutorConfig:
    kind: str = setting("local", choices=("local", "ray"))
    address: str | None = None  # Ray address (auto, ray://host:10001); empty: local Ray
    cpus_per_job: float = setting(1.0, gt=0.0)
    gpus_per_job: float = setting(0.0, ge=0.0)
    max_retries: int = setting(1, ge=0)
    # jobs run at once on one device (worker processes; Ray: fractions of gpus_per_job and
    # cpus_per_job); results do not depend on it. auto: on the CPU cores // train.threads jobs
    # when train.threads is pinned, else one job on every thread; on CUDA one job (see
    # engine.executors.packing)
    jobs_per_device: int | str = setting(1, ge=1, hashed=False)


@dataclass
class ReportConfig:
    enabled: bool = True
    out: str | None = None  # default reports/<name>
    # half-width of the region of practical equivalence of the Bayesian correlated t-test, in
    # the compared metric's units (0.01 = one AUC or accuracy point)
    rope: float = setting(0.01, ge=0.0, lt=1.0, hashed=False)
    # time to target: the first epoch whose validation AUC reaches it (set per dataset)
    target_val_auc: float = setting(0.85, gt=0.0, le=1.0)


@dataclass
class Config:
    name: str = setting("medbench", hashed=False)
    models: list[str] = setting(factory=lambda: ["resnet18"], hashed=False)
    optimizers: list[str] = setting(factory=lambda: ["adam", "sam", "gcsam"], hashed=False)
    seeds: list[int] = setting(factory=lambda: [0], hashed=False)
    data: DataConfig = setting(factory=DataConfig)
    cv: CvConfig = setting(factory=CvConfig)
    optimizer: OptimizerConfig = setting(factory=OptimizerConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    flatness: FlatnessConfig = setting(factory=FlatnessConfig)
    tune: TuneConfig = setting(factory=TuneConfig)
    tracking: TrackingConfig = setting(factory=TrackingConfig, hashed=False)
    executor: ExecutorConfig = setting(factory=ExecutorConfig, hashed=False)
    report: ReportConfig = setting(factory=ReportConfig, hashed=False)
    source: str = field(default="", metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


# -- reading ------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):  # ``int | str``: 2, or auto
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single name is a list of one
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {short(value)}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {short(value)}")
        return _build(tp, value, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {short(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {short(value)}")
    if tp is str:  # a name written 010 or 1:30 is that text, not YAML 1.1's 8 or 90
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return as_text(value)
        raise ConfigError(f"{key}: expected a string, got {short(value)}")
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def _fields(cls_or_obj: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls_or_obj) if not f.metadata.get("internal")]


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in _fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            full = f"{prefix}{key}"
            known = list(fields)
            raise ConfigError(
                f"{full}: unknown key{closest(key, known)}; valid keys here: {', '.join(known)}"
            )
        choices = fields[key].metadata.get("choices") or ()
        if isinstance(value, bool) and "off" in choices:  # YAML reads a bare off/on as a bool
            value = "on" if value else "off"
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)


# -- validation ---------------------------------------------------------------------------------


def _check_field(key: str, value: Any, meta: dict[str, Any]) -> None:
    """Choices, finiteness and bounds of one field (metadata of :func:`setting`)."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(
            f"{key}: {short(value)} is not one of {', '.join(choices)}{closest(str(value), choices)}"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value}")
    gt, ge, lt, le = meta.get("bounds", (None,) * 4)
    if ge is not None and value < ge:
        least = "at least 1" if ge == 1 and isinstance(value, int) else f">= {ge:g}"
        raise ConfigError(f"{key}: must be {least}, got {value}")
    if gt is not None and value <= gt:
        raise ConfigError(f"{key}: must be > {gt:g}, got {value}")
    if le is not None and value > le:
        raise ConfigError(f"{key}: must be <= {le:g}, got {value}")
    if lt is not None and value >= lt:
        raise ConfigError(f"{key}: must be < {lt:g}, got {value}")


def _check_section(obj: Any, prefix: str) -> None:
    for f in _fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_section(value, key + ".")
        else:
            _check_field(key, value, f.metadata)


def check_section(obj: Any, prefix: str) -> None:
    """Validate one section on its own (e.g. a :class:`FlatnessConfig` built in code)."""
    _check_section(obj, prefix + ".")


def validate(config: Config) -> Config:
    """Check every field and the rules between fields; raise ConfigError naming the key."""
    _check_section(config, "")
    if not DEVICE_PATTERN.fullmatch(config.train.device):
        raise ConfigError(
            f"train.device: {config.train.device!r} is not a device medbench can train on; "
            "use auto, cpu, cuda or cuda:N"
        )
    if not config.models:
        raise ConfigError("models: list at least one model")
    if not config.optimizers:
        raise ConfigError("optimizers: list at least one optimizer")
    if not config.seeds:
        raise ConfigError("seeds: list at least one seed")
    for name, seq in (
        ("models", config.models),
        ("optimizers", config.optimizers),
        ("seeds", config.seeds),
    ):
        dup = {v for v in seq if seq.count(v) > 1}
        if dup:
            raise ConfigError(f"{name}: listed twice: {', '.join(map(str, sorted(dup)))}")
    for i, model in enumerate(config.models):
        check_model(model, config.data.image_size, key=f"models[{i}]")
    known = list_optimizers()
    for i, opt in enumerate(config.optimizers):
        if opt not in known:
            raise ConfigError(
                f"optimizers[{i}]: unknown optimizer {opt!r}{closest(opt, known)}; known: {', '.join(known)}"
            )
    if config.optimizer.rho == 0:
        sam = [o for o in config.optimizers if is_sam_family(o)]
        if sam:
            raise ConfigError(
                f"optimizer.rho: must be > 0 for {', '.join(sam)} (rho 0 makes SAM plain "
                "gradient descent with twice the cost)"
            )
    _check_compute(config)
    check_repeats(config.data.folds, config.cv.repeats)
    _check_external(config.data)
    _check_packing(config.executor)
    if not config.name or any(c in config.name for c in "/\\"):
        raise ConfigError(
            f"name: must be a non-empty experiment name without slashes, got {short(config.name)}"
        )
    return config


def _check_compute(config: Config) -> None:
    """Rules of ``train.budget`` and ``tune``: settings that another one makes meaningless."""
    budget = config.train.budget
    for kind in ("gradient_evals", "seconds"):
        if getattr(budget, kind) is not None and budget.kind != kind:
            raise ConfigError(
                f"train.budget.{kind}: only used with train.budget.kind: {kind} "
                f"(kind is {budget.kind})"
            )
    if budget.kind == "seconds" and budget.seconds is None:
        raise ConfigError(
            "train.budget.seconds: set the wall time every job trains for with kind seconds"
        )
    if budget.kind == "seconds" and config.train.scheduler == "cosine":
        raise ConfigError(
            "train.scheduler: cosine needs a known number of epochs; a budget in seconds has none"
        )
    tune, space = config.tune, config.tune.space
    if tune.enabled and tune.sampler == "grid":
        for opt in config.optimizers:
            size = space.grid_points ** len(tunable_settings(opt))
            if tune.trials > size:
                raise ConfigError(
                    f"tune.trials: {tune.trials} trials exceed the grid of {opt} ({size} points); "
                    "lower tune.trials or raise tune.space.grid_points, so that every optimizer "
                    "tries distinct settings"
                )
    for name in ("lr", "rho"):
        low, high = getattr(space, f"{name}_low"), getattr(space, f"{name}_high")
        if not low < high:
            raise ConfigError(
                f"tune.space.{name}_high: must be above {name}_low ({low:g}), got {high:g}"
            )


#: ``executor.jobs_per_device``: the word that lets medbench choose (engine.executors.packing).
AUTO_JOBS = "auto"


def _check_packing(executor: ExecutorConfig) -> None:
    """``jobs_per_device`` is a number or ``auto``; Ray tasks take a fraction of one GPU or whole
    GPUs: packed jobs must share one that way."""
    if isinstance(executor.jobs_per_device, str):
        if executor.jobs_per_device != AUTO_JOBS:
            raise ConfigError(
                f"executor.jobs_per_device: {short(executor.jobs_per_device)} is neither a number "
                f"of jobs nor {AUTO_JOBS}"
            )
        return  # auto: one job per device under Ray
    gpus = executor.gpus_per_job / executor.jobs_per_device
    if gpus > 1 and not gpus.is_integer():
        raise ConfigError(
            f"executor.jobs_per_device: {executor.jobs_per_device} jobs sharing "
            f"gpus_per_job {executor.gpus_per_job:g} would each ask Ray for {gpus:g} GPUs; "
            "a task takes a fraction of one GPU or whole GPUs"
        )


def _check_external(data: DataConfig) -> None:
    """Each external dataset has a folder and a distinct, plain name; ``folds: none`` needs one."""
    names: dict[str, int] = {}
    for i, ext in enumerate(data.external):
        key = f"data.external[{i}]"
        _check_section(ext, key + ".")
        if not ext.root:
            raise ConfigError(f"{key}.root: the folder of the external dataset is required")
        if ext.name is not None:
            if not EXTERNAL_NAME.fullmatch(ext.name):
                raise ConfigError(
                    f"{key}.name: {short(ext.name)} must be letters, digits, '_' or '-' (it names "
                    "the external_{name}_* metrics)"
                )
            if ext.name in names:
                raise ConfigError(
                    f"{key}.name: {short(ext.name)} already names data.external[{names[ext.name]}]"
                )
            names[ext.name] = i
    if data.folds == "none" and not data.external:
        raise ConfigError(
            "data.folds: none trains on every image and tests only on external datasets; "
            "list at least one in data.external (or pass --external-root)"
        )


# -- loading ------------------------------------------------------------------------------------


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "models=[resnet18]"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {short(item)}: expected KEY=VALUE, e.g. --set train.epochs=3")
        try:
            value = load_yaml(raw, f"--set {key}") if raw.strip() else None
        except YamlSyntaxError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {short(item)}: {part} is not a section")
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _shipped() -> dict[str, Any]:
    """The configs shipped with medbench (package data), by name."""
    folder = resources.files("medbench") / "configs"
    return {p.name[: -len(".yaml")]: p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_configs() -> list[str]:
    """Names of the configs shipped with medbench."""
    return sorted(_shipped())


def describe_configs() -> dict[str, str]:
    """Name -> the first paragraph of the shipped config's leading comment, as one line.

    The paragraph ends at the first empty comment line or the first line of YAML, so a
    description that runs over several comment lines is given whole.
    """
    out = {}
    for name, path in sorted(_shipped().items()):
        words: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if not text.startswith("#") or not text.lstrip("#").strip():
                break
            words.append(text.lstrip("#").strip())
        out[name] = " ".join(words)
    return out


def _read_text(name_or_path: str | Path) -> tuple[str, str]:
    """(YAML text, where it came from) of a config file or a shipped config's name."""
    path = Path(name_or_path)
    if path.is_file():
        return read_text(path), str(path)
    shipped = _shipped()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)].read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    hint = closest(str(name_or_path), list(shipped))
    raise ConfigError(
        f"{name_or_path}: no such config file and no shipped config of that name{hint}; "
        f"shipped: {', '.join(sorted(shipped))}"
    )


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys, got {type(raw).__name__}")
    config = _build(Config, raw)
    config.source = source
    return validate(config)


def config_from_logged(raw: dict[str, Any] | None) -> Config:
    """The typed config of finished runs, rebuilt from the config they logged (``config.yaml`` of
    a parent run), which this or an older medbench version wrote.

    Unlike :func:`config_from_dict` it is tolerant, because the runs already happened: a key this
    version does not know (renamed or removed since) is left out, a key it does not find (added
    since) takes today's default from the dataclasses, and a value that cannot be read as its
    field's type is left out like an unknown key; those left out are named in one
    :class:`~medbench.errors.MedbenchWarning`. Nothing is validated: a value today's rules reject
    (an optimizer or a model no longer registered, a bound tightened since) was accepted when the
    runs were made, and it is what they used, so it is kept as logged.

    Parameters
    ----------
    raw : dict or None
        The logged config as YAML reads it; empty or None when no config was logged (every
        setting then takes its default).

    Returns
    -------
    Config
        Typed, with ``source`` ``"<logged>"``.
    """
    left_out: list[str] = []
    config = _rebuild(Config, raw if isinstance(raw, dict) else {}, "", left_out)
    config.source = "<logged>"
    if left_out:
        warnings.warn(
            MedbenchWarning(
                "the logged config has settings this medbench version does not know or cannot "
                f"read; left out (their defaults used): {', '.join(left_out)}"
            ),
            stacklevel=2,
        )
    return config


def _rebuild(cls: type, data: dict[str, Any], prefix: str, left_out: list[str]) -> Any:
    """:func:`_build`, tolerant: unknown and unreadable keys go to ``left_out``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in _fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            left_out.append(full)
            continue
        choices = fields[key].metadata.get("choices") or ()
        if isinstance(value, bool) and "off" in choices:  # as _build reads a bare off/on
            value = "on" if value else "off"
        try:
            kwargs[key] = _rebuild_value(value, hints[key], full, left_out)
        except ConfigError:
            left_out.append(full)
    return cls(**kwargs)


def _rebuild_value(value: Any, tp: Any, key: str, left_out: list[str]) -> Any:
    """:func:`_coerce` of one logged value, sections (and lists of them) rebuilt tolerantly."""
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _rebuild(tp, value, key + ".", left_out)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        if dataclasses.is_dataclass(item) and isinstance(value, list):
            return [_rebuild_value(v, item, f"{key}[{i}]", left_out) for i, v in enumerate(value)]
    return _coerce(value, tp, key)


def load_config(
    name_or_path: str | Path,
    overrides: list[str] | None = None,
    data_root: str | None = None,
    external_roots: list[str] | None = None,
) -> Config:
    """Read a YAML config (path or shipped name), apply ``--set`` overrides, validate.

    ``data_root`` replaces ``data.root``; each of ``external_roots`` is appended to
    ``data.external`` (``--data-root`` and ``--external-root`` on the command line).
    """
    text, source = _read_text(name_or_path)
    raw = load_yaml(text, source) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys, got {type(raw).__name__}")
    raw = _merge(raw, parse_overrides(overrides or []))
    if data_root is not None:
        raw = _merge(raw, {"data": {"root": str(data_root)}})
    if external_roots:
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        listed = data.get("external") or []
        if not isinstance(listed, list):
            raise ConfigError(f"data.external: expected a list, got {short(listed)}")
        added = [{"root": str(root)} for root in external_roots]
        raw = _merge(raw, {"data": {"external": [*listed, *added]}})
    return config_from_dict(raw, source=source)


# -- what a config changes ----------------------------------------------------------------------


def _marked(obj: Any, flag: str, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of the fields whose metadata ``flag`` is true (sections recursed)."""
    out: dict[str, Any] = {}
    for f in _fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            if f.metadata.get("hashed", True) or flag != "hashed":  # leaves carry other flags
                out.update(_marked(value, flag, key + "."))
        elif f.metadata.get(flag, flag == "hashed"):
            out[key] = value
    return out


def hashed_settings(config: Config) -> dict[str, Any]:
    """Dotted key -> value of every setting that changes a job's results (``hashed=True``)."""
    return _marked(config, "hashed")


def config_hash(config: Config) -> str:
    """Digest of every setting that changes a job's results (:func:`hashed_settings`)."""
    blob = json.dumps(hashed_settings(config), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def data_settings(data: DataConfig) -> DataSettings:
    """The ``data`` section as the data layer takes it (plain values; see
    :mod:`medbench.data.settings`)."""
    return DataSettings(
        root=data.root,
        layout=data.layout,
        sheet=data.sheet,
        include_normal=data.include_normal,
        labels=data.labels,
        folds=data.folds,
        n_folds=data.n_folds,
        folds_keep=tuple(data.folds_keep),
        exclude=tuple(str(i) for i in data.exclude),
        image_size=data.image_size,
        synthetic_n=data.synthetic.n,
        synthetic_seed=data.synthetic.seed,
        max_image_pixels=data.max_image_pixels,
        external=tuple(
            ExternalSettings(
                root=ext.root,
                name=ext.name,
                layout=ext.layout,
                sheet=ext.sheet,
                include_normal=ext.include_normal,
            )
            for ext in data.external
        ),
    )


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
