"""skrobust's one thread policy: who may set BLAS's threads, and how numba kernels run.

- **BLAS (and OpenMP) limits are process-wide**, so they are set here only, by
  :func:`single_threaded`, and only from the main thread. Called from any other thread
  (joblib's threading backend, a user's thread pool, the learner's own lane threads) it does
  nothing: whoever started those threads owns the process's limits, and two threads setting
  them at once would undo each other's. Inside a limit already set by skrobust, a nested one
  is free (``threadpoolctl`` costs about a millisecond per call).
- **numba kernels** run on :func:`numba_threads` threads (scikit-learn's ``n_jobs``
  convention), launched through :func:`run_parallel`, which serialises launches: numba's
  default ``workqueue`` threading layer aborts the process when two threads launch parallel
  kernels at once.

Callers decide *when* one thread is faster (each knows the size of its products); this module
decides *how* the limit is set, once for the package.
"""

import threading
from contextlib import contextmanager, nullcontext

from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "PARALLEL_LOCK",
    "blas_threads",
    "numba_threads",
    "on_main_thread",
    "run_parallel",
    "single_threaded",
]

#: Serialises parallel kernel launches (numba's workqueue layer is not thread-safe).
PARALLEL_LOCK = threading.Lock()

# The pools limited by single_threaded, innermost last (only the main thread changes this).
_active_apis = []


def on_main_thread():
    """Whether the caller runs on the interpreter's main thread."""
    return threading.current_thread() is threading.main_thread()


def single_threaded(when=True, user_api="blas"):
    """A context in which BLAS (``user_api="blas"``) or every native thread pool
    (``user_api=None``: BLAS and OpenMP) runs on one thread, when ``when`` is true.

    The only place skrobust sets thread limits. A no-op when ``when`` is false, off the main
    thread, and inside a limit this function set already (nested calls). ``user_api="blas"``
    inside an all-pools limit is covered by it; the converse is not, so an all-pools limit
    nested in a BLAS-only one is still set.
    """
    if not when or not on_main_thread() or _covered(user_api):
        return nullcontext()
    return _limited_api(user_api)


def _covered(user_api):
    return any(api is None or api == user_api for api in _active_apis)


@contextmanager
def _limited_api(user_api):
    _active_apis.append(user_api)
    try:
        with threadpool_limits(limits=1, user_api=user_api):
            yield
    finally:
        _active_apis.pop()


def blas_threads():
    """Threads BLAS may use here and now (after any ``threadpool_limits`` of the caller,
    ``OMP_NUM_THREADS`` or a joblib worker's limit)."""
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(counts, default=1)


def numba_threads(n_jobs):
    """Threads of a numba kernel for scikit-learn's ``n_jobs``: ``None`` is 1, ``-1`` all
    of numba's threads, ``-2`` all but one, ...

    The kernels are memory-bound and run between BLAS calls, whose worker threads keep
    spinning for a while after each product: on few cores a single kernel thread is usually
    fastest, so more are used only when asked for.
    """
    from numba import config

    limit = config.NUMBA_NUM_THREADS
    n_jobs = 1 if n_jobs is None else n_jobs
    if n_jobs < 0:
        n_jobs = limit + 1 + n_jobs
    return max(1, min(n_jobs, limit))


def run_parallel(kernel, *args, n_threads):
    """Call a parallel numba kernel under :data:`PARALLEL_LOCK`, on ``n_threads`` threads."""
    from numba import get_num_threads, set_num_threads

    with PARALLEL_LOCK:
        previous = get_num_threads()
        set_num_threads(n_threads)
        try:
            return kernel(*args)
        finally:
            set_num_threads(previous)
