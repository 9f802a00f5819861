"""Shared by the benchmark scripts: every script writes its own log beside its results."""

import contextlib
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPOSITORY = Path(__file__).resolve().parent.parent


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def logged(name):
    """Copy everything printed inside to ``benchmarks/results/<name>.log``, headed by the
    command line (paths relative to the repository) and followed by the run time."""
    RESULTS.mkdir(exist_ok=True)
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPOSITORY)
    except ValueError:
        script = Path(script.name)
    start = time.perf_counter()
    with open(RESULTS / f"{name}.log", "w") as log:
        tee = _Tee(sys.stdout, log)
        with contextlib.redirect_stdout(tee):
            print(f"$ python {' '.join([str(script), *sys.argv[1:]])}")
            try:
                yield
            finally:
                print(f"run time: {time.perf_counter() - start:.0f} s")


def relative(path):
    """``path`` relative to the repository, for printing and for committed files."""
    try:
        return Path(path).resolve().relative_to(REPOSITORY)
    except ValueError:
        return Path(path).name
