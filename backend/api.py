"""API conventions shared by every app: one error envelope, pagination, throttles.

Every error the API returns has the shape

    {"error": {"type": ..., "code": ..., "message": ..., "param": ..., "fields": {...}}}

`type` is a broad family (modelled on Stripe's), `code` is a stable
machine-readable reason the mobile app can switch on, `message` is for humans,
`param` names the offending field when there is one, and `fields` carries
per-field validation errors as `{field: [{"code", "message"}]}`.
"""

import json
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def error_type_for(status_code):
    if status_code >= 500:
        return "api_error"
    return TYPE_BY_STATUS.get(status_code, "invalid_request_error")


def envelope(type, code, message, param=None, fields=None):
    return {
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "fields": fields or {},
        }
    }


class ApiError(exceptions.APIException):
    """An error with an explicit envelope: raise it from services or views."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"
    error_type = None

    def __init__(
        self,
        message,
        *,
        code=None,
        status_code=None,
        type=None,
        param=None,
        extra=None,
        headers=None,
    ):
        super().__init__(message, code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.code = code or self.default_code
        self.error_type = type or self.error_type or error_type_for(self.status_code)
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}


def _field_errors(detail, prefix=""):
    """Flatten DRF's nested ValidationError detail into {dotted.field: [{code, message}]}."""
    fields = {}
    if isinstance(detail, dict | list) and not detail:
        return fields
    if isinstance(detail, dict):
        for name, value in detail.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            fields.update(_field_errors(value, key))
    elif isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            fields[prefix or "non_field_errors"] = [
                {"code": item.code, "message": str(item)} for item in detail
            ]
        else:
            for index, item in enumerate(detail):
                fields.update(_field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        fields[prefix or "non_field_errors"] = [
            {"code": getattr(detail, "code", "invalid"), "message": str(detail)}
        ]
    return fields


def validation_envelope(detail):
    """The envelope of a 400 `validation_error` for a ValidationError's (or serializer's) detail."""
    fields = _field_errors(detail) or {
        "non_field_errors": [{"code": "invalid", "message": "Invalid input."}]
    }
    first_field, first_errors = next(iter(fields.items()))
    param = None if first_field == "non_field_errors" else first_field
    message = first_errors[0]["message"]
    if param:
        message = f"{param}: {message}"
    return envelope("invalid_request_error", "validation_error", message, param, fields)


def _credential_in_another_scheme(exc, context):
    """A 401 that names the accepted schemes when a credential came in another one.

    "Authentication credentials were not provided." would be wrong: something was sent.
    Only answers that were a 401 already change; where no sign-in is needed, an
    unknown scheme is ignored, as DRF's authenticators ignore one.
    """
    from accounts.authentication import UNSUPPORTED_SCHEME, sent_another_scheme  # app import

    request = context.get("request")
    if request is None or not sent_another_scheme(request):
        return None
    refused = exceptions.AuthenticationFailed(UNSUPPORTED_SCHEME)
    refused.auth_header = getattr(exc, "auth_header", None)  # WWW-Authenticate, set by DRF
    return refused


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, exceptions.NotAuthenticated):
        exc = _credential_in_another_scheme(exc, context) or exc
    from rest_framework.views import exception_handler as drf_exception_handler  # import cycle

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's handler500 answers in the envelope

    if isinstance(exc, ApiError):
        body = envelope(exc.error_type, exc.code, str(exc.detail), exc.param)
        body["error"].update(exc.extra)
        for name, value in exc.headers.items():
            response[name] = value
    elif isinstance(exc, exceptions.ValidationError):
        body = validation_envelope(exc.detail)
    else:
        body = envelope(error_type_for(response.status_code), exc.default_code, str(exc.detail))
    response.data = body
    return response


def json_error(status_code, code, message):
    return JsonResponse(
        envelope(error_type_for(status_code), code, message),
        status=status_code,
        json_dumps_params={"separators": (",", ":")},  # compact, as DRF's renderer writes
    )


# Django-level handlers, for errors raised outside DRF views (unknown URLs, crashes).
def handler400(request, exception=None):
    return json_error(400, "bad_request", "The request could not be understood.")


