"""The documentation site cannot rot: it builds with warnings as errors, its code runs, nothing is left out.

* ``mkdocs build --strict`` succeeds (skipped, with the reason, only where mkdocs is not installed;
  the ``dev`` extra installs it) and the built site holds every tutorial, API area and report;
* every ```python block of the pages under docs/ runs (each page's blocks in order, in a fresh process);
* every tutorial script is shown by a page in the navigation; every navigation entry exists.

The site is served by ``make docs`` (mkdocs serve; no command of the package).
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
TUTORIALS = sorted((DOCS / "tutorials").glob("[0-9][0-9]_*.py"))
SNIPPET = re.compile(r'--8<-- "([^"]+)"')
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PAGES_WITH_CODE = sorted(p for p in DOCS.rglob("*.md")
                         if any(not b.lstrip().startswith("--8<--") for b in PYTHON_BLOCK.findall(p.read_text())))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
       "NO_MKDOCS_2_WARNING": "1"}


def _nav_pages() -> list[str]:
    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    # mkdocs.yml is plain YAML here (no !!python tags), so the safe loader reads it
    return list(walk(yaml.safe_load(CONFIG.read_text())["nav"]))


def _hook():
    spec = importlib.util.spec_from_file_location("repo_files_hook", DOCS / "hooks" / "repo_files.py")
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("the docs hook imports mkdocs, which is not installed (pip install -e '.[docs]')")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(path: Path) -> str:
    """The visible text of a built page (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


# ----------------------------------------------------------------------------- structure (no mkdocs needed)
def test_every_nav_entry_exists():
    missing = [p for p in _nav_pages() if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {missing}"


def test_every_tutorial_is_shown_by_a_page_in_the_nav():
    shown = {}
    for page in _nav_pages():
        for included in SNIPPET.findall((DOCS / page).read_text()):
            shown[included] = page
    for script in TUTORIALS:
        rel = script.relative_to(ROOT).as_posix()
        assert rel in shown, f"{rel} is not included (--8<-- \"{rel}\") by any page in mkdocs.yml's nav"


def test_there_is_an_api_page_per_area():
    areas = ["neurons", "layers", "network", "encoders", "rules", "cohort", "models", "data", "train", "analysis",
             "nir"]
    pages = _nav_pages()
    assert [a for a in areas if f"api/{a}.md" not in pages] == []


def test_a_report_link_to_a_file_off_the_site_becomes_a_plain_path():
    hook = _hook()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="reports/new.md"))
    files = SimpleNamespace(src_uris={"reports/figures/a.png": None, "reports/other.md": None})
    md = ("[a](figures/a.png) [code](../src/dnmsnn/nir.py) ![fig](missing.png) [o](other.md#x) "
          "[w](https://example.org) [`reports/data/`](data/)")
    assert hook.on_page_markdown(md, page, {"docs_dir": str(DOCS)}, files) == (
        "[a](figures/a.png) code (`src/dnmsnn/nir.py`) fig (`reports/missing.png`) [o](other.md#x) "
        "[w](https://example.org) `reports/data/`")


# ----------------------------------------------------------------------------- the code on the pages runs
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=[p.relative_to(DOCS).as_posix() for p in PAGES_WITH_CODE])
def test_python_blocks_of_the_page_run(page, tmp_path):
    blocks = [b for b in PYTHON_BLOCK.findall(page.read_text()) if not b.lstrip().startswith("--8<--")]
    code = "\n\n".join(blocks)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (f"the python blocks of {page.relative_to(ROOT)} failed:\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


# ----------------------------------------------------------------------------- the site builds, strictly
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the docs extra (pip install -e '.[docs]', part of '.[dev]') "
                        "is needed to build the site")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(CONFIG),
                           "--site-dir", str(out)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(site):
    assert (site / "index.html").is_file() and (site / "api" / "index.html").is_file()


def test_site_shows_each_tutorial_script_itself(site):
    for script in TUTORIALS:
        page = site / "tutorials" / script.stem / "index.html"
        text = _text(page)
        first_line = script.read_text().splitlines()[0].strip('"')
        assert first_line in text and "def main()" in text, f"{page} does not show {script.name}"
        assert (site / "tutorials" / script.name).is_file(), f"{script.name} is not downloadable from the site"


def test_api_reference_documents_every_public_module(site):
    hook = _hook()
    ids = set()
    for page in (site / "api").rglob("index.html"):
        ids.update(re.findall(r'id="(dnmsnn[\w.]*)"', page.read_text()))
    missing = [m for m in hook.modules() if m not in ids]
    assert not missing, f"modules without an API section: {missing}"
    assert {"dnmsnn.neurons.LIF", "dnmsnn.cohort.Cohort", "dnmsnn.rules.spatial.Spatial"} <= ids


def test_site_serves_every_report(site):
    listing = (site / "reports" / "index.html").read_text()
    for report in sorted((ROOT / "reports").glob("*.md")):
        assert (site / "reports" / report.stem / "index.html").is_file(), f"{report.name} is not on the site"
        assert f'href="{report.stem}/"' in listing, f"the reports page does not link {report.name}"
