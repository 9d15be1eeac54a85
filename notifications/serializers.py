from rest_framework import serializers

from conventions.fields import StrictCharField
from notifications.models import Device


class DeviceSerializer(serializers.ModelSerializer):
    push_token = StrictCharField(max_length=512, write_only=True)  # a JSON string, not 0

    class Meta:
        model = Device
        fields = ["id", "platform", "push_token", "hwid", "session", "registered_at", "created_at"]
        read_only_fields = ["id", "hwid", "session", "registered_at", "created_at"]
        extra_kwargs = {
            "push_token": {"validators": []},  # re-registering a token is allowed
            # DRF's message quotes the input back ("\"{input}\" is not a valid choice."):
            # never echo what the client sent.
            "platform": {"error_messages": {"invalid_choice": "Choose ios or android."}},
        }
