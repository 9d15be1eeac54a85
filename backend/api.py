"""API conventions shared by every app: one error envelope, pagination, throttles.

Every error the API returns has the shape

    {"error": {"type": ..., "code": ..., "message": ..., "param": ..., "fields": {...}}}

`type` is a broad family (modelled on Stripe's), `code` is a stable
machine-readable reason the mobile app can switch on, `message` is for humans,
`param` names the offending field when there is one, and `fields` carries
per-field validation errors as `{field: [{"code", "message"}]}`.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
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


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
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
        fields = _field_errors(exc.detail) or {
            "non_field_errors": [{"code": "invalid", "message": "Invalid input."}]
        }
        first_field, first_errors = next(iter(fields.items()))
        param = None if first_field == "non_field_errors" else first_field
        message = first_errors[0]["message"]
        if param:
            message = f"{param}: {message}"
        body = envelope("invalid_request_error", "validation_error", message, param, fields)
    else:
        body = envelope(error_type_for(response.status_code), exc.default_code, str(exc.detail))
    response.data = body
    return response


def json_error(status_code, code, message):
    return JsonResponse(envelope(error_type_for(status_code), code, message), status=status_code)


# Django-level handlers, for errors raised outside DRF views (unknown URLs, crashes).
def handler400(request, exception=None):
    return json_error(400, "bad_request", "The request could not be understood.")


def handler403(request, exception=None):
    return json_error(403, "permission_denied", "You do not have permission to do this.")


def handler404(request, exception=None):
    return json_error(404, "not_found", f"No endpoint at {request.path}.")


def handler500(request):
    return json_error(500, "internal_error", "Something went wrong on our side. Try again later.")


class ApiErrorPagesMiddleware:
    """404 and 405 under /api/ answer in the envelope whatever DEBUG is.

    Django's handler404 is used only with DEBUG off (with DEBUG on it shows its HTML
    debug page), and a plain Django view's 405 has no body: the mobile app gets JSON
    either way. Answers that are already JSON (DRF views) pass through untouched.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
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


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


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
