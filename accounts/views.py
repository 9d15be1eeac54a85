"""Sign-in for the mobile app: register, sign a device in and out, list and end sessions."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import DeviceSession
from accounts.serializers import (
    PasswordChangeSerializer,
    RegisterSerializer,
    SessionSerializer,
    SignedInSerializer,
    SignedOutSerializer,
    SignInSerializer,
    UserSerializer,
)
from accounts.throttles import UsernameThrottle
from conventions.errors import ApiError
from conventions.schema import error_responses
from conventions.throttles import AuthThrottle

User = get_user_model()


def signed_in_response(user, data, status_code):
    session, token = services.sign_in(user, data["device_name"], data["platform"])
    body = {
        "token": token,
        "expires": session.expiry,
        "session": SessionSerializer(session, context={"current_id": session.pk}).data,
        "user": UserSerializer(user).data,
    }
    return Response(body, status=status_code)


def require_session(request):
    session = services.current_session(request)
    if session is None:
        raise ApiError(
            "Sign in with a device token (Authorization: Token ...) to do this.",
            code="not_authenticated",
            status_code=401,
        )
    return session


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: SignedInSerializer, **error_responses(400, 429)},
        summary="Create an account; signs this device in",
    )
    def post(self, request):
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            user = User.objects.create_user(data["username"], data["email"], data["password"])
        return signed_in_response(user, data, status.HTTP_201_CREATED)


class TokenView(APIView):
    """POST signs this device in; GET describes its session; DELETE signs it out."""

    throttle_classes = [AuthThrottle, UsernameThrottle]

    def get_authenticators(self):
        # Signing in must work whatever stale token the app still sends.
        if getattr(self.request, "method", None) == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if getattr(self.request, "method", None) == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_throttles(self):
        if getattr(self.request, "method", None) == "POST":
            return super().get_throttles()
        return [throttle() for throttle in self.settings.DEFAULT_THROTTLE_CLASSES]

    @extend_schema(
        request=SignInSerializer,
        responses={200: SignedInSerializer, **error_responses(400, 429)},
        summary="Sign this device in",
        auth=[],
        description="A wrong password, an unknown username and an inactive account all get "
        "the same 400 `invalid_credentials`. Throttled per address (API_THROTTLE_AUTH) and "
        "per username (failed attempts, AUTH_THROTTLE_USERNAME): 429 `throttled`.",
    )
    def post(self, request):
        serializer = SignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = services.check_credentials(request, data["username"], data["password"])
        return signed_in_response(user, data, status.HTTP_200_OK)

    @extend_schema(
        responses={200: SessionSerializer, **error_responses(401)},
        summary="This device's session (its expiry, renewed by this very request)",
    )
    def get(self, request):
        session = require_session(request)
        return Response(SessionSerializer(session, context={"current_id": session.pk}).data)

    @extend_schema(
        request=None,
        responses={204: None, **error_responses(401)},
        summary="Sign this device out (and remove its push registration)",
    )
    def delete(self, request):
        session = require_session(request)
        services.end_sessions(DeviceSession.objects.filter(pk=session.pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionListView(APIView):
    @extend_schema(
        responses={200: SessionSerializer(many=True), **error_responses(401)},
        summary="The devices signed in to this account, newest first",
    )
    def get(self, request):
        current = services.current_session(request)
        sessions = (
            DeviceSession.objects.filter(user=request.user)
            .exclude(expiry__lte=timezone.now())  # expired, not yet purged: signed out already
            .order_by("-created", "-id")
        )
        context = {"current_id": current.pk if current else None}
        return Response(SessionSerializer(sessions, many=True, context=context).data)

    @extend_schema(
        request=None,
        responses={200: SignedOutSerializer, **error_responses(401)},
        summary="Sign out every other device",
        operation_id="auth_sessions_destroy_others",
    )
    def delete(self, request):
        signed_out = services.end_sessions(services.other_sessions(request))
        return Response({"signed_out": signed_out})


class SessionDetailView(APIView):
    @extend_schema(
        request=None,
        responses={204: None, **error_responses(401, 404)},
        summary="Sign out one of this account's devices",
    )
    def delete(self, request, pk):
        session = get_object_or_404(DeviceSession, pk=pk, user=request.user)
        services.end_sessions(DeviceSession.objects.filter(pk=session.pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: SignedOutSerializer, **error_responses(400, 401, 429)},
        summary="Change the password; signs out every other device",
    )
    def post(self, request):
        serializer = PasswordChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        signed_out = services.change_password(request, serializer.validated_data["new_password"])
        return Response({"signed_out": signed_out})


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserSerializer, **error_responses(401)})
    def get(self, request):
        return Response(UserSerializer(request.user).data)
