"""The route table, derived once from stripe-python's own service classes.

Every service class (`stripe/**/_*_service.py`) makes one `self._request(method, path, ...)`
call per public method (`self._request_stream` for a byte stream: the quote PDF), with a literal path or a literal `.format(...)`-ed with ids; its
`params` argument is annotated with the params TypedDict and its return with the resource
class. Parsing the files with `ast` gives every endpoint of the library the backend installs,
so the fake is always in step with it. Literal paths win over templates
(`/v1/charges/search` before `/v1/charges/{charge}`), and the last placeholder is the id.
"""

import ast
import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import stripe

PLACEHOLDER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Endpoint:
    method: str  # GET, POST, DELETE
    template: str  # /v1/charges/{charge}/capture
    params_module: str | None  # stripe.params._charge_capture_params
    params_class: str | None  # ChargeCaptureParams
    returns: str | None  # the resource class name, e.g. "Charge", or "ListObject[Charge]"
    returns_module: str | None
    service: str  # ChargeService.capture

    @property
    def segments(self):
        return tuple(self.template.strip("/").split("/"))

    @property
    def kind(self):
        """create / retrieve / update / delete / list / search / action, from the shape."""
        last_is_id = self.template.endswith("}")
        if self.returns and self.returns.startswith("SearchResultObject"):
            return "search"
        if self.returns and self.returns.startswith("ListObject"):
            return "list"
        if self.method == "DELETE":
            return "delete"
        if last_is_id:
            return "retrieve" if self.method == "GET" else "update"
        if self.method == "POST" and not PLACEHOLDER.search(self.template):
            return "create"
        if self.method == "POST":
            # /v1/customers/{customer}/sources: create a nested object; /capture: an action
            parent = self.template.rsplit("/", 1)[1]
            return "create" if parent.endswith("s") else "action"
        return "retrieve"

    def resource_class(self):
        name = self.returns or ""
        inner = name[name.find("[") + 1 : name.rfind("]")] if "[" in name else name
        if not inner or not self.returns_module:
            return None
        module = importlib.import_module(self.returns_module)
        cls = getattr(module, inner, None)
        return cls if isinstance(cls, type) and getattr(cls, "OBJECT_NAME", None) else None


def _string_annotation(node):
    """'ChargeCreateParams' from Optional["ChargeCreateParams"] or "ChargeCreateParams"."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Subscript):
        inner = _string_annotation(node.slice)
        container = node.value.id if isinstance(node.value, ast.Name) else ""
        if container in ("ListObject", "SearchResultObject") and inner:
            return f"{container}[{inner}]"  # ListObject["Refund"] (a resource class's)
        return inner
    return None


def _path_of(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    ):
        return node.func.value.value
    return None


def _imports(tree):
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


SERVICE_CALLS = ("_request", "_request_stream")
RESOURCE_CALLS = ("_static_request", "_static_request_stream")
# Resource classes that still call routes their service no longer declares (the legacy
# GET /v1/charges/{charge}/refunds[/{refund}], which a charge's `refunds` list object reaches);
# tests/test_fake_stripe_surface.py checks no other resource module does.
LEGACY_RESOURCE_MODULES = ("_charge.py",)


def _endpoints_in(path, calls=SERVICE_CALLS):
    tree = ast.parse(path.read_text())
    imported = _imports(tree)
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for function in cls.body:
            if not isinstance(function, ast.FunctionDef) or function.name.startswith("_"):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in calls
                    and len(node.args) >= 2
                ):
                    method, template = node.args[0], _path_of(node.args[1])
                    if not isinstance(method, ast.Constant) or template is None:
                        continue
                    params = next(
                        (a.annotation for a in function.args.args if a.arg == "params"), None
                    )
                    if params is None and function.args.kwarg is not None:
                        params = function.args.kwarg.annotation  # **params: Unpack["..."]
                    params_class = _string_annotation(params)
                    returns = _string_annotation(function.returns)
                    inner = returns or ""
                    inner = inner[inner.find("[") + 1 : inner.rfind("]")] if "[" in inner else inner
                    yield Endpoint(
                        method.value.upper(),
                        template,
                        imported.get(params_class),
                        params_class,
                        returns,
                        imported.get(inner),
                        f"{cls.name}.{function.name}",
                    )
                    break


@functools.cache
def endpoints():
    """Every endpoint stripe-python knows, once per process (a few hundred ms)."""
    root = Path(stripe.__file__).parent
    found = {}
    for path in sorted(root.rglob("_*_service.py")):
        for endpoint in _endpoints_in(path):
            found.setdefault((endpoint.method, endpoint.template), endpoint)
    for name in LEGACY_RESOURCE_MODULES:
        for endpoint in _endpoints_in(root / name, RESOURCE_CALLS):
            found.setdefault((endpoint.method, endpoint.template), endpoint)
    return tuple(found.values())


class Router:
    """Matches a request path to an endpoint: literal segments before placeholders."""

    def __init__(self, table):
        templates = {}
        for endpoint in table:
            templates.setdefault(endpoint.segments, {})[endpoint.method] = endpoint
        # by (number of segments, resource segment); most literal templates first
        self._groups = {}
        for segments, methods in templates.items():
            key = (len(segments), segments[1] if len(segments) > 1 else "")
            self._groups.setdefault(key, []).append((segments, methods))
        for group in self._groups.values():
            group.sort(key=lambda item: tuple(s.startswith("{") for s in item[0]))
        self._literal = {}  # (method, path) -> endpoint, for paths that match with no ids

    def match(self, method, path):
        """(endpoint, ids) for the method, or (None, allowed methods) when only others match.

        The most literal template that fits the path decides (`/v1/charges/search` beats
        `/v1/charges/{charge}`); its methods are the allowed ones.
        """
        literal = self._literal.get((method, path))
        if literal is not None:  # a path with no ids, seen before (/v1/charges)
            return literal, []
        segments = tuple(path.strip("/").split("/"))
        key = (len(segments), segments[1] if len(segments) > 1 else "")
        for template, methods in self._groups.get(key, ()):
            if _fits(template, segments):
                found = methods.get(method)
                if found is None:
                    return None, set(methods)
                ids = [
                    value
                    for pattern, value in zip(template, segments, strict=False)
                    if pattern[0] == "{"
                ]
                if not ids and len(self._literal) < 4096:  # (spellings like //v1/x/ aside,
                    # one entry per literal template and method)
                    self._literal[method, path] = found
                return found, ids
        return None, set()


def _literal_rank(endpoint):
    return sum(1 for s in endpoint.segments if s.startswith("{"))


def _fits(pattern, segments):
    for expected, actual in zip(pattern, segments, strict=False):
        if expected[0] != "{" and expected != actual:
            return False
        if expected[0] == "{" and not actual:
            return False
    return True


@functools.cache
def router():
    return Router(endpoints())
