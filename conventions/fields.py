"""Serializer fields that take JSON as it was sent: no coercion of "12" or 0 or "²"."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


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
