"""Sphinx configuration for skrobust.

The build has no network: the intersphinx inventories are committed under ``docs/_inv``
(see ``docs/_inv/make_inventories.py`` for how they were written).
"""

import os

import skrobust

project = "skrobust"
author = "the skrobust developers"
copyright = "2026, the skrobust developers"
release = skrobust.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_inv", "auto_examples/*.ipynb", "auto_examples/*.py"]

# One page per public object, from the templates in _templates/autosummary: a class page
# documents every public method and attribute with its parameters.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# A public docstring of skrobust's own fails the build without a docstring (GL08), with an
# undocumented or unknown parameter (PR01, PR02), a parameter without type or description
# (PR04, PR07), or without a Returns or Yields section (RT01). Every public class and function
# must also have an Examples section (checked by _require_examples below: numpydoc's EX01
# would demand one of every method too; a class's examples show its methods).
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "PR04", "PR07", "RT01"}
# Not validated: methods inherited from scikit-learn's base classes (their docstrings are
# scikit-learn's: get_params, set_params, fit_transform, set_output, get_metadata_routing,
# set_*_request), dunder methods; AttackResult, the task results (PairAttackResult,
# TripletAttackResult, KNNAttackResult), CascadeResult and KnnVerification, records that
# attack() and verify_knn() return, and KNNProblem, the record CascadeKNNAttack hands
# its members: users never construct them, and their fields are documented as Attributes,
# not as Parameters. The members' perturb methods implement KNNAttackMember.perturb and
# keep its docstring (autodoc shows the inherited one), so their own __doc__ is empty. Nor the
# hypothesis strategies of skrobust.testing: @st.composite builds their wrappers at run time,
# so numpydoc cannot read their source (it fails); their docstrings render all the same, and
# the Examples check below still applies to them.
numpydoc_validation_exclude = {
    r"^skrobust\.(AttackResult|PairAttackResult|TripletAttackResult|KNNAttackResult)$",
    r"^skrobust\.certificates\.KnnVerification$",
    r"^skrobust\.(CascadeResult|KNNProblem)$",
    r"^skrobust\.(PairAttackResult|TripletAttackResult|KNNAttackResult)$",
    r"^skrobust\.(Eq23|MarginPGD|MaxMarginLP|TargetedLineSearch)\.perturb$",
    r"^skrobust\.testing\.(boxes|components|fixed_metrics|pairs_in_box|pairs_with_perturbations"
    r"|perturbations|points_in_box|relu_networks|triplets_in_box)$",
    r"\.get_params$",
    r"\.set_params$",
    r"\.fit_transform$",
    r"\.set_output$",
    r"\.get_metadata_routing$",
    r"\.set_[a-z_]+_request$",
    r"\.__[a-z_]+__$",
}


def _reexports():
    """``{alias: home}`` for every public class and function that a public module re-exports
    from its home module, and ``{home: [aliases]}``.

    An object exported by two modules (``MetricNorms`` is both ``skrobust.MetricNorms`` and
    ``skrobust.certificates.MetricNorms``) would otherwise be described twice: two pages with
    the same text, and for a class the same canonical name (``skrobust._bounds.MetricNorms``)
    twice, which Sphinx rejects. Its one full page lives in its home, the module that owns
    the subject (``skrobust.certificates`` for every certificate, issue 9); an alias keeps a
    short page that declares the name, so ``:func:`skrobust.certified_radius``` and links from
    the gallery still resolve, and points to the home page, whose gallery lists the examples
    that use either name.
    """
    import importlib
    import inspect
    import pkgutil

    public = ["skrobust"] + [
        f"skrobust.{m.name}" for m in pkgutil.iter_modules(skrobust.__path__) if m.name[0] != "_"
    ]
    home_of = {}
    for home in _HOMES:
        module = importlib.import_module(home)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                home_of[id(obj)] = f"{home}.{name}"
    aliases, by_home = {}, {}
    for module_name in public:
        if module_name in _HOMES:
            continue
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            home = home_of.get(id(getattr(module, name)))
            if home is not None:
                aliases[f"{module_name}.{name}"] = home
                by_home.setdefault(home, []).append(f"{module_name}.{name}")
    return aliases, by_home


# Modules that own their subject: what they export is documented in them, and every other
# public module that re-exports it links there (see _reexports).
_HOMES = ("skrobust.certificates", "skrobust.targets")
_aliases, _aliases_by_home = _reexports()
autosummary_context = {"reexported": _aliases, "aliases": _aliases_by_home}

_inv = os.path.join(os.path.dirname(__file__), "_inv")
intersphinx_mapping = {
    name: (url, os.path.join(_inv, f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "scipy": "https://docs.scipy.org/doc/scipy/",
        "sklearn": "https://scikit-learn.org/stable/",
        "metric_learn": "http://contrib.scikit-learn.org/metric-learn/",
    }.items()
}

# Every cross-reference must resolve (sphinx-build -n). A reference that cannot (a target
# no inventory has) goes here as (domain:role, target), with the reason in a comment; today
# every reference resolves against the inventories in _inv.
nitpicky = True
nitpick_ignore = []

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "download_all_examples": False,
    # .ci/run fails when an example takes longer than its budget (EXAMPLE_BUDGET, 60 s).
    "doc_module": ("skrobust",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skrobust": None},
    "remove_config_comments": True,
}

html_theme = "alabaster"
html_static_path = []


def _require_examples(app, what, name, obj, options, lines):
    """Fail the build (under -W) when a public class or function has no Examples section."""
    if what in ("class", "function") and name.startswith("skrobust."):
        if not any(line.strip() in ("Examples", ".. rubric:: Examples") for line in lines):
            from sphinx.util import logging

            logging.getLogger(__name__).warning(f"{name}: no Examples section (EX01)")


def setup(app):
    app.connect("autodoc-process-docstring", _require_examples, priority=400)
