from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import DeviceSession
from conventions.fields import BlankableEmailField

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    email = BlankableEmailField(read_only=True)  # "" when none was given

    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields


def validated_password(password, user, field="password"):
    """Django's password validators, as per-field errors with their own codes."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(
            {
                field: [
                    serializers.ErrorDetail(m.message % (m.params or {}), code=m.code)
                    for m in exc.error_list
                ]
            }
        ) from exc
    return password


class DeviceFieldsSerializer(serializers.Serializer):
    """What the app says about the device signing in (shown in the sessions list)."""

    device_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="e.g. Ada's iPhone"
    )
    platform = serializers.ChoiceField(
        choices=DeviceSession.Platform.choices,
        required=False,
        default=DeviceSession.Platform.OTHER,
        # DRF's default message quotes the input back: never echo what the client sent.
        error_messages={"invalid_choice": "Choose ios, android, web or other."},
    )


class RegisterSerializer(DeviceFieldsSerializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = BlankableEmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate_username(self, value):
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("That username is taken.", code="username_taken")
        return value

    def validate(self, attrs):
        validated_password(
            attrs["password"], User(username=attrs["username"], email=attrs["email"])
        )
        return attrs


class SignInSerializer(DeviceFieldsSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(
        max_length=4096, write_only=True, style={"input_type": "password"}
    )


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=4096, write_only=True)
    new_password = serializers.CharField(max_length=4096, write_only=True)

    def validate_current_password(self, value):
        if not self.context["request"].user.check_password(value):
            raise serializers.ValidationError(
                "The current password is not correct.", code="wrong_password"
            )
        return value

    def validate(self, attrs):
        validated_password(attrs["new_password"], self.context["request"].user, "new_password")
        return attrs


class SessionSerializer(serializers.ModelSerializer):
    """A signed-in device. `current` is the one making this request."""

    last_used = serializers.DateTimeField(source="last_used_at", allow_null=True)
    expires = serializers.DateTimeField(source="expiry", allow_null=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = DeviceSession
        fields = ["id", "name", "platform", "created", "last_used", "expires", "current"]
        read_only_fields = fields

    def get_current(self, session) -> bool:
        return session.pk == self.context.get("current_id")


class SignedInSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expires = serializers.DateTimeField(
        help_text="Slides forward with use (AUTH_TOKEN_TTL_DAYS), up to AUTH_TOKEN_MAX_LIFETIME_DAYS."
    )
    session = SessionSerializer()
    user = UserSerializer()


class SignedOutSerializer(serializers.Serializer):
    signed_out = serializers.IntegerField(help_text="How many devices were signed out.")
