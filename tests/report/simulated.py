"""Generators of the coverage tests: data whose truth is known by construction.

Fold structure: the differences between two optimizers over the folds of one cross-validation
are equicorrelated with ``rho = 1/k`` (the correlation that Nadeau & Bengio's correction
``n_test/n_train = 1/(k − 1)`` assumes: ``rho / (1 − rho) = 1/(k − 1)``). Images: a latent
severity shared by every model, plus the model's own noise, so the AUCs of two models on the same
images are paired as in the benchmark. With a fold model whose malignant images are shifted by
``m`` (in units of the benign scores' spread), the population AUC is ``Phi(m / c)``, with
``c = sqrt(2 · (1 + noise**2))``; a normal random ``m ~ N(mu, v)`` has mean AUC
``Phi(mu / sqrt(c**2 + v))`` (``E Phi(a + bZ) = Phi(a / sqrt(1 + b**2))``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def equicorrelated(
    rng: np.random.Generator, size: tuple[int, ...], rho: float, sd: float = 1.0
) -> np.ndarray:
    """Normal draws with mean 0 and standard deviation ``sd``, equicorrelated with ``rho`` along
    the last axis (a shared component ``sqrt(rho)·Z0`` plus ``sqrt(1 − rho)·Z_i``)."""
    shared = rng.standard_normal((*size[:-1], 1))
    own = rng.standard_normal(size)
    return sd * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * own)


def mean_auc(mu: float, var: float, noise: float) -> float:
    """Expected AUC of fold models whose malignant shift is ``N(mu, var)`` (module docstring)."""
    c2 = 2 * (1 + noise**2)
    return float(sps.norm.cdf(mu / np.sqrt(c2 + var)))


def fold_model_shifts(
    rng: np.random.Generator,
    n_sets: int,
    k: int,
    mu: float,
    delta: float,
    sd_fold: float,
    sd_model: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Malignant shifts of the fold models of A and B, shape (n_sets, k) each.

    Both share a fold difficulty ``N(0, sd_fold²)``; each adds its own training variation
    ``N(0, sd_model²)``, equicorrelated over the k folds with ``rho = 1/k`` (training sets
    overlap), independent between A and B; B is shifted by ``delta``. A and B are exchangeable
    when ``delta = 0``, so the true AUC difference is then exactly 0; otherwise it is
    ``mean_auc(mu + delta, v, noise) − mean_auc(mu, v, noise)`` with ``v = sd_fold² +
    sd_model²``.
    """
    fold = sd_fold * rng.standard_normal((n_sets, k))
    a = mu + fold + equicorrelated(rng, (n_sets, k), 1 / k, sd_model)
    b = mu + delta + fold + equicorrelated(rng, (n_sets, k), 1 / k, sd_model)
    return a, b