def handler403(request, exception=None):
    return json_error(403, "permission_denied", "You do not have permission to do this.")


def handler404(request, exception=None):
    if not request.path.startswith("/api/"):
        from backend import pages  # templates: not for the API's import path

        return pages.not_found(request)  # a person's browser, not the app
    return json_error(404, "not_found", f"No endpoint at {request.path}.")


def handler500(request):
    return json_error(500, "internal_error", "Something went wrong on our side. Try again later.")


class ApiErrorPagesMiddleware:
    """404 and 405 under /api/ answer in the envelope whatever DEBUG is; a 404 elsewhere
    is a small page for a person (backend.pages), whatever DEBUG is.

    Django's handler404 is used only with DEBUG off (with DEBUG on it shows its HTML
    debug page, listing every URL pattern), and a plain Django view's 405 has no body:
    the mobile app gets JSON either way. Answers that are already JSON (DRF views) pass
    through untouched, and so do the pages made by backend.pages (`person_page`).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and not request.path.startswith("/api/")
            and not getattr(response, "person_page", False)
        ):
            return handler404(request)
        if (
            response.status_code in (404, 405)
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 404:
                return handler404(request)
            answer = json_error(
                405,
                "method_not_allowed",
                f'Method "{request.method}" is not allowed at {request.path}.',
            )
            if response.has_header("Allow"):
                answer["Allow"] = response["Allow"]
            return answer
        return response


class RequestSizeLimitMiddleware:
    """Refuse oversized or malformed-length bodies with 413/400 before anything reads them.

    DRF's parsers stream the body themselves, bypassing Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the limit is enforced here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return json_error(400, "invalid_content_length", "Content-Length is not a number.")
        if length < 0:
            return json_error(400, "invalid_content_length", "Content-Length is negative.")
        if length > settings.API_MAX_BODY_BYTES:
            return json_error(
                413,
                "payload_too_large",
                f"The request body is {length} bytes; the limit is "
                f"{settings.API_MAX_BODY_BYTES} bytes.",
            )
        return self.get_response(request)


# ------------------------------------------------------------------ hostile input
# A JSON string (closed, or running to the end of the text) or a bracket. The string
# branch always matches once it starts (it stops only at a quote or at the end), so
# finditer never retries from inside a string: linear time on any input, unlike a
# pattern that must find the closing quote (quadratic on '"\\"\\"\\...').
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONTooDeep(ValueError):
    pass


