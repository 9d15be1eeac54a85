"""OpenAPI generation: drf-spectacular's AutoSchema, plus the errors every view can answer.

A module of its own: drf_spectacular.openapi imports DRF's views, which import the
parser (conventions.inputs, DEFAULT_PARSER_CLASSES), and views import conventions.schema.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions

from conventions.schema import ErrorSerializer

GENERIC_ERRORS = {
    400: "Bad request: `parse_error` (not JSON, too deep, invalid text), `validation_error`, "
    "or an endpoint's own code.",
    401: "`not_authenticated` or `authentication_failed` (a bad `Authorization` header).",
    403: "`permission_denied`.",
    404: "`not_found`: no such object for the caller, or a page past the end.",
    413: "`payload_too_large`: the body is over API_MAX_BODY_BYTES.",
    415: "`unsupported_media_type`: send `application/json`.",
    429: "`throttled`, with `Retry-After`.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, documenting the errors every view can answer.

    Views declare their own statuses with extend_schema; this adds, in the error
    envelope, what the framework answers for them: 400/413/415 for a request body,
    401 when a view authenticates (a bad token is refused even on AllowAny views),
    403 for staff-only views, 404 for a path with an id and for list pages, 429
    when a view is throttled.
    """

    def _generic_error_codes(self):
        view, codes = self.view, set()
        if self.method in ("POST", "PUT", "PATCH"):
            codes |= {400, 413}
            if all(parser.media_type != "*/*" for parser in view.parser_classes):
                codes.add(415)
        if "{" in self.path:
            codes.add(404)
        if self.method == "GET" and self._is_list_view() and self._get_paginator():
            codes |= {400, 404}
        if getattr(view, "authentication_classes", None):
            codes.add(401)
        permission_classes = getattr(view, "permission_classes", [])
        if any(
            isinstance(p, type) and issubclass(p, permissions.IsAdminUser)
            for p in permission_classes
        ):
            codes |= {401, 403}
        if getattr(view, "throttle_classes", None):
            codes.add(429)
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in sorted(self._generic_error_codes()):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=GENERIC_ERRORS[code]),
                    str(code),
                    direction=direction,
                )
        return responses
