"""Accounts for the mobile app: register, obtain and revoke a token, who am I."""

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.api import ApiError, AuthThrottle, BlankableEmailField, error_responses

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    email = BlankableEmailField(read_only=True)  # "" when none was given

    class Meta:
        model = User
        fields = ["id", "username", "email", "date_joined"]
        read_only_fields = fields


class RegisterSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = BlankableEmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    def validate_username(self, value):
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("That username is taken.", code="username_taken")
        return value

    def validate(self, attrs):
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except Exception as exc:  # django's ValidationError carries several messages
            messages = getattr(exc, "error_list", [])
            raise serializers.ValidationError(
                {
                    "password": [
                        serializers.ErrorDetail(m.message % (m.params or {}), code=m.code)
                        for m in messages
                    ]
                }
            ) from exc
        return attrs


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"})


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    user = UserSerializer()


def token_response(user, status_code):
    token, _ = Token.objects.get_or_create(user=user)
    body = {"token": token.key, "user": UserSerializer(user).data}
    return Response(body, status=status_code)


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: TokenResponseSerializer, **error_responses(400, 429)},
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            user = User.objects.create_user(data["username"], data["email"], data["password"])
        return token_response(user, status.HTTP_201_CREATED)


class TokenView(APIView):
    """POST exchanges a username and password for a token; DELETE revokes it."""

    permission_classes = [AllowAny]
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenResponseSerializer, **error_responses(400, 429)},
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise ApiError(
                "Unable to log in with the username and password provided.",
                code="invalid_credentials",
            )
        return token_response(user, status.HTTP_200_OK)

    @extend_schema(request=None, responses={204: None, **error_responses(401)})
    def delete(self, request):
        if not request.user.is_authenticated or request.auth is None:
            raise ApiError(
                "Authentication credentials were not provided.",
                code="not_authenticated",
                status_code=401,
            )
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserSerializer, **error_responses(401)})
    def get(self, request):
        return Response(UserSerializer(request.user).data)
