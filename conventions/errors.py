"""The error envelope every answer of the API uses, and the handlers that make it so.

Every error the API returns has the shape

    {"error": {"type": ..., "code": ..., "message": ..., "param": ..., "fields": {...}}}

`type` is a broad family (modelled on Stripe's), `code` is a stable
machine-readable reason the mobile app can switch on, `message` is for humans,
`param` names the offending field when there is one, and `fields` carries
per-field validation errors as `{field: [{"code", "message"}]}`.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.urls import is_valid_path
from rest_framework import exceptions, status

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


def _explained(exc, context):
    """A 401 "credentials were not provided" when the request did send one, in a form no
    authenticator reads: an authenticator may say what was wrong with it, through an
    `explain_missing_credentials(request)` method returning the error to answer instead
    (accounts.authentication names the schemes it accepts). Only answers that were a 401
    already change: where no sign-in is needed, DRF's authenticators ignore what they
    cannot read, and so does this."""
    request = context.get("request")
    for authenticator in getattr(request, "authenticators", None) or ():
        explain = getattr(authenticator, "explain_missing_credentials", None)
        refused = explain(request) if explain is not None else None
        if refused is not None:
            refused.auth_header = getattr(exc, "auth_header", None)  # WWW-Authenticate
            return refused
    return None


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, exceptions.NotAuthenticated):
        exc = _explained(exc, context) or exc
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
        from conventions import pages  # templates: not for the API's import path

        return pages.not_found(request)  # a person's browser, not the app
    return json_error(404, "not_found", f"No endpoint at {request.path}.")


def handler500(request):
    return json_error(500, "internal_error", "Something went wrong on our side. Try again later.")


class ApiErrorPagesMiddleware:
    """404 and 405 under /api/ answer in the envelope whatever DEBUG is; a 404 elsewhere
    is a small page for a person (conventions.pages), whatever DEBUG is.

    Django's handler404 is used only with DEBUG off (with DEBUG on it shows its HTML
    debug page, listing every URL pattern), and a plain Django view's 405 has no body:
    the mobile app gets JSON either way. Answers that are already JSON (DRF views) pass
    through untouched, and so do the pages made by conventions.pages (`person_page`).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        missing_slash = self._missing_slash(request)
        if missing_slash:
            return missing_slash
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

    @staticmethod
    def _missing_slash(request):
        """A write to an API path without its trailing slash: a 404 that says so. Django's
        APPEND_SLASH would answer its HTML error page with DEBUG on, and with DEBUG off a
        301 that clients follow with a GET: a POST to /api/payments would list payments."""
        path = request.path_info
        if (
            not path.startswith("/api/")
            or path.endswith("/")
            or request.method in ("GET", "HEAD", "OPTIONS")  # (redirected: nothing lost)
            or is_valid_path(path, getattr(request, "urlconf", None))
            or not is_valid_path(path + "/", getattr(request, "urlconf", None))
        ):
            return None
        return json_error(
            404, "not_found", f"No endpoint at {path}: the API's paths end with a slash ({path}/)."
        )
