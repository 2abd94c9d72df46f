"""Sphinx configuration of the skmoe documentation.

The stack is the one scikit-learn and imbalanced-learn use: numpydoc docstrings,
autosummary stub pages, sphinx-gallery for ``examples/`` and the pydata theme. Build it
with ``docs/build.sh``, which treats every warning as an error.

Three things here are generated at build time rather than written by hand, so that the
site follows the code and the pages other people own:

- ``api.rst`` comes from the ``__all__`` of skmoe and its public subpackages
  (``docs/apigen.py``);
- the user guide's table of contents lists the pages of ``docs/user_guide/`` that exist,
  in reading order, so that a page not written yet leaves no broken link;
- the benchmarks page renders ``benchmarks/README.md`` when it exists.

Intersphinx (links to scikit-learn, NumPy, SciPy, ...) needs each project's
``objects.inv``. The build must not depend on the network: CI reaches only package
registries. So an inventory is used only when it is cached in ``docs/_intersphinx/``;
``SKMOE_DOCS_FETCH_INVENTORIES=1`` tries to download the missing ones first (5 s timeout
each, failures ignored). A project without an inventory gets no mapping at all, so no
build ever waits on the network or warns about an unreachable host; references to its
objects then render as plain code, and nitpicky mode ignores exactly those projects.
"""

import importlib
import os
import re
import sys
import urllib.request
import warnings
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
REPO_DIR = DOCS_DIR.parent
sys.path.insert(0, str(REPO_DIR))
sys.path.insert(0, str(DOCS_DIR))

import apigen  # noqa: E402  (docs/apigen.py)
import mdrender  # noqa: E402  (docs/mdrender.py)

import skmoe  # noqa: E402

# -- Project -------------------------------------------------------------------------
project = "skmoe"
author = "skmoe developers"
copyright = "2026, skmoe developers"
version = release = skmoe.__version__

# -- General -------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
# MathJax from the package sphinx-mathjax-offline (in the "docs" extra) when it is
# installed, so that formulas render for a reader without internet and in CI's browser
# check; otherwise Sphinx's default, MathJax from a CDN.
try:
    importlib.import_module("sphinx-mathjax-offline")
except ImportError:
    pass
else:
    extensions.append("sphinx-mathjax-offline")
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_gallery_src",
    "_intersphinx",
    "gallery_header.rst",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "auto_examples/*.pickle",
]
root_doc = "index"
default_role = "literal"
add_module_names = False
# every cross-reference must resolve: a broken :class: or :func: fails the build
nitpicky = True
nitpick_ignore_regex = [
    # numpydoc type descriptions that are prose, not objects
    ("py:class", r"array-like.*|.*of shape.*|default=.*|optional|estimator|callable"),
]

# -- API reference -------------------------------------------------------------------
PUBLIC_MODULES = apigen.write_api_rst(DOCS_DIR / "api.rst")
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# a parameter missing from the docstring, documented but not in the signature, or
# written without the space before the colon fails the build
numpydoc_validation_checks = {"PR01", "PR02", "PR10"}
numpydoc_validation_exclude = {
    r"\.__init__$",  # documented by the class docstring
    r"\.set_\w+_request$",  # written by scikit-learn's metadata routing
}

# -- Intersphinx, offline-safe (see the module docstring) ----------------------------
INVENTORIES = {
    "python": "https://docs.python.org/3",
    "numpy": "https://numpy.org/doc/stable",
    "scipy": "https://docs.scipy.org/doc/scipy",
    "sklearn": "https://scikit-learn.org/stable",
    "joblib": "https://joblib.readthedocs.io/en/stable",
    "matplotlib": "https://matplotlib.org/stable",
    "pandas": "https://pandas.pydata.org/docs",
}
# top-level Python names each project documents; used to silence nitpicky references
# into a project whose inventory is missing
INVENTORY_OBJECTS = {
    "python": r"(int|float|str|bool|list|tuple|dict|object|None|bytes|type|"
    r"Exception|ValueError|TypeError|ImportError|callable|collections\..*|"
    r"typing\..*|pathlib\..*|numbers\..*)",
    "numpy": r"(numpy|np)\..*|ndarray|dtype",
    "scipy": r"scipy\..*",
    "sklearn": r"sklearn\..*",
    "joblib": r"joblib\..*",
    "matplotlib": r"(matplotlib|mpl)\..*|Axes|Figure",
    "pandas": r"(pandas|pd)\..*|DataFrame|Series",
}
INVENTORY_CACHE = DOCS_DIR / "_intersphinx"


def _fetch_inventory(url, path, timeout=5.0):
    try:
        with urllib.request.urlopen(f"{url}/objects.inv", timeout=timeout) as response:
            payload = response.read()
    except (OSError, ValueError):  # URLError, timeouts and refused connections
        return False
    if not payload.startswith(b"# Sphinx inventory"):
        return False
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(payload)
    return True


