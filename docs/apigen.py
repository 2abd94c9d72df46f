"""Generate the API reference page from the ``__all__`` of skmoe's public modules.

The public modules are :mod:`skmoe` and every subpackage of it whose name does not
start with an underscore. ``conf.py`` calls :func:`write_api_rst` before Sphinx reads
the sources, so a name added to an ``__all__`` (or a new subpackage) shows up in the
reference without anyone editing a page, and ``tests/test_docs.py`` checks the same
list without needing Sphinx.

Each object is documented once, under its *home*: the exporting module whose name is
the longest prefix of the object's ``__module__`` (``skmoe.gating.SoftmaxGate`` rather
than a top-level re-export), so that Sphinx never sees two descriptions of one object.
Other modules that re-export it list it with a link.
"""

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

# Reading order of the reference; subpackages that are not listed here come after these,
# alphabetically. Listing one that does not exist (yet) is harmless.
PREFERRED_ORDER = [
    "skmoe",
    "skmoe.gating",
    "skmoe.reweighting",
    "skmoe.calibration",
    "skmoe.metrics",
    "skmoe.model_selection",
    "skmoe.datasets",
    "skmoe.inspection",
    "skmoe.federated",
    "skmoe.testing",
    "skmoe.utils",
]

HEADER = """\
.. This file is written by docs/apigen.py each time the docs are built; do not edit it.

.. _api:

=============
API reference
=============

This reference lists every public name of skmoe: the ``__all__`` of :mod:`skmoe` and of
each public subpackage. Everything else is private and may change without notice.
"""


@dataclass
class PublicModule:
    """A public module, its exported names and the error that kept it from importing."""

    name: str
    names: list = field(default_factory=list)
    module: object = None
    error: str = None


def discover_modules(package="skmoe"):
    """Return the public modules of ``package`` in reading order.

    Parameters
    ----------
    package : str, default="skmoe"
        The top-level package.

    Returns
    -------
    modules : list of PublicModule
        One entry per public module. A subpackage that fails to import, or that has no
        ``__all__``, is returned with ``error`` set instead of names.
    """
    root = importlib.import_module(package)
    found = [package] + [
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(root.__path__)
        if info.ispkg and not info.name.startswith("_")
    ]
    rank = {name: index for index, name in enumerate(PREFERRED_ORDER)}
    found.sort(key=lambda name: (rank.get(name, len(rank)), name))
    modules = []
    for name in found:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            modules.append(PublicModule(name, error=f"{type(exc).__name__}: {exc}"))
            continue
        exported = getattr(module, "__all__", None)
        if exported is None:
            modules.append(PublicModule(name, module=module, error="it has no __all__"))
            continue
        modules.append(PublicModule(name, names=list(exported), module=module))
    return modules


def kind_of(obj):
    """Return \"class\", \"function\", \"module\" or \"data\"."""
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    if inspect.ismodule(obj):
        return "module"
    return "data"


def _homes(modules):
    """Map ``id(obj)`` to the module that documents it."""
    homes = {}
    for public in modules:
        for name in public.names:
            obj = getattr(public.module, name, None)
            if obj is None or kind_of(obj) == "data":
                continue
            defined_in = getattr(obj, "__module__", "") or ""
            score = (
                len(public.name)
                if (
                    defined_in == public.name
                    or defined_in.startswith(public.name + ".")
                )
                else -1
            )
            best = homes.get(id(obj))
            if best is None or score > best[1]:
                homes[id(obj)] = (public.name, score)
    return {key: value[0] for key, value in homes.items()}


_ROLES = {"class": "class", "function": "func", "module": "mod"}
_SECTIONS = [("class", "Classes"), ("function", "Functions"), ("data", "Other names")]


_PLAIN_VALUES = (str, int, float, bool, tuple, list, dict, type(None))


def _data_entry(name, obj):
    """Lines documenting a public name that is neither a class nor a function.

    A plain value (``__version__``) is shown with its value only: autodoc would print
    the docstring of its type (``str``). Anything else (a scorer, ...) goes through
    autodoc, which shows a ``#:`` comment above its definition, if any, as its doc.
    """
    if isinstance(obj, _PLAIN_VALUES):
        description = (
            "The version of skmoe."
            if name == "__version__"
            else f"A constant of type ``{type(obj).__name__}``."
        )
        return [f".. data:: {name}", f"   :value: {obj!r}", "", f"   {description}", ""]
    return [f".. autodata:: {name}", ""]


def render_api_rst(modules=None):
    """Return the text of ``api.rst``.

    Parameters
    ----------
    modules : list of PublicModule, default=None
        The modules to document; ``None`` means :func:`discover_modules`.

    Returns
    -------
    text : str
        reStructuredText with one section per public module.
    """
    if modules is None:
        modules = discover_modules()
    homes = _homes(modules)
    lines = [HEADER]
    for public in modules:
        if public.error is not None:
            continue
        title = f":mod:`{public.name}`"
        lines += ["", title, "=" * len(title), ""]
        lines += [
            f".. automodule:: {public.name}",
            "   :no-members:",
            "   :no-inherited-members:",
            "",
            f".. currentmodule:: {public.name}",
            "",
        ]
        by_kind = {kind: [] for kind, _ in _SECTIONS}
        for name in public.names:
            obj = getattr(public.module, name, None)
            kind = "data" if obj is None else kind_of(obj)
            by_kind["data" if kind == "module" else kind].append((name, obj, kind))
        for kind, heading in _SECTIONS:
            entries = by_kind[kind]
            if not entries:
                continue
            lines += [heading, "-" * len(heading), ""]
            documented = [
                name
                for name, obj, _ in entries
                if kind != "data" and homes.get(id(obj)) == public.name
            ]
            if documented:
                # the stub pages use _templates/autosummary/{class,function}.rst
                lines += [".. autosummary::", "   :toctree: generated/", ""]
                lines += [f"   {name}" for name in documented] + [""]
            for name, obj, entry_kind in entries:
                if name in documented:
                    continue
                if entry_kind == "data":
                    lines += _data_entry(name, obj)
                    continue
                home = homes[id(obj)]
                role = _ROLES[entry_kind]
                lines += [
                    f"* ``{public.name}.{name}``: the same object as "
                    f":{role}:`{home}.{obj.__name__}`, re-exported here.",
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"


def write_api_rst(path):
    """Write ``api.rst`` to ``path`` if its text changed, and return the modules.

    Leaving an unchanged file alone keeps its timestamp, so that Sphinx does not
    re-read it on an incremental build.

    Parameters
    ----------
    path : str or pathlib.Path
        Where to write the page.

    Returns
    -------
    modules : list of PublicModule
        The modules found, including those that failed to import.
    """
    modules = discover_modules()
    text = render_api_rst(modules)
    path = Path(path)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return modules
