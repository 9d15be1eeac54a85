from rest_framework import serializers

from notifications.models import Device


class DeviceSerializer(serializers.ModelSerializer):
    push_token = serializers.CharField(max_length=512, write_only=True)

    class Meta:
        model = Device
        fields = ["id", "platform", "push_token", "hwid", "session", "registered_at", "created_at"]
        read_only_fields = ["id", "hwid", "session", "registered_at", "created_at"]
        extra_kwargs = {"push_token": {"validators": []}}  # re-registering a token is allowed