intersphinx_mapping = {}
MISSING_INVENTORIES = []
for _name, _url in INVENTORIES.items():
    _path = INVENTORY_CACHE / f"{_name}.inv"
    if not _path.exists() and os.environ.get("SKMOE_DOCS_FETCH_INVENTORIES") == "1":
        _fetch_inventory(_url, _path)
    if _path.exists():
        intersphinx_mapping[_name] = (_url, str(_path))
    else:
        MISSING_INVENTORIES.append(_name)
        for _role in (
            "py:class",
            "py:obj",
            "py:func",
            "py:meth",
            "py:mod",
            "py:data",
            "py:exc",
            "py:attr",
        ):
            nitpick_ignore_regex.append((_role, INVENTORY_OBJECTS[_name]))
# never reach out from inside the build: a cached inventory is read from disk only
intersphinx_timeout = 5
intersphinx_cache_limit = -1

# -- Gallery -------------------------------------------------------------------------
GALLERY_HEADER_NAMES = ("GALLERY_HEADER.rst", "README.rst", "README.txt")


def _gallery_source():
    """Return the folder sphinx-gallery reads.

    sphinx-gallery needs a header file in the examples folder. While ``examples/`` has
    none, the gallery is read from ``docs/_gallery_src/``: ``docs/gallery_header.rst``
    next to symbolic links to ``examples/plot_*.py``.
    """
    examples = REPO_DIR / "examples"
    if any((examples / name).is_file() for name in GALLERY_HEADER_NAMES):
        return examples
    mirror = DOCS_DIR / "_gallery_src"
    mirror.mkdir(exist_ok=True)
    for stale in mirror.iterdir():
        stale.unlink()
    (mirror / "GALLERY_HEADER.rst").write_text(
        (DOCS_DIR / "gallery_header.rst").read_text(encoding="utf-8"), encoding="utf-8"
    )
    for script in sorted(examples.glob("plot_*.py")):
        (mirror / script.name).symlink_to(script)
    return mirror


sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(_gallery_source(), DOCS_DIR),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "backreferences_dir": "generated",
    "doc_module": ("skmoe",),
    "within_subsection_order": "gallery_order.QuickstartFirst",
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "download_all_examples": False,
    # the computation-times pages load jQuery and DataTables from CDNs; the times are
    # read from each example's page instead (see _check_example_times)
    "write_computation_times": False,
}
# An example must run in under a minute; build.sh reads the recorded times.
EXAMPLE_TIME_LIMIT_SECONDS = 60

# -- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skmoe {release}"
html_static_path = ["_static"]
html_css_files = ["skmoe.css"]
html_show_sourcelink = False
html_favicon = "_static/favicon.svg"
html_logo = "_static/logo.svg"
html_theme_options = {
    "logo": {"text": "skmoe"},
    "navbar_align": "left",
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # the examples' code needs the width more than a table of contents
    "secondary_sidebar_items": {"auto_examples/*": []},
}
html_context = {"default_mode": "light"}
# pages without sub-pages get no (empty) left sidebar, and so a wider text column
html_sidebars = {
    page: []
    for page in ["index", "install", "getting_started", "benchmarks", "changelog"]
}

# -- Pages that follow files owned elsewhere -----------------------------------------
# Reading order of the user guide; pages not listed come after these, alphabetically.
USER_GUIDE_ORDER = [
    "routing",
    "choosing_experts",
    "flexmix",
    "calibration_under_shift",
    "testing",
    "metrics",
    "shift",
    "federated",
    "scaling",
]
USER_GUIDE_MARKER = ".. user-guide-pages (filled in by conf.py)"


def _user_guide_toctree():
    present = sorted(path.stem for path in (DOCS_DIR / "user_guide").glob("*.rst"))
    rank = {name: index for index, name in enumerate(USER_GUIDE_ORDER)}
    present.sort(key=lambda name: (rank.get(name, len(rank)), name))
    entries = "\n".join(f"   user_guide/{name}" for name in present)
    return f".. toctree::\n   :maxdepth: 2\n\n{entries}\n"


BENCHMARKS_MARKER = ".. benchmark-results (filled in by conf.py)"
BENCHMARKS_DIR = REPO_DIR / "benchmarks"


