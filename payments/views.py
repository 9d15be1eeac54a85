import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from backend.api import ApiError, SettingsRateMixin, error_responses
from payments import checkout, services
from payments.models import Payment, StripeEvent
from payments.serializers import (
    CaptureSerializer,
    CardSetupSerializer,
    PaymentActionSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundSerializer,
    SavedCardSerializer,
    SheetCreateSerializer,
    SheetSerializer,
    WebhookAckSerializer,
)


class PaymentCreateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-user cap on payment attempts: card-testing attacks try many cards quickly."""

    scope = "payments"
    rate_setting = "PAYMENTS_THROTTLE"


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
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Retry-safe key: the same key and body return the first answer.",
            )
        ],
        responses={
            201: PaymentSerializer,
            202: PaymentActionSerializer,
            **error_responses(400, 401, 409, 422, 429, 503),
        },
    )
    def post(self, request):
        serializer = PaymentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise ApiError(
                "Idempotency-Key is longer than 255 characters.",
                code="invalid_idempotency_key",
                param="Idempotency-Key",
            )
        data = checkout.resolve_payment_method(request.user, serializer.validated_data)
        code, body, headers = services.create_payment(request.user, data, key)
        return Response(body, status=code, headers=headers)


class PaymentDetailView(generics.RetrieveAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(owner=self.request.user)


class RefundView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=RefundSerializer,
        responses={200: PaymentSerializer, **error_responses(400, 401, 403, 404, 503)},
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
        responses={200: WebhookAckSerializer, **error_responses(400, 503)},
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
        try:
            event = stripe.Webhook.construct_event(
                payload, request.headers.get("Stripe-Signature", ""), secret
            )
        except stripe.SignatureVerificationError as error:
            raise ApiError(
                "The Stripe-Signature header does not verify.",
                code="invalid_signature",
                param="Stripe-Signature",
            ) from error
        except (ValueError, KeyError, TypeError) as error:
            raise ApiError(
                "The webhook body is not a Stripe event.", code="invalid_payload"
            ) from error
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


# ------------------------------------------------------------------ mobile checkout
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Retry-safe key: a retry reaches the same payment / setup.",
)


def idempotency_key(request):
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255:
        raise ApiError(
            "Idempotency-Key is longer than 255 characters.",
            code="invalid_idempotency_key",
            param="Idempotency-Key",
        )
    return key


class PaymentSheetView(APIView):
    """PaymentSheet's setup: a pending payment, its PaymentIntent, the Customer, a key."""

    def get_throttles(self):
        return [*super().get_throttles(), PaymentCreateThrottle()]

    @extend_schema(
        request=SheetCreateSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: SheetSerializer, **error_responses(400, 401, 409, 422, 429, 503)},
    )
    def post(self, request):
        serializer = SheetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = checkout.create_sheet(
            request.user, serializer.validated_data, idempotency_key(request)
        )
        return Response(body, status=status.HTTP_201_CREATED)


class CardSetupView(APIView):
    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: CardSetupSerializer, **error_responses(400, 401, 503)},
    )
    def post(self, request):
        body = checkout.setup_card(request.user, idempotency_key(request))
        return Response(body, status=status.HTTP_201_CREATED)


class SavedCardListView(APIView):
    @extend_schema(responses={200: SavedCardSerializer(many=True), **error_responses(401, 503)})
    def get(self, request):
        return Response(SavedCardSerializer(checkout.saved_cards(request.user), many=True).data)


class SavedCardDetailView(APIView):
    @extend_schema(responses={204: None, **error_responses(401, 404, 503)})
    def delete(self, request, method_id):
        checkout.detach_card(request.user, method_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CaptureView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=CaptureSerializer,
        responses={200: PaymentSerializer, **error_responses(400, 401, 403, 404, 503)},
    )
    def post(self, request, pk):
        serializer = CaptureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = generics.get_object_or_404(Payment, pk=pk)
        payment = checkout.capture_payment(payment, serializer.validated_data.get("amount"))
        return Response(PaymentSerializer(payment).data)


class CancelView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={200: PaymentSerializer, **error_responses(400, 401, 403, 404, 503)},
    )
    def post(self, request, pk):
        payment = generics.get_object_or_404(Payment, pk=pk)
        return Response(PaymentSerializer(checkout.cancel_payment(payment)).data)
