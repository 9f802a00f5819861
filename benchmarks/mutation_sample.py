"""Draw the random sample of mutants that ``benchmarks/results/mutation.md`` reports.

mutmut (a developer tool, outside CI; configured in ``pyproject.toml``) makes about 2,650
mutants of the kNN certificate, exact verifier and attack modules; running them all takes
hours on two cores. This prints a seeded sample of the mutant names of one target, for
``mutmut run $(python benchmarks/mutation_sample.py certificate)``. The names come from
``mutmut results --all true``, so run ``mutmut run`` once first to generate the mutants
(it may be stopped once it starts testing them).

Targets: ``certificate`` (``skrobust/_knn_certificate.py`` and ``skrobust/_exact.py``),
``attack`` (the kNN attack of eq. 23, ``skrobust/_eq23_attack.py``; the reported runs
mutated the same code when it lived in ``skrobust/_attack.py``),
``cascade`` (``skrobust/_knn_attack.py``, :class:`~skrobust.CascadeKNNAttack`).
"""

import argparse
import random
import subprocess

from _log import logged

TARGETS = {
    "certificate": lambda name: name.startswith(
        ("skrobust._knn_certificate.", "skrobust._exact.")
    ),
    "attack": lambda name: name.startswith("skrobust._eq23_attack."),
    "cascade": lambda name: name.startswith("skrobust._knn_attack."),
}
# The sizes and the seed of the reported runs (drawn in this order from one generator).
SIZES = {"certificate": 70, "attack": 40, "cascade": 24}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    listing = subprocess.run(
        ["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    names = [line.split(":")[0].strip() for line in listing.splitlines() if ":" in line]
    rng = random.Random(args.seed)
    samples = {}
    for target in ("certificate", "attack", "cascade"):
        pool = [name for name in names if TARGETS[target](name)]
        samples[target] = rng.sample(pool, min(SIZES[target], len(pool)))
    print("\n".join(samples[args.target]))


if __name__ == "__main__":
    with logged("mutation_sample"):
        main()