def _benchmark_results():
    """The recorded results: ``benchmarks/README.md``, then the other Markdown files.

    Each benchmark may record its results in a Markdown file of its own
    (``README_metrics.md``, ...); each becomes a section of the page.
    """
    files = sorted(
        BENCHMARKS_DIR.glob("*.md"), key=lambda path: (path.name != "README.md", path)
    )
    if not files:
        return (
            ".. note::\n\n   No benchmark results are recorded yet: ``benchmarks/`` "
            "has no Markdown file.\n"
        )
    sections = []
    for path in files:
        markdown = path.read_text(encoding="utf-8")
        if path.name == "README.md":
            rst = mdrender.markdown_to_rst(markdown, title_level=1, drop_title=True)
        else:
            if not markdown.lstrip().startswith("#"):
                markdown = f"# Results in {path.name}\n\n{markdown}"
            rst = mdrender.markdown_to_rst(markdown, title_level=1)
        source = f"Recorded in ``benchmarks/{path.name}``."
        sections.append(f"{rst}\n{source}\n" if path.name != "README.md" else rst)
    return "\n\n".join(sections)


def _fill_generated_sections(app, docname, source):
    if docname == "user_guide":
        source[0] = source[0].replace(USER_GUIDE_MARKER, _user_guide_toctree())
    elif docname == "benchmarks":
        source[0] = source[0].replace(BENCHMARKS_MARKER, _benchmark_results())


def _always_reread_generated(app, env, added, changed, removed):
    # the pages above depend on files Sphinx does not track
    return ["user_guide", "benchmarks"]


def _report_import_failures(app):
    from sphinx.util import logging

    logger = logging.getLogger("skmoe.apigen")
    for public in PUBLIC_MODULES:
        if public.error is not None:
            logger.warning(
                "%s is left out of the API reference: %s", public.name, public.error
            )


def _check_example_times(app, exception):
    """Fail the build if an example took longer than EXAMPLE_TIME_LIMIT_SECONDS."""
    if exception is not None:
        return
    from sphinx.util import logging

    logger = logging.getLogger("skmoe.gallery")
    for page in sorted((DOCS_DIR / "auto_examples").glob("plot_*.rst")):
        seconds = example_seconds(page)
        if seconds is not None and seconds > EXAMPLE_TIME_LIMIT_SECONDS:
            logger.warning(
                "example %s.py ran for %.1f s, over the limit of %d s",
                page.stem,
                seconds,
                EXAMPLE_TIME_LIMIT_SECONDS,
            )


_RUNNING_TIME = re.compile(
    r"Total running time of the script:\*\*\s*\((\d+) minutes ([\d.]+) seconds\)"
)


def example_seconds(page):
    """Running time recorded by sphinx-gallery on an example's page, or None."""
    found = _RUNNING_TIME.search(page.read_text(encoding="utf-8"))
    if found is None:
        return None
    return 60 * int(found.group(1)) + float(found.group(2))


_TRAILING_UNDERSCORE_IN_SHAPE = re.compile(r"(of shape \([^)]*?)\b(\w+_)(?=[,)])")


def _quote_fitted_names_in_shapes(app, what, name, obj, options, lines):
    """Quote ``n_features_in_`` in ``of shape (n_features_in_,)``.

    numpydoc copies type descriptions verbatim, and reST reads a word that ends with an
    underscore as a link to a target of that name, which does not exist. scikit-learn
    writes such names in backquotes; this does it for docstrings that do not.
    """
    for index, line in enumerate(lines):
        while True:
            quoted = _TRAILING_UNDERSCORE_IN_SHAPE.sub(r"\1``\2``", line)
            if quoted == line:
                break
            line = quoted
        lines[index] = line


def _unlink_references_of_inherited_docstrings(app, env, node, contnode):
    """Render unresolved references inside docstrings inherited from other packages.

    The estimators inherit ``score``, ``set_params``, ``set_fit_request`` ... from
    scikit-learn, whose docstrings point at scikit-learn's own labels and glossary
    (``:ref:`metadata_routing```, ``:term:`meta-estimator```). Without scikit-learn's
    inventory these cannot resolve; they are not skmoe's to fix, so they render as plain
    text. Broken references in skmoe's own docstrings and pages still fail the build.
    This runs after intersphinx, which resolves them when the inventory is cached.
    """
    source = node.source or ""
    if re.search(r"docstring of (sklearn|numpy|scipy|joblib)\.", source):
        return contnode
    return None


def setup(app):
    app.connect(
        "missing-reference", _unlink_references_of_inherited_docstrings, priority=900
    )
    # before numpydoc (priority 500) turns the sections into reST
    app.connect(
        "autodoc-process-docstring", _quote_fitted_names_in_shapes, priority=100
    )
    app.connect("source-read", _fill_generated_sections)
    app.connect("env-get-outdated", _always_reread_generated)
    app.connect("builder-inited", _report_import_failures)
    app.connect("build-finished", _check_example_times)


# matplotlib: no GUI in the gallery run, and warnings from it are not ours
os.environ.setdefault("MPLBACKEND", "agg")
warnings.filterwarnings("ignore", category=UserWarning, message="FigureCanvasAgg")
