"""The linear classifier ŷ = argmax_i(w_iᵀx) and its NumPy reference, the ground truth for parity.

Weights come from a seeded NumPy Generator, so every exporter, server and test that uses the same
`LinearSpec` sees the same model without shipping the weights around.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LinearSpec:
    """Model dimensions and seed; the default is the full-size model (64 × 262,144 float32 = 64 MiB)."""

    classes: int = 64
    features: int = 262_144
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("classes", "features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"LinearSpec.{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"LinearSpec.seed must be a non-negative integer, got {self.seed!r}")

    @property
    def weight_bytes(self) -> int:
        return 4 * self.classes * self.features

    def weights(self) -> np.ndarray:
        """float32 [classes, features], standard normal / sqrt(features): scores then have unit variance
        for standard-normal inputs, so the arg-max is well separated from float32 rounding noise."""
        rng = np.random.default_rng(self.seed)
        weights = rng.standard_normal((self.classes, self.features), dtype=np.float32)
        weights *= np.float32(1.0 / np.sqrt(self.features))
        return weights

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LinearSpec:
        missing = [key for key in ("classes", "features", "seed") if key not in data]
        if missing:
            raise ValueError(f"model spec lacks {', '.join(missing)}: expected classes, features, seed")
        return cls(classes=int(data["classes"]), features=int(data["features"]), seed=int(data["seed"]))


def _as_batch(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if x.ndim != 2 or x.shape[1] != weights.shape[1]:
        raise ValueError(
            f"inputs must have shape [batch, {weights.shape[1]}] (features of the model), got {list(x.shape)}"
        )
    return x


def scores(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """float32 [batch, classes] = x @ Wᵀ, computed as (W @ xᵀ)ᵀ: same maths, but NumPy's BLAS call is
    several times faster in this layout for batches > 1 (W stays row-major)."""
    return (weights @ _as_batch(weights, x).T).T


def predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """int64 [batch]: the arg-max class of each row of x (the reference every server must match)."""
    return np.argmax(scores(weights, x), axis=1).astype(np.int64)


def make_inputs(features: int, n: int, seed: int = 1) -> np.ndarray:
    """float32 [n, features] standard-normal inputs, deterministic from the seed."""
    if features <= 0 or n < 0:
        raise ValueError(f"make_inputs needs features > 0 and n >= 0, got features={features}, n={n}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features), dtype=np.float32)
