"""Write the intersphinx inventories the documentation build reads (it has no network).

No documentation package of Python, NumPy, SciPy, scikit-learn or metric-learn is installed
on the machine that builds the docs, so each ``<project>.inv`` is written with ``sphobjinv``
from the public names of the installed package, pointing where that project's own
documentation puts them (its autosummary page per object, its glossary for terms). Labels
and terms that scikit-learn's inherited docstrings reference are added by name.

Run from the repository root after changing a pinned version of a project::

    pip install sphobjinv && python docs/_inv/make_inventories.py
"""

import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import sphobjinv as soi

HERE = Path(__file__).parent


def _obj(inv, name, role, uri, domain="py", dispname="-"):
    inv.objects.append(
        soi.DataObjStr(
            name=name, domain=domain, role=role, priority="1", uri=uri, dispname=dispname
        )
    )


def _public_members(module_name):
    """``(name, object)`` of a module's public classes and functions (its ``__all__``)."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) or callable(obj):
            yield name, obj


def _role(obj):
    return "class" if inspect.isclass(obj) else "function"


def _add_autosummary_module(inv, module_name, page):
    """Every public class/function of ``module_name`` on ``page(full_name)``, methods too."""
    _obj(inv, module_name, "module", page(module_name, module=True))
    for name, obj in _public_members(module_name):
        full = f"{module_name}.{name}"
        uri = page(full)
        _obj(inv, full, _role(obj), uri)
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_") and member != "__call__":
                    continue
                if callable(value) or isinstance(value, property):
                    role = "attribute" if isinstance(value, property) else "method"
                    _obj(inv, f"{full}.{member}", role, uri.replace("#$", f"#{full}.{member}"))


def _write(inv, project, version):
    inv.project, inv.version = project, version
    soi.writebytes(HERE / f"{project}.inv", soi.compress(inv.data_file(contract=True)))
    print(f"{project} {version}: {len(inv.objects)} objects")


def python():
    import sys

    inv = soi.Inventory()
    for name in dir(builtins):
        obj = getattr(builtins, name)
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            _obj(inv, name, "exception", f"library/exceptions.html#{name}")
        elif inspect.isclass(obj):
            _obj(inv, name, "class", f"library/functions.html#{name}")
        elif callable(obj):
            _obj(inv, name, "function", f"library/functions.html#{name}")
    for name in ("None", "True", "False", "NotImplemented", "Ellipsis"):
        _obj(inv, name, "data", f"library/constants.html#{name}")
    for module_name in ("dataclasses", "collections", "typing", "os", "pathlib", "pickle"):
        _obj(inv, module_name, "module", f"library/{module_name}.html#module-{module_name}")
        for name, obj in _public_members(module_name):
            full = f"{module_name}.{name}"
            _obj(inv, full, _role(obj), f"library/{module_name}.html#{full}")
    _obj(inv, "os.PathLike", "class", "library/os.html#os.PathLike")
    _obj(inv, "path-like object", "term", "glossary.html#term-path-like-object", domain="std")
    _obj(inv, "callable", "term", "glossary.html#term-callable", domain="std")
    _write(inv, "python", f"{sys.version_info.major}.{sys.version_info.minor}")


def numpy():
    import numpy as np

    inv = soi.Inventory()

    def page(full, module=False):
        if module:
            return f"reference/index.html#module-{full}"
        return f"reference/generated/{full}.html#$"

    _add_autosummary_module(inv, "numpy", page)
    _obj(inv, "numpy.random.RandomState", "class", "reference/random/legacy.html#$")
    _obj(inv, "numpy.random.Generator", "class", "reference/random/generator.html#$")
    _obj(inv, "array_like", "term", "glossary.html#term-array_like", domain="std")
    _write(inv, "numpy", np.__version__)


def scipy():
    import scipy

    inv = soi.Inventory()

    def page(full, module=False):
        if module:
            return f"reference/{full.split('.', 1)[1]}.html#module-{full}"
        return f"reference/generated/{full}.html#$"

    for sub in ("linalg", "optimize", "sparse", "spatial.distance", "stats", "special"):
        _add_autosummary_module(inv, f"scipy.{sub}", page)
    _write(inv, "scipy", scipy.__version__)


def sklearn():
    import sklearn

    inv = soi.Inventory()

    def page(full, module=False):
        if module:
            return f"api/{full}.html#module-{full}"
        return f"modules/generated/{full}.html#$"

    _obj(inv, "sklearn", "module", "api/index.html#module-sklearn")
    for name in ("set_config", "get_config", "config_context", "clone"):
        _obj(inv, f"sklearn.{name}", "function", f"modules/generated/sklearn.{name}.html#$")
    for info in pkgutil.iter_modules(sklearn.__path__):
        if info.name.startswith("_") or info.name in ("tests", "externals", "conftest"):
            continue
        _add_autosummary_module(inv, f"sklearn.{info.name}", page)
    _add_autosummary_module(inv, "sklearn.utils.metadata_routing", page)
    # Labels and terms that the docstrings of scikit-learn's base classes reference.
    for term in ("meta-estimator", "estimator", "fit", "transform", "predict", "scorer"):
        _obj(inv, term, "term", f"glossary.html#term-{term}", domain="std")
    _obj(
        inv,
        "metadata_routing",
        "label",
        "metadata_routing.html#$",
        domain="std",
        dispname="Metadata Routing",
    )
    _obj(
        inv,
        "sphx_glr_auto_examples_miscellaneous_plot_set_output.py",
        "label",
        "auto_examples/miscellaneous/plot_set_output.html#$",
        domain="std",
        dispname="Introducing the set_output API",
    )
    _write(inv, "sklearn", sklearn.__version__)


def metric_learn():
    import metric_learn as ml

    inv = soi.Inventory()

    def page(full, module=False):
        if module:
            return "metric_learn.html#module-metric_learn"
        return f"generated/{full}.html#$"

    _add_autosummary_module(inv, "metric_learn", page)
    _write(inv, "metric_learn", ml.__version__)


if __name__ == "__main__":
    for make in (python, numpy, scipy, sklearn, metric_learn):
        make()
