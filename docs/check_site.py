"""Open the built documentation in headless Chromium, as a reader would, and check it.

Run after ``docs/build.sh``::

    python docs/check_site.py [--html docs/_build/html] [--out docs/_build/screenshots]

The site is served from 127.0.0.1 by a local HTTP server (nothing leaves the machine:
Chromium's host resolver maps every other name to "not found", so CDN assets such as
MathJax simply fail to load, as they would for an offline reader). For each main page,
and for every example of the gallery and every API page, it checks that

- the page loads with the theme (the pydata header and the stylesheets are there);
- every image has loaded (``complete`` and ``naturalWidth > 0``): the gallery's
  thumbnails, the plots of every example, the logos;
- the gallery lists one thumbnail per example, and the examples that make plots show
  them;
- no local resource failed to load (404s in the browser's console), and every link
  to another page of the site points to a file that exists;

and saves a screenshot of each main page and example (1280 pixels wide, down to 4000
pixels) in ``--out``.
It exits with status 1 if any check fails. It needs selenium (PyPI) and Debian's
``chromium`` and ``chromium-driver``.
"""

import argparse
import base64
import functools
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
MAIN_PAGES = [
    "index.html",
    "install.html",
    "getting_started.html",
    "user_guide.html",
    "user_guide/routing.html",
    "user_guide/calibration_under_shift.html",
    "user_guide/metrics.html",
    "user_guide/shift.html",
    "user_guide/federated.html",
    "auto_examples/index.html",
    "api.html",
    "generated/skmoe.MixtureOfExpertsClassifier.html",
    "benchmarks.html",
    "changelog.html",
]
WINDOW = (1280, 1000)
# screenshots show the whole page down to this height (long API pages are cut)
MAX_SCREENSHOT_HEIGHT = 4000

# One round trip per page: what the checks need, measured in the page itself.
PAGE_STATE_JS = """
const images = Array.from(document.images).map(img => ({
    src: img.getAttribute('src'),
    loaded: img.complete && img.naturalWidth > 0,
    width: img.naturalWidth,
    thumbnail: img.closest('.sphx-glr-thumbcontainer') !== null,
    plot: img.matches('.sphx-glr-single-img, .sphx-glr-multi-img'),
}));
const header = document.querySelector('header.bd-header, .bd-header');
const sheets = Array.from(document.styleSheets).filter(s => s.href);
return {
    title: document.title,
    images: images,
    header_height: header ? header.getBoundingClientRect().height : 0,
    stylesheets: sheets.length,
    article_text: (document.querySelector('article') || document.body).innerText.length,
    links: Array.from(document.querySelectorAll('a[href]'))
        .map(a => a.href)
        .filter(href => href.startsWith(location.origin)),
    math: document.querySelectorAll('.math').length,
    math_rendered: document.querySelectorAll('mjx-container').length,
    page_height: document.documentElement.scrollHeight,
};
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(html_dir):
    """Serve ``html_dir`` on a free port of 127.0.0.1; return the server and its URL."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def start_chromium(user_data_dir):
    """Start headless Chromium through chromedriver, without any network access."""
    # selenium must not try to download a browser or driver
    os.environ["SE_OFFLINE"] = "true"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise SystemExit("check_site.py needs selenium: pip install selenium") from None

    options = webdriver.ChromeOptions()
    options.binary_location = _find_executable(["chromium", "chromium-browser"])
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # every host but the local server resolves to nothing: no request leaves
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=_find_executable(["chromedriver"]))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_window_size(*WINDOW)
    return driver


def _find_executable(names):
    for name in names:
        for folder in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin"]:
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise SystemExit(
        f"none of {names} found; install them with "
        "'apt-get install -y chromium chromium-driver'"
    )


