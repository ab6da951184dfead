"""Optimizer registry: one entry per optimizer name, built from one shared set of settings.

A benchmark grid gives every optimizer the same settings (``lr``, ``rho``, ...); each optimizer
takes the ones it uses and ignores the rest (Adam ignores ``rho``), so one config serves the
whole grid. A setting no optimizer knows is an error, as is an unknown name.

An entry names its class rather than holding it: the registry imports no torch, so config checks
and ``medbench list`` stay fast; the class loads when an optimizer is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medbench.errors import ConfigError, closest
from medbench.optim.defaults import DEFAULT_LR, GC_NORMS
from medbench.optional import lazy_import

if TYPE_CHECKING:
    from torch.optim import Optimizer

# the classes load when an optimizer is built (see the module docstring)
torch_optim = lazy_import("torch.optim")
sam = lazy_import("medbench.optim.sam")

#: The settings an optimizer gets when the grid leaves them unset (rho defaults to SAM's own).
DEFAULTS: dict[str, Any] = {"lr": DEFAULT_LR, "base": "adam"}


@dataclass(frozen=True)
class BaseSpec:
    """A torch optimizer usable alone and as the base of the SAM family: one pass per step, and
    tuning searches its learning rate."""

    class_name: str  # in torch.optim
    settings: tuple[str, ...]
    description: str
    passes_per_step: int = 1
    tunable: tuple[str, ...] = ("lr",)

    @property
    def cls(self) -> type[Optimizer]:
        return getattr(torch_optim, self.class_name)


BASES: dict[str, BaseSpec] = {
    "adam": BaseSpec(
        "Adam",
        ("lr", "betas", "eps", "weight_decay", "amsgrad"),
        "Adam (Kingma & Ba 2015): the baseline and the base of the SAM family",
    ),
    "adamw": BaseSpec(
        "AdamW",
        ("lr", "betas", "eps", "weight_decay", "amsgrad"),
        "AdamW: Adam with decoupled weight decay",
    ),
    "sgd": BaseSpec(
        "SGD",
        ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
        "SGD with momentum",
    ),
}


@dataclass(frozen=True)
class SamSpec:
    """A member of the SAM family: its class, its own settings and fixed values. A step is two
    forward-backward passes (ascent, then descent); tuning searches lr and the radius rho."""

    class_name: str  # in medbench.optim.sam
    settings: tuple[str, ...]
    description: str
    fixed: tuple[tuple[str, Any], ...] = ()
    tunable: tuple[str, ...] = ("lr", "rho")

    @property
    def cls(self) -> type:
        return getattr(sam, self.class_name)

    @property
    def passes_per_step(self) -> int:
        return self.cls.passes_per_step


_SAM_SETTINGS = ("base", "rho", "adaptive")
_GC_SETTINGS = ("gc_conv_only", "gc_norm")

# Adding an optimizer is one entry here (or in BASES for a plain torch optimizer).
SAM_FAMILY: dict[str, SamSpec] = {
    "sam": SamSpec("SAM", _SAM_SETTINGS, "SAM (Foret et al. 2021) around Adam: 2 passes per step"),
    "asam": SamSpec(
        "SAM",
        ("base", "rho"),
        "ASAM (Kwon et al. 2021): SAM with a neighbourhood scaled by |w|",
        fixed=(("adaptive", True),),
    ),
    "gcsam": SamSpec(
        "GCSAM",
        _SAM_SETTINGS + _GC_SETTINGS,
        "GCSAM (Hassan et al. 2025): SAM ascending along the centralized gradient",
    ),
}

#: Every setting some optimizer of the registry understands.
OPTIMIZER_SETTINGS: frozenset[str] = frozenset(
    {s for spec in BASES.values() for s in spec.settings}
    | {s for spec in SAM_FAMILY.values() for s in spec.settings}
)


def optimizer_spec(name: str) -> BaseSpec | SamSpec:
    """The registry entry of optimizer ``name``.

    Raises
    ------
    ConfigError
        ``name`` is not in the registry (with the closest known name).
    """
    spec = BASES.get(name) or SAM_FAMILY.get(name)
    if spec is None:
        raise ConfigError(
            f"unknown optimizer {name!r}{closest(name, list_optimizers())}; "
            f"known: {', '.join(list_optimizers())}"
        )
    return spec


def is_sam_family(name: str) -> bool:
    """Whether ``name`` perturbs the weights before its step (SAM, ASAM, GCSAM)."""
    return name in SAM_FAMILY


def passes_per_step(optimizer: str | Optimizer) -> int:
    """Forward-backward passes one step of ``optimizer`` (a registry name or a built optimizer)
    costs: 2 for the SAM family, 1 otherwise."""
    if isinstance(optimizer, str):
        return optimizer_spec(optimizer).passes_per_step
    return getattr(optimizer, "passes_per_step", 1)


def tunable_settings(name: str) -> tuple[str, ...]:
    """The settings tuning searches for optimizer ``name`` (and its fold run logs)."""
    return optimizer_spec(name).tunable


def describe_optimizers() -> dict[str, str]:
    """Name -> one-line description, for ``medbench list``."""
    specs = {**BASES, **SAM_FAMILY}
    return {name: specs[name].description for name in list_optimizers()}


def list_optimizers() -> list[str]:
    """Names accepted by :func:`build_optimizer`.

    Returns
    -------
    list of str
        Plain torch optimizers and the SAM family, sorted.
    """
    return sorted([*BASES, *SAM_FAMILY])


def check_settings(settings: Iterable[str], key: str = "optimizer") -> None:
    """Fail with a ConfigError naming the first setting no optimizer understands."""
    known = sorted(OPTIMIZER_SETTINGS)
    for name in settings:
        if name not in OPTIMIZER_SETTINGS:
            raise ConfigError(
                f"{key}: unknown optimizer setting {name!r}{closest(name, known)}; "
                f"known: {', '.join(known)}"
            )


def build_optimizer(name: str, params: Iterable, **settings: Any) -> Optimizer:
    """Build optimizer ``name`` over ``params`` from the settings it uses; others are ignored.

    Parameters
    ----------
    name : str
        One of :func:`list_optimizers`.
    params : iterable of Tensor or dict
        Parameters to optimize, or parameter groups.
    **settings
        The grid's shared settings (``lr``, ``rho``, ``base``, ``weight_decay``, ...); unset ones
        take the paper's defaults (Adam base, lr 1e-4, rho 0.05). Each optimizer takes those it
        uses (Adam ignores ``rho``).

    Returns
    -------
    torch.optim.Optimizer
        A torch optimizer, or a :class:`~medbench.optim.SAM` / :class:`~medbench.optim.GCSAM`
        around its base optimizer.

    Raises
    ------
    ConfigError
        Unknown optimizer or base name, a setting no optimizer knows, an invalid ``gc_norm``, or
        a value the optimizer rejects.
    """
    optimizer_spec(name)  # an unknown name fails here, with the closest known one
    check_settings(settings)
    values = {**DEFAULTS, **settings}
    if "betas" in values:
        values["betas"] = tuple(values["betas"])  # YAML gives a list
    try:
        if name in BASES:
            return _build_base(name, params, values)
        return _build_sam(name, params, values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optimizer {name!r}: {err}") from err


def _pick(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {k: values[k] for k in names if k in values}


def _base_spec(name: str) -> BaseSpec:
    if name not in BASES:
        raise ConfigError(
            f"unknown base optimizer {name!r}{closest(name, list(BASES))}; "
            f"known: {', '.join(sorted(BASES))}"
        )
    return BASES[name]


def _build_base(name: str, params: Iterable, values: dict[str, Any]) -> Optimizer:
    spec = _base_spec(name)
    return spec.cls(params, **_pick(values, spec.settings))


def _build_sam(name: str, params: Iterable, values: dict[str, Any]) -> Optimizer:
    spec = SAM_FAMILY[name]
    own = {**_pick(values, spec.settings), **dict(spec.fixed)}
    base = _base_spec(str(own.pop("base")))
    if "gc_norm" in own and own["gc_norm"] not in GC_NORMS:
        raise ConfigError(
            f"optimizer {name!r}: gc_norm must be one of {', '.join(GC_NORMS)}, "
            f"got {own['gc_norm']!r}"
        )
    build: Callable[..., Optimizer] = spec.cls
    return build(params, base.cls, **own, **_pick(values, base.settings))
