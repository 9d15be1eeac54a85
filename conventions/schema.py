"""What views declare in the OpenAPI schema: the error envelope and the Idempotency-Key.

The schema class itself (conventions.openapi.AutoSchema) is a module of its own:
drf_spectacular.openapi imports DRF's views, which import the JSON parser the settings
name (conventions.inputs), and views import this module.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


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


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Retry-safe key: the same key and body return the first answer. Printable "
    "ASCII, at most 255 characters (else 400 `invalid_idempotency_key`).",
)
