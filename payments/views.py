from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from backend.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    ApiError,
    SettingsRateMixin,
    error_responses,
    idempotency_key_from,
)
from payments import services, webhooks
from payments.models import Payment
from payments.serializers import (
    PaymentActionSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundAnswerSerializer,
    RefundSerializer,
    WebhookAckSerializer,
)


class PaymentCreateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-user cap on payment attempts: card-testing attacks try many cards quickly.

    An idempotent replay (same key, same body, answer stored) is not an attempt: it makes
    no Stripe call, and a client must always be able to learn what happened to its money.
    """

    scope = "payments"
    rate_setting = "PAYMENTS_THROTTLE"

    def allow_request(self, request, view):
        if view.is_replay(request):
            return True  # not counted either
        return super().allow_request(request, view)


class RefundCreateThrottle(PaymentCreateThrottle):
    scope = "refunds"


@extend_schema_view(
    get=extend_schema(
        responses={200: PaymentSerializer(many=True), **error_responses(400, 401, 404, 429)}
    )
)
class PaymentListCreateView(generics.ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        payments = Payment.objects.filter(owner=self.request.user).prefetch_related("refunds")
        return payments.order_by("-created_at", "-id")

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(PaymentCreateThrottle())
        return throttles

    def is_replay(self, request):
        serializer = PaymentCreateSerializer(data=request.data)
        key = request.headers.get("Idempotency-Key", "").strip()
        return (
            bool(key)
            and serializer.is_valid()
            and services.is_payment_replay(request.user, serializer.validated_data, key)
        )

    @extend_schema(
        request=PaymentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: PaymentSerializer,
            202: PaymentActionSerializer,
            **error_responses(400, 401, 409, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request):
        key = idempotency_key_from(request)
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        code, body, headers = services.create_payment(request.user, serializer.validated_data, key)
        return Response(body, status=code, headers=headers)


@extend_schema_view(
    get=extend_schema(responses={200: PaymentSerializer, **error_responses(401, 404, 429)})
)
class PaymentDetailView(generics.RetrieveAPIView):
    """One of the caller's payments, with its refunds."""

    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(owner=self.request.user).prefetch_related("refunds")


class RefundView(APIView):
    """Staff: refund all or part of a payment; Idempotency-Key as for payments."""

    permission_classes = [IsAdminUser]

    def get_throttles(self):
        return [*super().get_throttles(), RefundCreateThrottle()]

    def is_replay(self, request):
        serializer = RefundSerializer(data=request.data)
        key = request.headers.get("Idempotency-Key", "").strip()
        pk = self.kwargs["pk"]
        return (
            bool(key)
            and serializer.is_valid()
            and services.is_refund_replay(pk, serializer.validated_data, key)
        )

    @extend_schema(
        request=RefundSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: RefundAnswerSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request, pk):
        serializer = RefundSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = idempotency_key_from(request)
        payment = generics.get_object_or_404(Payment, pk=pk)
        code, body, headers = services.create_refund(
            request.user, payment, serializer.validated_data, key
        )
        return Response(body, status=code, headers=headers)


class RawBodyParser(BaseParser):
    """The webhook signature covers the exact bytes Stripe sent: keep them."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream else b""


class StripeWebhookView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = []
    parser_classes = [RawBodyParser]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: WebhookAckSerializer, **error_responses(400, 413, 503)},
    )
    def post(self, request):
        secret = settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise ApiError(
                "Webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
                code="webhooks_not_configured",
                status_code=503,
            )
        payload = request.data if isinstance(request.data, bytes) else b""
        # Signature, then hardened parse, then Stripe's event shape: 400 invalid_signature
        # or invalid_payload, never a 500 (see payments/webhooks.py).
        event = webhooks.construct_event(payload, request.headers.get("Stripe-Signature"), secret)
        try:
            duplicate = services.record_event(event)  # applied idempotently, in any order
        except (KeyError, TypeError, AttributeError) as error:
            raise ApiError(
                "The event is missing fields this endpoint needs.", code="invalid_payload"
            ) from error
        return Response({"received": True, "duplicate": duplicate}, status=status.HTTP_200_OK)
