"""Random draws keyed by the inputs themselves, so that random restarts do not depend on
which other inputs share a call (chunks of a large input, dask blocks, the inputs an earlier
run left unflipped).

Each input row gets a 64-bit key, a hash of its float64 bits and a seed; the ``c``-th
number of the ``s``-th draw for that row is a hash of ``(key, s, c)`` (splitmix64's
finaliser, a bijection of 64-bit words with full avalanche), mapped to ``[0, 1)`` by its
top 53 bits. So the same seed and the same input give the same numbers in any batch, in any
order, on any machine.
"""

import numpy as np

__all__ = ["RowRandomState"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    """splitmix64's finaliser on an array of uint64 (arithmetic wraps modulo 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _words(values):
    """The integers of ``values`` as an array of uint64 (each taken modulo 2^64)."""
    return np.array([int(v) % (1 << 64) for v in values], dtype=np.uint64)


def row_keys(rows, seed):
    """One key per row of ``rows`` (shape ``(n, ...)``, finite floats) under ``seed`` (a
    sequence of integers): equal rows get equal keys, whatever else is in ``rows``."""
    bits = np.ascontiguousarray(rows, dtype=np.float64).reshape(len(rows), -1).view(np.uint64)
    # Kept as one-element arrays: numpy warns on the wrap-around of scalar uint64.
    salt = np.zeros(1, dtype=np.uint64)
    for word in _words(seed):
        salt = _mix(salt ^ word) + _GOLDEN
    # Each column salted by its position, so permuted rows get other keys.
    columns = _mix(np.arange(1, bits.shape[1] + 1, dtype=np.uint64) * _GOLDEN + salt)
    return _mix(_mix(bits ^ columns).sum(axis=1, dtype=np.uint64) ^ salt)


def row_uniforms(keys, shape, draw):
    """Uniform numbers in ``[0, 1)`` of shape ``(len(keys),) + shape``, row ``r`` a function
    of ``keys[r]``, ``draw`` and the position in ``shape`` only."""
    n_cols = int(np.prod(shape, dtype=np.int64))
    cols = np.arange(n_cols, dtype=np.uint64) * _GOLDEN
    z = _mix(keys[:, None] + _mix(_words([draw + 1]) * _GOLDEN) + cols[None, :])
    return ((z >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape((len(keys),) + shape)


class RowRandomState(np.random.RandomState):
    """A ``RandomState`` whose :meth:`random_sample` draws per input row.

    ``random_sample(size)`` with ``size[0] == len(rows)`` returns, in row ``r``, numbers
    that depend only on ``seed``, the values of ``rows[r]`` and how many such draws came
    before; every other call, and every other method, draws from the ``RandomState``
    seeded with ``seed`` as usual.

    Parameters
    ----------
    rows : ndarray of shape (n, ...)
        The inputs the draws belong to (finite floats).
    seed : sequence of int
        Seeds both the row keys and the ordinary generator.
    """

    def __init__(self, rows, seed):
        super().__init__(seed)
        self._keys = row_keys(rows, seed)
        self._n_draws = 0

    def random_sample(self, size=None):
        """Uniform numbers in ``[0, 1)``; per row when ``size[0]`` is the number of rows."""
        if isinstance(size, tuple) and len(size) >= 1 and size[0] == len(self._keys):
            out = row_uniforms(self._keys, tuple(size[1:]), self._n_draws)
            self._n_draws += 1
            return out
        return super().random_sample(size)
