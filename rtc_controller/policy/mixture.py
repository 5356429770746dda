"""Exact flow-matching velocity of a Gaussian mixture over action chunks (a multimodal test field).

Data x₀ ~ Σ_k π_k N(μ_k, Σ_k) over chunks ``[H, D]``; the flow path is x_t = (1 − t)·x₀ + t·ε with
ε ~ N(0, I), t = 1 noise -> t = 0 data (openpi). The exact velocity is
    v(x, t) = E[ε − x₀ | x_t = x] = (x − E[x₀ | x_t = x]) / t,
with E[x₀ | x_t] a posterior-weighted sum of per-component Gaussian conditionals. It is closed form,
cheap, differentiable (``full`` guidance works) and multimodal.

Temporal smoothness: Σ_k = K_time ⊗ diag(σ_k²), one shared H×H correlation kernel K_time = U Λ Uᵀ
(squared-exponential with a small white-noise floor), per-component per-dimension scales σ_k [D].
In the eigenbasis of K_time the noisy covariance (1 − t)²Σ_k + t²I is diagonal, so everything is
O(K·H²·D) without any matrix inverse.

Axes: b = batch, K = components, H = horizon, D = action dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .base import Observation


@jax.tree_util.register_dataclass
@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """Mixture parameters (a pytree: usable as a traced sampler context)."""

    means: jax.Array  # μ, [K, H, D]
    log_weights: jax.Array  # log π (unnormalised), [K]
    scales: jax.Array  # σ, [K, D], marginal std of each dimension around μ_k
    basis: jax.Array  # U, [H, H], eigenvectors (columns) of the unit-variance temporal kernel
    eigenvalues: jax.Array  # Λ, [H]


def temporal_kernel(horizon: int, *, length_scale_steps: float, white_fraction: float = 0.02):
    """Eigen-decomposition (U [H, H], Λ [H]) of a unit-variance squared-exponential kernel over action steps.

    K_ij = (1 − w)·exp(−(i − j)²/(2ℓ²)) + w·δ_ij, w = ``white_fraction`` (keeps Λ ≥ w: small independent jitter).
    """
    if horizon < 1 or length_scale_steps <= 0 or not 0 < white_fraction <= 1:
        raise ValueError("need horizon >= 1, length_scale_steps > 0 and 0 < white_fraction <= 1")
    i = np.arange(horizon, dtype=np.float64)
    k = (1 - white_fraction) * np.exp(-((i[:, None] - i[None]) ** 2) / (2 * length_scale_steps**2))
    k += white_fraction * np.eye(horizon)
    lam, u = np.linalg.eigh(k)
    return jnp.asarray(u, jnp.float32), jnp.asarray(np.maximum(lam, white_fraction * 0.5), jnp.float32)


def make_mixture(
    means, *, scales, length_scale_steps: float = 10.0, white_fraction: float = 0.02, weights=None
) -> GaussianMixture:
    """Build a mixture from means ``[K, H, D]``, scales ``[K, D]`` (or broadcastable) and optional weights ``[K]``."""
    means = jnp.asarray(means, jnp.float32)
    if means.ndim != 3:
        raise ValueError(f"means must be [K, H, D], got {means.shape}")
    n_comp, horizon, dim = means.shape
    scales = jnp.broadcast_to(jnp.asarray(scales, jnp.float32), (n_comp, dim))
    weights = jnp.full((n_comp,), 1.0 / n_comp) if weights is None else jnp.asarray(weights, jnp.float32)
    u, lam = temporal_kernel(horizon, length_scale_steps=length_scale_steps, white_fraction=white_fraction)
    return GaussianMixture(means, jnp.log(weights), scales, u, lam)


def posterior_mean(mix: GaussianMixture, x_t: jax.Array, t) -> tuple[jax.Array, jax.Array]:
    """E[x₀ | x_t] ``[b, H, D]`` and the component responsibilities ``[b, K]`` at flow time t."""
    a = 1.0 - t  # x_t | k ~ N(a·μ_k, a²Σ_k + t²I)
    prior_var = mix.eigenvalues[None, :, None] * mix.scales[:, None, :] ** 2  # [K, H, D] in the eigenbasis
    noisy_var = a**2 * prior_var + t**2
    resid = jnp.einsum("ih,bkid->bkhd", mix.basis, x_t[:, None] - a * mix.means[None])  # rotate time axis
    log_lik = -0.5 * jnp.sum(resid**2 / noisy_var + jnp.log(noisy_var), axis=(2, 3))  # [b, K]
    resp = jax.nn.softmax(mix.log_weights[None] + log_lik, axis=-1)
    cond = mix.means[None] + jnp.einsum("ih,bkhd->bkid", mix.basis, a * prior_var / noisy_var * resid)
    return jnp.einsum("bk,bkid->bid", resp, cond), resp


def mixture_velocity(mix: GaussianMixture, x_t: jax.Array, t) -> jax.Array:
    """Exact flow-matching velocity ``[b, H, D]`` at flow time t ∈ (0, 1] (t = 1 noise)."""
    mean, _ = posterior_mean(mix, x_t, t)
    return (x_t - mean) / t


def sample_mixture(mix: GaussianMixture, key: jax.Array, batch: int) -> tuple[jax.Array, jax.Array]:
    """Exact draws x₀ ``[batch, H, D]`` and their component indices ``[batch]``."""
    k_comp, k_eps = jax.random.split(key)
    comp = jax.random.categorical(k_comp, mix.log_weights, shape=(batch,))
    z = jax.random.normal(k_eps, (batch,) + mix.means.shape[1:])
    corr = jnp.einsum("ih,bhd->bid", mix.basis, jnp.sqrt(mix.eigenvalues)[None, :, None] * z)
    return mix.means[comp] + corr * mix.scales[comp][:, None, :], comp


class MixtureFlowPolicy:
    """What the mixture policies share (``SimPolicy``, the twin's ``TwinMixturePolicy``): the exact velocity of
    their ``GaussianMixture`` context, in a model space that is a per-dimension affine map of the physical one,
    model = (physical − ``_offset``)/``_scale`` (``_offset``, ``_scale`` ``[D]``, set by the subclass)."""

    _offset: np.ndarray
    _scale: np.ndarray

    def velocity(self, context: GaussianMixture, x_t: jax.Array, t) -> jax.Array:
        """Exact flow velocity ``[b, H, D]`` of the mixture at flow time t (1 = noise)."""
        return mixture_velocity(context, x_t, t)

    def to_model(self, actions_physical: np.ndarray, observation: Observation | None = None) -> np.ndarray:
        """Physical ``[..., D]`` -> model space ``[..., D]``."""
        return (np.asarray(actions_physical, np.float64) - self._offset) / self._scale

    def to_physical(self, actions_model: np.ndarray, observation: Observation | None = None) -> np.ndarray:
        """Model space ``[..., D]`` -> physical ``[..., D]``."""
        return np.asarray(actions_model, np.float64) * self._scale + self._offset
