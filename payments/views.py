from django.conf import settings
from django.db import IntegrityError, transaction
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
from payments.models import Payment, StripeEvent
from payments.serializers import (
    PaymentActionSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundSerializer,
    WebhookAckSerializer,
)


class PaymentCreateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-user cap on payment attempts: card-testing attacks try many cards quickly."""

    scope = "payments"
    rate_setting = "PAYMENTS_THROTTLE"


@extend_schema_view(
    get=extend_schema(
        responses={200: PaymentSerializer(many=True), **error_responses(400, 401, 404, 429)}
    )
)
class PaymentListCreateView(generics.ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(owner=self.request.user).order_by("-created_at", "-id")

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(PaymentCreateThrottle())
        return throttles

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
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(owner=self.request.user)


class RefundView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=RefundSerializer,
        responses={
            200: PaymentSerializer,
            **error_responses(400, 401, 403, 404, 413, 415, 429, 503),
        },
    )
    def post(self, request, pk):
        serializer = RefundSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = generics.get_object_or_404(Payment, pk=pk)
        payment = services.refund_payment(payment, **serializer.validated_data)
        return Response(PaymentSerializer(payment).data)


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
            with transaction.atomic():
                record = StripeEvent.objects.create(event_id=event["id"], type=event["type"])
                record.payment = services.apply_event(event)
                record.save(update_fields=["payment"])
        except IntegrityError:
            return Response({"received": True, "duplicate": True})
        except (KeyError, TypeError, AttributeError) as error:
            raise ApiError(
                "The event is missing fields this endpoint needs.", code="invalid_payload"
            ) from error
        return Response({"received": True, "duplicate": False}, status=status.HTTP_200_OK)
