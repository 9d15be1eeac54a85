"""MkDocs hooks (mkdocs.yml `hooks:`): parts of pages made from the code at build time.

`<!-- import-contracts -->` on a page becomes the import-linter contracts of
pyproject.toml's `[tool.importlinter]`, the ones `lint-imports` enforces in CI, so the
architecture page cannot describe other rules than the ones that run.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- import-contracts -->"


def modules(names):
    return ", ".join(f"`{name}`" for name in names)


def describe(contract):
    kind = contract["type"]
    if kind == "forbidden":
        rule = (
            f"{modules(contract['source_modules'])} may not import "
            f"{modules(contract['forbidden_modules'])}"
        )
    elif kind == "layers":
        rule = "layers, each importing only those below it: " + " > ".join(
            f"`{layer}`" for layer in contract["layers"]
        )
        if contract.get("containers"):
            rule += f", inside {modules(contract['containers'])}"
    elif kind == "independence":
        rule = f"{modules(contract['modules'])} import none of each other"
    elif kind == "acyclic_siblings":
        rule = f"no import cycle between the siblings of {modules(contract.get('ancestors', []))}"
    else:
        rule = ", ".join(f"{key}: {value}" for key, value in contract.items() if key != "name")
    if contract.get("ignore_imports"):
        rule += "; allowed exceptions: " + modules(contract["ignore_imports"])
    return f"| {contract['name']} | `{kind}` | {rule} |"


def contracts_table():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = [
        f"Root packages: {modules(config['root_packages'])}"
        + (
            " (imports of third-party packages are checked too)."
            if config.get("include_external_packages")
            else "."
        ),
        "",
        "| contract | type | rule |",
        "| --- | --- | --- |",
    ]
    lines += [describe(contract) for contract in config.get("contracts", [])]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, contracts_table())
    return markdown
