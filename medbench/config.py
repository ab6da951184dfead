"""Typed configuration: YAML -> dataclasses, validated before any training starts.

Every mistake names its key: an unknown key (with the closest valid one), a value of the wrong
type, a choice outside its set, an unknown model or optimizer. ``--set a.b=value`` overrides go
through the same validation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medbench.errors import ConfigError, closest

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class SyntheticConfig:
    """The synthetic BUS dataset used when ``data.root`` is empty."""

    n: int = 600
    seed: int = 0


@dataclass
class DataConfig:
    root: str | None = None  # dataset folder; empty = generate the synthetic dataset
    sheet: str | None = None  # sheet name in the workbook (default: 'prediction' or the only one)
    folds: str = "auto"  # auto | sheet | stratified | site (leave-one-site-out)
    n_folds: int = 5  # for folds: stratified (and auto without a fold column)
    val_fraction: float = 0.2  # share of the training folds held out for early stopping
    image_size: int = 256
    augment: bool = False
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class OptimizerConfig:
    """Settings shared by every optimizer of the grid (each uses the ones it knows)."""

    lr: float = 1e-4
    weight_decay: float = 0.0
    rho: float = 0.05
    gc_conv_only: bool = False
    gc_norm: str = "raw"  # raw (authors' code) | centralized (paper's formula)
    momentum: float = 0.9  # sgd only


@dataclass
class EarlyStoppingConfig:
    monitor: str = "val_auc"  # val_auc | val_loss, on the validation split, never the test fold
    patience: int = 10
    min_delta: float = 0.0


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 32
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    scheduler: str = "none"  # none | cosine
    freeze_bn_second_pass: bool = False  # SAM family: keep BN running stats during the 2nd pass
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off
    channels_last: str = "auto"  # auto (on CUDA) | on | off
    compile: bool = False  # torch.compile the model (CUDA)
    threshold: float = 0.5  # P(malignant) at or above which a case is called malignant
    checkpoint_every: int = 1  # epochs between resumable checkpoints
    threads: int = 0  # CPU threads for torch (0 = torch's default); results on the CPU depend on it


@dataclass
class FlatnessConfig:
    enabled: bool = False
    n_samples: int = 256
    batch_size: int = 64
    power_iters: int = 20
    hutchinson_samples: int = 10
    landscape_points: int = 21
    landscape_radius: float = 1.0


@dataclass
class TrackingConfig:
    uri: str | None = None  # default: MLFLOW_TRACKING_URI, else MLflow's sqlite:///mlflow.db here


@dataclass
class ExecutorConfig:
    kind: str = "local"  # local | ray
    address: str | None = None  # Ray address (auto, ray://host:10001); empty = local Ray instance
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    max_retries: int = 1


@dataclass
class ReportConfig:
    enabled: bool = True
    out: str | None = None  # default reports/<name>


@dataclass
class Config:
    name: str = "medbench"
    models: list[str] = field(default_factory=lambda: ["resnet18"])
    optimizers: list[str] = field(default_factory=lambda: ["adam", "sam", "gcsam"])
    seeds: list[int] = field(default_factory=lambda: [0])
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    flatness: FlatnessConfig = field(default_factory=FlatnessConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    source: str = field(default="", metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


CHOICES: dict[str, tuple[str, ...]] = {
    "data.folds": ("auto", "sheet", "stratified", "site"),
    "optimizer.gc_norm": ("raw", "centralized"),
    "train.early_stopping.monitor": ("val_auc", "val_loss"),
    "train.scheduler": ("none", "cosine"),
    "train.amp": ("auto", "bf16", "off"),
    "train.channels_last": ("auto", "on", "off"),
    "executor.kind": ("local", "ray"),
}

#: Parts of the config that do not change a job's results: excluded from the config hash so that
#: resuming on another store, executor or report folder still finds the finished jobs.
NOT_HASHED = ("name", "tracking", "executor", "report", "data.root")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single name is a list of one
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of settings, got {value!r}")
        return _build(tp, value, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            full = f"{prefix}{key}"
            raise ConfigError(
                f"{full}: unknown key{closest(key, known)}; valid keys here: {', '.join(known)}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    return cls(**kwargs)


def _get(config: Config, dotted: str) -> Any:
    obj: Any = config
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def validate(config: Config) -> Config:
    """Check choices, ranges and names; raise ConfigError naming the key."""
    from medbench.models import check_model
    from medbench.optim import list_optimizers

    for key, allowed in CHOICES.items():
        value = _get(config, key)
        if value not in allowed:
            raise ConfigError(
                f"{key}: {value!r} is not one of {', '.join(allowed)}{closest(value, allowed)}"
            )
    positive = [
        "train.epochs",
        "train.batch_size",
        "data.image_size",
        "data.n_folds",
        "train.checkpoint_every",
    ]
    for key in positive:
        if _get(config, key) < 1:
            raise ConfigError(f"{key}: must be at least 1, got {_get(config, key)}")
    if config.data.n_folds < 2:
        raise ConfigError(f"data.n_folds: needs at least 2 folds, got {config.data.n_folds}")
    if not 0.0 < config.data.val_fraction < 1.0:
        raise ConfigError(
            f"data.val_fraction: must be between 0 and 1 (exclusive), got {config.data.val_fraction}"
        )
    if config.optimizer.lr <= 0:
        raise ConfigError(f"optimizer.lr: must be positive, got {config.optimizer.lr}")
    if config.optimizer.rho < 0:
        raise ConfigError(f"optimizer.rho: must be non-negative, got {config.optimizer.rho}")
    if config.train.early_stopping.patience < 1:
        raise ConfigError("train.early_stopping.patience: must be at least 1")
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
    if not config.name or any(c in config.name for c in "/\\"):
        raise ConfigError(
            f"name: must be a non-empty experiment name without slashes, got {config.name!r}"
        )
    return config


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "models=[resnet18]"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section")
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


def list_configs() -> list[str]:
    """Names of the configs shipped with medbench."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    hint = closest(str(name_or_path), list_configs())
    raise ConfigError(
        f"{name_or_path}: no such config file and no shipped config of that name{hint}; "
        f"shipped: {', '.join(list_configs())}"
    )


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys, got {type(raw).__name__}")
    config = _build(Config, raw)
    config.source = source
    return validate(config)


def load_config(
    name_or_path: str | Path,
    overrides: list[str] | None = None,
    data_root: str | None = None,
) -> Config:
    """Read a YAML config (path or shipped name), apply ``--set`` overrides, validate."""
    path = resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(raw).__name__}")
    raw = _merge(raw, parse_overrides(overrides or []))
    if data_root is not None:
        raw = _merge(raw, {"data": {"root": str(data_root)}})
    return config_from_dict(raw, source=str(path))


def config_hash(config: Config) -> str:
    """Digest of everything that changes a job's results (see :data:`NOT_HASHED`)."""
    data = config.to_dict()
    for dotted in NOT_HASHED:
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node.pop(last, None)
    for part in ("models", "optimizers", "seeds"):  # the grid's extent does not change a job
        data.pop(part)
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