def json_depth(text):
    """The deepest nesting of arrays/objects in a JSON text, without recursion.

    Brackets inside strings do not count. For text that is not valid JSON the
    figure is an upper bound of what json.loads would reach before failing,
    which is all the check needs.
    """
    depth = deepest = 0
    for match in _JSON_TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _lone_surrogate(value):
    """The first string (key or value) holding a lone UTF-16 surrogate, walked iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def loads_strict(text, max_depth=None):
    """json.loads for untrusted text: bounded depth, no NaN/Infinity, no lone surrogates.

    Raises ValueError (JSONTooDeep for nesting) with a message safe to show.
    """
    max_depth = settings.API_MAX_JSON_DEPTH if max_depth is None else max_depth
    if json_depth(text) > max_depth:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as error:  # cannot happen under the depth limit; kept as a guard
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.") from error
    except ValueError as error:
        # json's messages quote a position, never the input itself; int() over 4300
        # digits says so too.
        raise ValueError(f"JSON parse error - {error}") from None
    if _lone_surrogate(data) is not None:
        # "\ud800" is valid JSON text but not a Unicode string: it cannot be stored or
        # rendered as UTF-8.
        raise ValueError("JSON parse error - a string holds a lone UTF-16 surrogate.")
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, hardened: every decoding failure is a 400 `parse_error`.

    Refuses bodies that are not valid text in their charset (UTF-8 by default),
    nesting deeper than settings.API_MAX_JSON_DEPTH (checked before json.loads, which
    recurses), NaN/Infinity, integers over Python's 4300-digit limit and strings
    holding lone surrogates.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            raise exceptions.ParseError(
                f"The body is not valid {encoding} text.", code="parse_error"
            ) from None
        try:
            return loads_strict(text)
        except ValueError as error:
            raise exceptions.ParseError(str(error), code="parse_error") from None


def is_printable_ascii(value):
    return all(" " <= char <= "~" for char in value)


def idempotency_key_from(request, header="Idempotency-Key", max_length=255):
    """The request's Idempotency-Key header, checked: printable ASCII, at most 255 characters.

    Missing or blank is "" (no key). Anything else unusable is a 400
    `invalid_idempotency_key`, so a key is never stored garbled or cut.
    """
    key = request.headers.get(header, "").strip()
    if not is_printable_ascii(key):
        raise ApiError(
            f"{header} may hold printable ASCII characters only.",
            code="invalid_idempotency_key",
            param=header,
        )
    if len(key) > max_length:
        raise ApiError(
            f"{header} is longer than {max_length} characters.",
            code="invalid_idempotency_key",
            param=header,
        )
    return key


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Retry-safe key: the same key and body return the first answer. Printable "
    "ASCII, at most 255 characters (else 400 `invalid_idempotency_key`).",
)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else.

    DRF's IntegerField also takes strings through int(), which accepts Unicode
    digits (Arabic-Indic, fullwidth) and "12.0": here only a
    JSON number without a fraction passes, and booleans do not.
    """

    default_error_messages = {"invalid": "Enter a whole number (a JSON integer)."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField turns 0 into "0")."""

    default_error_messages = {"invalid": "Enter a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "email"}, {"type": "string", "maxLength": 0}]}
)
class BlankableEmailField(serializers.EmailField):
    """An email address or "" (none given): the schema says both, not just `format: email`."""


def ascii_digits(value):
    """True for a non-empty string of 0-9 only (str.isdigit also accepts "\u00b2", "\u0661", "\uff14")."""
    return bool(value) and value.isascii() and value.isdigit()


class Pagination(PageNumberPagination):
    """Page numbers from 1 and page sizes 1-100; anything else is a 400, a page past the end 404."""

    page_size_query_param = "page_size"
    max_page_size = 100

    max_page = 2**31 - 1

    def _query_integer(self, request, name, maximum):
        raw = request.query_params.get(name)
        if raw is None:
            return None
        digits = raw.lstrip("0")
        if not ascii_digits(raw) or not digits:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail("Enter a whole number from 1.", "invalid")]}
            )
        value = int(digits) if len(digits) <= 12 else maximum + 1  # never int() 5000 digits
        if value > maximum:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail(f"The maximum is {maximum}.", "max_value")]}
            )
        return value

    def paginate_queryset(self, queryset, request, view=None):
        self._query_integer(request, self.page_query_param, self.max_page)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        size = self._query_integer(request, self.page_size_query_param, self.max_page_size)
        return self.page_size if size is None else size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            parameter["schema"]["maximum"] = (
                self.max_page_size
                if parameter["name"] == self.page_size_query_param
                else self.max_page
            )
        return parameters


class SettingsRateMixin:
    """Read the rate from settings at request time, so override_settings works."""

    rate_setting = None

    def get_rate(self):
        return getattr(settings, self.rate_setting)


class AnonThrottle(SettingsRateMixin, AnonRateThrottle):
    rate_setting = "API_THROTTLE_ANON"


class UserThrottle(SettingsRateMixin, UserRateThrottle):
    rate_setting = "API_THROTTLE_USER"


class AuthThrottle(SettingsRateMixin, AnonRateThrottle):
    """Login and registration, per client address: slows password guessing."""

    scope = "auth"
    rate_setting = "API_THROTTLE_AUTH"


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    fields = serializers.DictField(child=serializers.ListField(child=serializers.DictField()))


class ErrorSerializer(serializers.Serializer):
    """The error envelope, for the OpenAPI schema."""

    error = ErrorDetailSerializer()


def error_responses(*status_codes):
    """OpenAPI `responses` entries documenting the envelope for the given statuses."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=f"Error ({code}), in the envelope.")
        for code in status_codes
    }
