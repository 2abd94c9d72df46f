"""Checks that the documentation follows the code, without building it.

- every name in the ``__all__`` of skmoe and of each public subpackage is in the API
  reference that ``docs/apigen.py`` generates, resolves, and has a docstring;
- the ``Examples`` sections of every docstring in skmoe pass as doctests (this test runs
  them, so the suite needs no ``--doctest-modules``);
- the code on the documentation pages (``>>>`` blocks) passes as doctests;
- the installation page shows the same two commands as README.md.

Building the site itself (warnings as errors) is ``docs/build.sh``.
"""

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
import warnings
from pathlib import Path

import pytest

import skmoe

REPO_DIR = Path(__file__).resolve().parents[1]
DOCS_DIR = REPO_DIR / "docs"
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _load_apigen():
    spec = importlib.util.spec_from_file_location("apigen", DOCS_DIR / "apigen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


apigen = _load_apigen()
PUBLIC_MODULES = apigen.discover_modules()


def _module_section(api_text, module_name):
    """The part of the generated page that documents ``module_name``."""
    title = f":mod:`{module_name}`"
    start = api_text.index(f"\n{title}\n{'=' * len(title)}\n")
    following = re.search(r"\n:mod:`[^`]+`\n=+\n", api_text[start + 1 :])
    end = len(api_text) if following is None else start + 1 + following.start()
    return api_text[start:end]


@pytest.mark.parametrize("public", PUBLIC_MODULES, ids=lambda public: public.name)
def test_public_module_imports_and_has_all(public):
    assert public.error is None, (
        f"{public.name} is a public subpackage but cannot be documented: {public.error}"
    )


@pytest.mark.parametrize("public", PUBLIC_MODULES, ids=lambda public: public.name)
def test_every_public_name_is_in_the_api_reference(public):
    if public.error is not None:
        pytest.skip(public.error)
    section = _module_section(apigen.render_api_rst(PUBLIC_MODULES), public.name)
    missing = []
    for name in public.names:
        assert hasattr(public.module, name), f"{public.name}.__all__ lists {name!r}, "
        "which the module does not define"
        documented = (
            re.search(rf"^   {re.escape(name)}$", section, re.MULTILINE)  # autosummary
            or re.search(
                rf"^\.\. (auto)?data:: {re.escape(name)}$", section, re.MULTILINE
            )
            or f"``{public.name}.{name}``" in section  # a re-export
        )
        if not documented:
            missing.append(name)
    assert not missing, f"not in the API reference: {public.name}.{missing}"


@pytest.mark.parametrize("public", PUBLIC_MODULES, ids=lambda public: public.name)
def test_every_public_class_and_function_has_a_docstring(public):
    if public.error is not None:
        pytest.skip(public.error)
    undocumented = [
        name
        for name in public.names
        if apigen.kind_of(obj := getattr(public.module, name)) in ("class", "function")
        and not inspect.getdoc(obj)
    ]
    assert not undocumented, f"no docstring: {public.name}.{undocumented}"


def test_every_subpackage_with_all_is_public():
    """A new public subpackage is picked up without editing the docs."""
    found = {public.name for public in PUBLIC_MODULES}
    for info in pkgutil.iter_modules(skmoe.__path__):
        if info.ispkg and not info.name.startswith("_"):
            assert f"skmoe.{info.name}" in found


def _all_modules():
    names = ["skmoe"]
    for info in pkgutil.walk_packages(skmoe.__path__, prefix="skmoe."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _all_modules())
def test_docstring_examples(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # a module of an optional extra that is not installed
        pytest.skip(f"{module_name} does not import here: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    tests = [test for test in finder.find(module, module_name) if test.examples]
    if not tests:
        return  # nothing to run; not worth a "skipped" line in every report
    with warnings.catch_warnings():
        # the examples show results; a fit that warns is the test of the fit's job
        warnings.simplefilter("ignore", UserWarning)
        for test in tests:
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) failed above"


def _pages_with_doctests():
    skipped = {"_build", "generated", "auto_examples", "_gallery_src", "_templates"}
    pages = []
    for path in sorted(DOCS_DIR.rglob("*.rst")):
        if skipped.intersection(path.relative_to(DOCS_DIR).parts):
            continue
        if re.search(r"^\s*>>> ", path.read_text(encoding="utf-8"), re.MULTILINE):
            pages.append(path)
    return pages


@pytest.mark.parametrize(
    "page", _pages_with_doctests(), ids=lambda path: str(path.relative_to(DOCS_DIR))
)
def test_code_on_documentation_pages(page):
    results = doctest.testfile(
        str(page), module_relative=False, optionflags=DOCTEST_FLAGS, verbose=False
    )
    assert results.failed == 0, f"{results.failed} example(s) failed on {page.name}"


def _install_commands():
    text = (DOCS_DIR / "install.rst").read_text(encoding="utf-8")
    blocks = re.findall(
        r"\.\. code-block:: bash\n   :class: skmoe-readme-commands\n\n((?:   .*\n)+)",
        text,
    )
    return [line.strip() for block in blocks for line in block.splitlines()]


def test_install_page_shows_the_readme_commands():
    commands = _install_commands()
    assert commands == [
        "pip install -e . && python examples/plot_quickstart.py",
        'pip install -e ".[test]" && python -m pytest -n 2',
    ]
    readme = REPO_DIR / "README.md"
    if not readme.is_file():
        pytest.skip("README.md does not exist yet")
    text = readme.read_text(encoding="utf-8")
    for command in commands:
        assert command in text, f"README.md does not show {command!r}"


def test_benchmark_markdown_renders_as_rest():
    pytest.importorskip("docutils")
    spec = importlib.util.spec_from_file_location("mdrender", DOCS_DIR / "mdrender.py")
    mdrender = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mdrender)
    markdown = "\n".join(
        [
            "# Benchmarks",
            "",
            "Run `python benchmarks/run.py`; see [sklearn](https://scikit-learn.org).",
            "",
            "## Fit time",
            "",
            "| estimator | fit (s) |",
            "|---|---:|",
            "| soft, `n_experts=4` | **1.2** |",
            "",
            "- three `bincount`s",
            "- a second item",
            "",
            "```bash",
            "python benchmarks/run.py --quick",
            "```",
        ]
    )
    rst = mdrender.markdown_to_rst(markdown, title_level=1, drop_title=True)
    assert ".. code-block:: markdown" not in rst  # not the verbatim fallback
    assert "Benchmarks" not in rst  # the README's title gives way to the page's
    assert "Fit time\n--------" in rst
    assert ".. list-table::" in rst and "``n_experts=4``" in rst
    assert "``bincount``\\ s" in rst
    assert "`sklearn <https://scikit-learn.org>`__" in rst
    assert ".. code-block:: bash" in rst
    # anything the translation gets wrong falls back to the source, never to an error
    assert mdrender.markdown_to_rst("a *dangling emphasis").startswith(
        ".. code-block:: markdown"
    )