def _wait_for_images(driver, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = driver.execute_script(
            "return Array.from(document.images).filter(i => !i.complete).length;"
        )
        if pending == 0:
            return
        time.sleep(0.1)


def _wait_for_math(driver, timeout=10.0):
    """Wait until MathJax has typeset the page, if the page loads MathJax."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = driver.execute_script(
            "const math = document.querySelectorAll('.math').length;"
            "if (math === 0 || !window.MathJax) return true;"
            "return document.querySelectorAll('mjx-container').length >= math;"
        )
        if done:
            return
        time.sleep(0.1)


def check_page(driver, base_url, html_dir, page, screenshot=None, local_mathjax=False):
    """Load ``page``, run the checks, and return (state, list of problems)."""
    driver.get(base_url + page)
    _wait_for_images(driver)
    if local_mathjax:
        _wait_for_math(driver)
    state = driver.execute_script(PAGE_STATE_JS)
    problems = []
    if state["header_height"] <= 0:
        problems.append("the theme's header is missing or empty")
    if state["stylesheets"] == 0:
        problems.append("no stylesheet loaded")
    if state["article_text"] < 50:
        problems.append("the page has (almost) no text")
    if "404" in state["title"] or "Error" in state["title"]:
        problems.append(f"suspicious title {state['title']!r}")
    for link in sorted(set(state["links"])):
        target = urllib.parse.urlsplit(link).path.lstrip("/")
        target = urllib.parse.unquote(target) or "index.html"
        if target.endswith("/"):
            target += "index.html"
        if not (html_dir / target).exists():
            problems.append(f"broken link to {target}")
    if local_mathjax and state["math_rendered"] < state["math"]:
        problems.append(
            f"MathJax typeset {state['math_rendered']} of {state['math']} formulas"
        )
    for image in state["images"]:
        if not image["loaded"]:
            problems.append(f"image did not load: {image['src']}")
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        # a failed local request; CDN assets fail by design and are not counted
        if (
            entry.get("level") == "SEVERE"
            and "127.0.0.1" in message
            and "favicon.ico" not in message  # asked for by the browser itself
        ):
            problems.append(f"console: {message}")
    if screenshot is not None:
        save_screenshot(driver, screenshot, state["page_height"])
    return state, problems


def save_screenshot(driver, path, page_height, max_height=MAX_SCREENSHOT_HEIGHT):
    """Save the page from its top, down to ``max_height`` pixels, as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = min(page_height, max_height)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": height, "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=DOCS_DIR / "_build" / "html")
    parser.add_argument("--out", type=Path, default=DOCS_DIR / "_build" / "screenshots")
    args = parser.parse_args(argv)
    html_dir = args.html.resolve()
    if not (html_dir / "index.html").is_file():
        raise SystemExit(f"{html_dir}/index.html not found: run docs/build.sh first")

    examples = sorted(
        path.relative_to(html_dir).as_posix()
        for path in (html_dir / "auto_examples").glob("plot_*.html")
    )
    api_pages = sorted(
        path.relative_to(html_dir).as_posix()
        for path in (html_dir / "generated").glob("*.html")
    )
    main_pages = [page for page in MAIN_PAGES if (html_dir / page).is_file()]
    # the docs extra bundles MathJax (sphinx-mathjax-offline); from a CDN it cannot load
    local_mathjax = (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    missing_main = [page for page in MAIN_PAGES if page not in main_pages]

    import tempfile

    start = time.perf_counter()
    failures = {}
    server, base_url = serve(html_dir)
    with tempfile.TemporaryDirectory(prefix="skmoe-chromium-") as user_data_dir:
        driver = start_chromium(user_data_dir)
        try:
            states = {}
            pages = list(dict.fromkeys(main_pages + examples + api_pages))
            for page in pages:
                shot = None
                if page in main_pages or page in examples:
                    name = re.sub(r"[^\w.-]+", "_", page.removesuffix(".html"))
                    shot = args.out / f"{name}.png"
                states[page], problems = check_page(
                    driver, base_url, html_dir, page, shot, local_mathjax
                )
                if problems:
                    failures[page] = problems
        finally:
            driver.quit()
            server.shutdown()

    gallery = states.get("auto_examples/index.html")
    if gallery is not None:
        thumbnails = [image for image in gallery["images"] if image["thumbnail"]]
        if len(thumbnails) != len(examples):
            failures.setdefault("auto_examples/index.html", []).append(
                f"{len(thumbnails)} thumbnails for {len(examples)} examples"
            )
    elif examples:
        failures["auto_examples/index.html"] = ["the gallery page is missing"]
    without_plots = [
        page
        for page in examples
        if not any(image["plot"] for image in states[page]["images"])
    ]

    elapsed = time.perf_counter() - start
    print(
        f"checked {len(states)} pages ({len(main_pages)} main, {len(examples)} "
        f"examples, {len(api_pages)} API) in {elapsed:.1f}s; "
        f"screenshots in {args.out}"
    )
    for page in examples:
        plots = [image for image in states[page]["images"] if image["plot"]]
        if plots:
            print(f"  {page}: {len(plots)} plot(s), all loaded")
    if without_plots:
        print(f"  examples without any plot: {', '.join(without_plots)}")
    if not local_mathjax:
        print("  MathJax is not bundled (no sphinx-mathjax-offline): math not checked")
    if missing_main:
        print(f"  pages not built (not written yet?): {', '.join(missing_main)}")
    for page, problems in failures.items():
        for problem in problems:
            print(f"FAIL {page}: {problem}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
