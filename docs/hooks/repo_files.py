"""MkDocs hook: serve the repository's reports, benchmark results and configs as they are; complete the API pages.

* ``on_files``: every file under ``reports/``, ``benchmarks/results/`` and ``configs/`` joins the site
  under the same relative path, read in place (nothing is copied into ``docs/``), so a report's own
  relative links (``figures/x.png``, ``../benchmarks/results/y.md``) keep working on the site.
* ``on_page_markdown``: the ``<!-- reports -->`` marker of ``docs/reports.md`` becomes a list of the
  reports found, so a new report appears without editing the docs; in a repository page, a relative
  link to a file the site does not carry (a folder, ``../src/...``) becomes the plain path in code style
  instead of a broken link, so a report can never fail ``mkdocs build --strict``.
* the ``<!-- configs -->`` marker of ``docs/howto/reproduce.md`` becomes a table of ``configs/*.yaml``:
  each file's first comment line and the ``dnmsnn train`` command its header gives.
* API pages: ``<!-- api: dnmsnn.train config trainer -->`` becomes one mkdocstrings ``:::`` block per
  module of the package (those named first, then the others in alphabetical order), and
  ``<!-- api: rest -->`` one block per module no API page documents, so a new module is documented as
  soon as it exists (private modules, ``_x``, are left out).
* ``on_page_content``: Sphinx roles left in docstrings (``:class:`X```) are dropped, keeping the code.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
INCLUDED = ("reports", "benchmarks/results", "configs")
SKIP_SUFFIXES = {".pt", ".pth", ".tmp"}
MARKER = "<!-- reports -->"
CONFIGS_MARKER = "<!-- configs -->"
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_API = re.compile(r"<!-- api: ([\w.]+)((?: \w+)*) -->")
_DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.M)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):(?=<code>)")


def _repo_files() -> list[str]:
    out = []
    for top in INCLUDED:
        base = ROOT / top
        if base.is_dir():
            out += [p.relative_to(ROOT).as_posix() for p in sorted(base.rglob("*"))
                    if p.is_file() and p.suffix not in SKIP_SUFFIXES and not p.name.startswith(".")]
    return out


def on_files(files: Files, config) -> Files:
    for rel in _repo_files():
        if files.get_file_from_path(rel) is None:
            files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def _title(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def _reports_list() -> str:
    reports = sorted((ROOT / "reports").glob("*.md"))
    benches = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    lines = [f"* [{_title(p)}](reports/{p.name})" for p in reports] or ["* (no report yet)"]
    if benches:
        lines += ["", "Benchmarks:", ""]
        lines += [f"* [{_title(p)}](benchmarks/results/{p.name})" for p in benches]
    return "\n".join(lines)


def modules(package: str = "dnmsnn") -> list[str]:
    """Public modules (not packages) under ``package``, from the source tree: ``dnmsnn.train.config``, ..."""
    base = ROOT / "src" / Path(*package.split("."))
    names = []
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if not any(part.startswith("_") for part in parts):
            names.append(".".join((package, *parts)))
    return names


def documented(api_dir: Path) -> set[str]:
    """Modules that the API pages document, explicitly (``::: name``) or through an ``api:`` marker."""
    done: set[str] = set()
    for page in api_dir.glob("*.md"):
        text = page.read_text(encoding="utf-8")
        done.update(_DIRECTIVE.findall(text))
        for package, _ in _API.findall(text):
            if package != "rest":
                done.update(modules(package))
    return done


def _expand_api(markdown: str, api_dir: Path) -> str:
    def expand(match: re.Match) -> str:
        package, first = match.group(1), match.group(2).split()
        if package == "rest":
            names = [m for m in modules() if m not in documented(api_dir)]
        else:
            found = modules(package)
            names = [f"{package}.{n}" for n in first if f"{package}.{n}" in found]
            names += [m for m in found if m not in names]
        return "\n\n".join(f"::: {name}" for name in names) or "Every module is documented on an area page."

    return _API.sub(expand, markdown)


def _configs_table(page_dir: str) -> str:
    rows = ["| config | what | run |", "|---|---|---|"]
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        comments = [line.lstrip("#").strip() for line in path.read_text(encoding="utf-8").splitlines()
                    if line.startswith("#")]
        what = comments[0] if comments else ""
        run = next((c for c in comments if c.startswith("dnmsnn train")), "")
        link = posixpath.relpath(f"configs/{path.name}", page_dir or ".")
        rows.append(f"| [`{path.name}`]({link}) | {what.replace('|', '/')} | {f'`{run}`' if run else ''} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    src = page.file.src_uri
    if src == "reports.md":
        return markdown.replace(MARKER, _reports_list())
    if CONFIGS_MARKER in markdown:
        markdown = markdown.replace(CONFIGS_MARKER, _configs_table(posixpath.dirname(src)))
    if src.startswith("api/"):
        return _expand_api(markdown, Path(config["docs_dir"]) / "api")
    if not src.startswith(INCLUDED):
        return markdown
    known = set(files.src_uris)

    def fix(match: re.Match) -> str:
        bang, text, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        path = posixpath.normpath(posixpath.join(posixpath.dirname(src), target.split("#")[0]))
        if path in known:
            return match.group(0)
        if text.strip("`").rstrip("/") == path.rstrip("/"):
            return text if text.startswith("`") else f"`{text}`"
        return f"{text} (`{path}`)"

    return _LINK.sub(fix, markdown)


def on_page_content(html: str, page, config, files: Files) -> str:
    return _ROLE.sub("", html)
