from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from conventions.errors import ApiError
from conventions.inputs import idempotency_key_from
from conventions.schema import IDEMPOTENCY_KEY_PARAMETER, error_responses
from conventions.throttles import SettingsRateMixin
from payments import checkout, customers, events, holds, refunds, webhooks
from payments.models import Payment
from payments.serializers import (
    CaptureSerializer,
    CardSetupSerializer,
    PaymentActionSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundAnswerSerializer,
    RefundSerializer,
    SavedCardSerializer,
    SheetCreateSerializer,
    SheetSerializer,
    WebhookAckSerializer,
)


class PaymentCreateThrottle(SettingsRateMixin, UserRateThrottle):
    """Per-user cap on payment attempts: card-testing attacks try many cards quickly.

    Only requests that would reach Stripe count. An idempotent replay (same key, same
    body, answer stored) makes no Stripe call, and a client must always be able to learn
    what happened to its money; a body the API refuses itself (400) reaches nobody.
    """

    scope = "payments"
    rate_setting = "PAYMENTS_THROTTLE"

    def allow_request(self, request, view):
        if view.not_an_attempt(request):
            return True  # not counted either
        return super().allow_request(request, view)


class ProviderRequestMixin:
    """Views whose POST may call Stripe: validate once, and tell the throttle what counts."""

    request_serializer_class = None

    def validated(self, request):
        """The request serializer, validated once per request (the throttle asks first)."""
        if getattr(request, "_money_serializer", None) is None:
            serializer = self.request_serializer_class(data=request.data)
            serializer.is_valid()
            request._money_serializer = serializer
        return request._money_serializer

    def not_an_attempt(self, request):
        serializer = self.validated(request)
        if serializer.errors:
            return True  # answered 400 without calling Stripe
        key = request.headers.get("Idempotency-Key", "").strip()
        return bool(key) and self.is_replay(request, serializer.validated_data, key)

    def validated_data(self, request):
        serializer = self.validated(request)
        if serializer.errors:
            raise ValidationError(serializer.errors)
        return serializer.validated_data


class RefundCreateThrottle(PaymentCreateThrottle):
    scope = "refunds"


@extend_schema_view(
    get=extend_schema(
        responses={200: PaymentSerializer(many=True), **error_responses(400, 401, 404, 429)}
    )
)
class PaymentListCreateView(ProviderRequestMixin, generics.ListAPIView):
    """The caller's payments, newest first, each with its refunds."""

    serializer_class = PaymentSerializer
    request_serializer_class = PaymentCreateSerializer

    def get_queryset(self):
        payments = Payment.objects.filter(owner=self.request.user).prefetch_related("refunds")
        return payments.order_by("-created_at", "-id")

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(PaymentCreateThrottle())
        return throttles

    def is_replay(self, request, data, key):
        return checkout.is_replay(request.user, data, key)

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
        """Pay: raw card fields (test mode, the sandbox), a Stripe token, or a PaymentMethod
        (a saved card, off-session, or held with `capture: false`). 201 paid, 202 when the
        customer must complete 3-D Secure; a retry with the same Idempotency-Key and body
        gets the first answer."""
        key = idempotency_key_from(request)
        data = self.validated_data(request)
        data = checkout.resolve_payment_method(request.user, data)
        code, body, headers = checkout.create_payment(request.user, data, key)
        return Response(body, status=code, headers=headers)


@extend_schema_view(
    get=extend_schema(responses={200: PaymentSerializer, **error_responses(401, 404, 429)})
)
class PaymentDetailView(generics.RetrieveAPIView):
    """One of the caller's payments, with its refunds."""

    serializer_class = PaymentSerializer

    def get_queryset(self):
        return Payment.objects.filter(owner=self.request.user).prefetch_related("refunds")


class RefundView(ProviderRequestMixin, APIView):
    """Staff: refund all or part of a payment; Idempotency-Key as for payments."""

    permission_classes = [IsAdminUser]
    request_serializer_class = RefundSerializer

    def get_throttles(self):
        return [*super().get_throttles(), RefundCreateThrottle()]

    def is_replay(self, request, data, key):
        return refunds.is_replay(self.kwargs["pk"], data, key)

    @extend_schema(
        request=RefundSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: RefundAnswerSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request, pk):
        data = self.validated_data(request)
        key = idempotency_key_from(request)
        payment = generics.get_object_or_404(Payment, pk=pk)
        code, body, headers = refunds.create_refund(request.user, payment, data, key)
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
            duplicate = events.record_event(event)  # applied idempotently, in any order
        except (KeyError, TypeError, AttributeError) as error:
            raise ApiError(
                "The event is missing fields this endpoint needs.", code="invalid_payload"
            ) from error
        return Response({"received": True, "duplicate": duplicate}, status=status.HTTP_200_OK)


# ------------------------------------------------------------------ mobile checkout
class PaymentSheetView(ProviderRequestMixin, APIView):
    """PaymentSheet's setup: a pending payment, its PaymentIntent, the Customer, a key."""

    request_serializer_class = SheetCreateSerializer

    def get_throttles(self):
        return [*super().get_throttles(), PaymentCreateThrottle()]

    def is_replay(self, request, data, key):
        return False  # a repeated key reaches the same payment, but does call Stripe again

    @extend_schema(
        request=SheetCreateSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: SheetSerializer, **error_responses(400, 401, 409, 422, 429, 503)},
    )
    def post(self, request):
        body = checkout.create_sheet(
            request.user, self.validated_data(request), idempotency_key_from(request)
        )
        return Response(body, status=status.HTTP_201_CREATED)


class CardSetupView(APIView):
    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: CardSetupSerializer, **error_responses(400, 401, 503)},
    )
    def post(self, request):
        body = customers.setup_card(request.user, idempotency_key_from(request))
        return Response(body, status=status.HTTP_201_CREATED)


class SavedCardListView(APIView):
    @extend_schema(responses={200: SavedCardSerializer(many=True), **error_responses(401, 503)})
    def get(self, request):
        return Response(SavedCardSerializer(customers.saved_cards(request.user), many=True).data)


class SavedCardDetailView(APIView):
    @extend_schema(responses={204: None, **error_responses(401, 404, 503)})
    def delete(self, request, method_id):
        customers.detach_card(request.user, method_id)
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
        payment = holds.capture_payment(payment, serializer.validated_data.get("amount"))
        return Response(PaymentSerializer(payment).data)


class CancelView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={200: PaymentSerializer, **error_responses(400, 401, 403, 404, 503)},
    )
    def post(self, request, pk):
        payment = generics.get_object_or_404(Payment, pk=pk)
        return Response(PaymentSerializer(holds.cancel_payment(payment)).data)
