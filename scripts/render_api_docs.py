"""Render the OpenAPI schema (drf-spectacular, as `manage.py spectacular` makes it) into
docs/api-reference.md, the API reference page of the docs.

    python scripts/render_api_docs.py           # rewrite docs/api-reference.md
    python scripts/render_api_docs.py --check   # exit 1 if the page is stale

The page is checked in so that it reads on GitHub too; tests/test_docs.py and the docs
step of .ci/run fail when it no longer matches the code (a changed serializer, view,
error or setting that the schema shows), with the command to run.
"""

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api-reference.md"
METHODS = ("get", "post", "put", "patch", "delete")


def schema():
    """The schema `manage.py spectacular` prints, as a dict (same generator, same settings)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    os.environ.setdefault("SANDBOX_STATE", "memory")  # the schema needs no sandbox file
    import django

    django.setup()
    from drf_spectacular.generators import SchemaGenerator

    generated = SchemaGenerator().get_schema(request=None, public=True)
    # Through JSON, as the command writes it: plain dicts, lists and strings only.
    return json.loads(json.dumps(generated, default=str))


def cell(text):
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def anchor(name):
    return "schema-" + name.lower()


def type_of(node):
    """A property's type, in words, with links to the schemas it refers to."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchor(name)})"
    for combinator, joiner in (("allOf", " & "), ("oneOf", " or "), ("anyOf", " or ")):
        if combinator in node:
            return joiner.join(type_of(part) for part in node[combinator])
    kind = node.get("type", "any")
    if kind == "array":
        return f"array of {type_of(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        extra = node["additionalProperties"]
        return "object" if extra is True else f"object of {type_of(extra)}"
    if "format" in node:
        kind = f"{kind} ({node['format']})"
    return kind


def facts(node, required=False):
    """What a property allows, beyond its type."""
    found = []
    if required:
        found.append("required")
    if node.get("readOnly"):
        found.append("read-only")
    if node.get("writeOnly"):
        found.append("write-only")
    if node.get("nullable"):
        found.append("nullable")
    if "enum" in node:
        found.append("one of " + ", ".join(f"`{value}`" for value in node["enum"] if value))
    for key, words in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "≥ {}"),
        ("maximum", "≤ {}"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
        ("pattern", "matches `{}`"),
        ("default", "default `{}`"),
    ):
        if key in node:
            found.append(words.format(json.dumps(node[key]) if key == "default" else node[key]))
    return ", ".join(found)


def body_of(content):
    """The schemas of a request or response body, by media type."""
    parts = []
    for media, spec in sorted((content or {}).items()):
        shown = type_of(spec.get("schema", {})) if spec.get("schema") else "no schema"
        parts.append(f"{shown} (`{media}`)")
    return "; ".join(parts) or "no body"


def operation(lines, method, path, op, schemes):
    lines.append(f"### `{method.upper()} {path}` {{#op-{op['operationId']}}}")
    lines.append("")
    for text in (op.get("summary"), op.get("description")):
        if text:
            lines += [text.strip(), ""]
    security = [name for requirement in op.get("security", []) for name in requirement]
    if security:
        names = ", ".join(f"`{name}`" for name in security if name in schemes)
        lines += [f"Sign-in: any of {names}.", ""]
    else:
        lines += ["Sign-in: none.", ""]
    if op.get("parameters"):
        lines += ["| parameter | in | type | | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in op["parameters"]:
            node = parameter.get("schema", {})
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {cell(type_of(node))} "
                f"| {cell(facts(node, parameter.get('required', False)))} "
                f"| {cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    if "requestBody" in op:
        request = op["requestBody"]
        needed = "required" if request.get("required") else "optional"
        lines += [f"Request body ({needed}): {body_of(request.get('content'))}.", ""]
    lines += ["| status | body | description |", "| --- | --- | --- |"]
    for status, answer in sorted(op.get("responses", {}).items()):
        lines.append(
            f"| {status} | {cell(body_of(answer.get('content')))} "
            f"| {cell(answer.get('description', ''))} |"
        )
    lines.append("")


def component(lines, name, node):
    lines += [f"### {name} {{#{anchor(name)}}}", ""]
    if node.get("description"):
        lines += [node["description"].strip(), ""]
    properties = node.get("properties")
    if not properties:
        lines += [f"Type: {type_of(node)}" + (f"; {facts(node)}" if facts(node) else "") + ".", ""]
        return
    required = set(node.get("required", []))
    lines += ["| field | type | | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {cell(type_of(spec))} | {cell(facts(spec, field in required))} "
            f"| {cell(spec.get('description', ''))} |"
        )
    lines.append("")


def render(openapi):
    info = openapi["info"]
    schemes = openapi.get("components", {}).get("securitySchemes", {})
    lines = [
        "# API reference",
        "",
        "<!-- Generated by scripts/render_api_docs.py from the OpenAPI schema; do not edit. -->",
        "",
        f"{info['title']}, version {info['version']} (OpenAPI {openapi['openapi']}), "
        "rendered from the schema drf-spectacular generates (`manage.py spectacular`; served "
        "at `/api/schema/`, interactive at `/api/docs/`). "
        "`python scripts/render_api_docs.py` rewrites this page; the suite and CI fail "
        "when it is stale. The guide to these endpoints is [The API](api.md).",
        "",
        info.get("description", "").strip(),
        "",
        "## Sign-in schemes",
        "",
        "| name | how |",
        "| --- | --- |",
    ]
    for name, scheme in sorted(schemes.items()):
        how = scheme.get("description") or " ".join(
            str(scheme.get(key, "")) for key in ("type", "scheme", "in", "name") if key in scheme
        )
        lines.append(f"| `{name}` | {cell(how)} |")
    lines.append("")
    descriptions = {tag["name"]: tag.get("description", "") for tag in openapi.get("tags", [])}
    by_tag = {}
    for path, item in openapi["paths"].items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((path, method, item[method]))
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        if descriptions.get(tag):
            lines += [descriptions[tag].strip(), ""]
        for path, method, op in sorted(by_tag[tag], key=lambda o: (o[0], METHODS.index(o[1]))):
            operation(lines, method, path, op, schemes)
    lines += ["## Schemas", ""]
    for name, node in sorted(openapi.get("components", {}).get("schemas", {}).items()):
        component(lines, name, node)
    return "\n".join(lines).rstrip() + "\n"


def stale_diff(current, fresh):
    return "".join(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            "docs/api-reference.md (checked in)",
            "docs/api-reference.md (from the schema)",
            n=1,
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args(argv)
    fresh = render(schema())
    current = PAGE.read_text() if PAGE.exists() else ""
    if args.check:
        if current != fresh:
            sys.stdout.write(stale_diff(current, fresh)[:20000])
            print("docs/api-reference.md is stale: run python scripts/render_api_docs.py")
            return 1
        print("docs/api-reference.md matches the schema")
        return 0
    PAGE.write_text(fresh)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
