import re

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conventions.fields import StrictCharField, StrictIntegerField
from conventions.inputs import ascii_digits
from payments.currencies import MINIMUM_AMOUNTS
from payments.models import Payment, Refund

# The raw card fields a payment may carry (test mode, the sandbox): never stored or logged.
CARD_FIELDS = ("number", "exp_month", "exp_year", "cvc")


class PaymentCreateSerializer(serializers.Serializer):
    """Either raw card fields (test mode, sandbox), a Stripe token, or a PaymentMethod id."""

    # Card fields, amount and currency take ASCII digits / JSON integers / strings only:
    # Stripe's card rules are 0-9, and str.isdigit() or int() would let "²" or "١٢٣" in.
    number = StrictCharField(
        required=False,
        write_only=True,
        max_length=32,
        validators=[
            RegexValidator(r"^[0-9][0-9 -]*[0-9]\Z", "Enter 12 to 19 digits.", "invalid_number")
        ],
        help_text="12-19 ASCII digits (spaces and dashes between them are ignored).",
    )
    exp_month = StrictIntegerField(required=False, min_value=1, max_value=12)
    exp_year = StrictIntegerField(required=False, min_value=2000, max_value=2200)
    cvc = StrictCharField(
        required=False,
        write_only=True,
        max_length=4,
        validators=[RegexValidator(r"^[0-9]{3,4}\Z", "Enter 3 or 4 digits.", "invalid_cvc")],
        help_text="3 or 4 ASCII digits.",
    )
    token = serializers.RegexField(r"^tok_\w+\Z", required=False, max_length=255)
    payment_method = serializers.RegexField(r"^pm_\w+\Z", required=False, max_length=255)
    amount = StrictIntegerField(
        min_value=1,
        max_value=2**31 - 1,  # what the database column holds; PAYMENTS_MAX_AMOUNT is lower
        help_text="In the currency's smallest unit.",
    )
    currency = StrictCharField(default="usd", max_length=3)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=255, default=""
    )
    # Stripe takes an app's own URL scheme (myapp://...) as well as https: URLField would not.
    return_url = serializers.RegexField(
        r"^[A-Za-z][A-Za-z0-9+.-]*://[!-~]+\Z",
        required=False,
        max_length=2048,
        help_text="With payment_method: where 3-D Secure sends the customer back (the app's "
        "URL scheme or a web page); the answer's next_action then redirects there.",
    )
    off_session = serializers.BooleanField(
        required=False, help_text="Charge a saved payment_method with the customer away."
    )
    capture = serializers.BooleanField(
        default=True, help_text="false: hold the funds; staff capture or cancel later."
    )

    def validate_number(self, value):
        digits = re.sub(r"[ -]", "", value)
        if not ascii_digits(digits) or not 12 <= len(digits) <= 19:
            # Never echo the value back: it may be a real card number.
            raise serializers.ValidationError("Enter 12 to 19 digits.", code="invalid_number")
        return digits

    def validate_cvc(self, value):
        if not ascii_digits(value) or len(value) not in (3, 4):
            raise serializers.ValidationError("Enter 3 or 4 digits.", code="invalid_cvc")
        return value

    def validate_currency(self, value):
        value = value.lower()
        allowed = [c.lower() for c in settings.PAYMENTS_CURRENCIES]
        if value not in allowed:
            raise serializers.ValidationError(
                f"Unsupported currency; use one of {', '.join(allowed)}.", code="invalid_currency"
            )
        return value

    def validate(self, attrs):
        card_given = [name for name in CARD_FIELDS if name in attrs]
        sources = sum([bool(card_given), "token" in attrs, "payment_method" in attrs])
        if sources != 1:
            raise serializers.ValidationError(
                "Give exactly one of: card fields (number, exp_month, exp_year, cvc), token, "
                "or payment_method.",
                code="payment_source_required",
            )
        if "return_url" in attrs and "payment_method" not in attrs:
            raise serializers.ValidationError(
                {
                    "return_url": serializers.ErrorDetail(
                        "return_url goes with payment_method (3-D Secure on a PaymentIntent).",
                        "return_url_needs_payment_method",
                    )
                }
            )
        if card_given and not settings.PAYMENTS_ALLOW_RAW_CARDS:
            raise serializers.ValidationError(
                "Raw card numbers are not accepted here; send a token or payment_method "
                "from Stripe's mobile SDK.",
                code="raw_card_data_not_allowed",
            )
        if card_given:
            missing = [name for name in ("number", "exp_month", "exp_year") if name not in attrs]
            if missing:
                raise serializers.ValidationError(
                    {
                        name: serializers.ErrorDetail("This field is required.", "required")
                        for name in missing
                    }
                )
        minimum = MINIMUM_AMOUNTS.get(attrs["currency"], 50)
        if attrs["amount"] < minimum:
            raise serializers.ValidationError(
                {
                    "amount": serializers.ErrorDetail(
                        f"The minimum for {attrs['currency']} is {minimum}.", "amount_too_small"
                    )
                }
            )
        if attrs["amount"] > settings.PAYMENTS_MAX_AMOUNT:
            raise serializers.ValidationError(
                {
                    "amount": serializers.ErrorDetail(
                        f"The maximum is {settings.PAYMENTS_MAX_AMOUNT}.", "amount_too_large"
                    )
                }
            )
        return attrs


class RefundRecordSerializer(serializers.ModelSerializer):
    """A refund as the API shows it (no idempotency internals)."""

    class Meta:
        model = Refund
        fields = [
            "id",
            "amount",
            "reason",
            "status",
            "stripe_refund_id",
            "failure_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentSerializer(serializers.ModelSerializer):
    decline_code = serializers.CharField()
    refunds = serializers.SerializerMethodField()

    @extend_schema_field(RefundRecordSerializer(many=True))
    def get_refunds(self, payment):
        # Oldest first: the order they were asked for. Uses a prefetch when the view made one.
        refunds = sorted(payment.refunds.all(), key=lambda refund: (refund.created_at, refund.pk))
        return RefundRecordSerializer(refunds, many=True).data

    class Meta:
        model = Payment
        fields = [
            "id",
            "amount",
            "currency",
            "description",
            "method",
            "status",
            "amount_refunded",
            "capture",
            "amount_captured",
            "card_brand",
            "card_last4",
            "failure_code",
            "decline_code",
            "failure_message",
            "stripe_charge_id",
            "stripe_payment_intent_id",
            "refunds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PaymentActionSerializer(PaymentSerializer):
    """A payment that needs the customer to authenticate (3-D Secure) in the app."""

    client_secret = serializers.CharField()
    next_action = serializers.DictField(
        allow_null=True, help_text="Stripe's next_action: redirect_to_url or use_stripe_sdk."
    )

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "client_secret", "next_action"]


class RefundSerializer(serializers.Serializer):
    # A JSON integer (not "\u0661\u0662\u0663"), within what the database column holds.
    amount = StrictIntegerField(required=False, min_value=1, max_value=2**31 - 1)
    reason = serializers.ChoiceField(
        choices=["duplicate", "fraudulent", "requested_by_customer"],
        required=False,
        # DRF's default message quotes the input back: never echo what the client sent.
        error_messages={"invalid_choice": "Choose duplicate, fraudulent or requested_by_customer."},
    )


class RefundAnswerSerializer(PaymentSerializer):
    """The refunded payment, with the refund this request made."""

    refund = RefundRecordSerializer()

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "refund"]


class WebhookAckSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField()


# ------------------------------------------------------------------ mobile checkout
class SheetCreateSerializer(serializers.Serializer):
    amount = serializers.IntegerField(min_value=1, help_text="In the currency's smallest unit.")
    currency = serializers.CharField(default="usd", max_length=3)
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=255, default=""
    )
    save_card = serializers.BooleanField(
        default=False, help_text="Save the card for later off-session payments."
    )
    capture = serializers.BooleanField(
        default=True, help_text="false: hold the funds; staff capture or cancel later."
    )
    stripe_version = serializers.RegexField(
        r"^\d{4}-\d{2}-\d{2}(\.\w+)?\Z",
        required=False,
        max_length=40,
        help_text="The API version the app's Stripe SDK reports (for its EphemeralKey).",
    )

    validate_currency = PaymentCreateSerializer.validate_currency

    def validate(self, attrs):
        minimum = MINIMUM_AMOUNTS.get(attrs["currency"], 50)
        if not minimum <= attrs["amount"] <= settings.PAYMENTS_MAX_AMOUNT:
            limit = "minimum" if attrs["amount"] < minimum else "maximum"
            value = minimum if limit == "minimum" else settings.PAYMENTS_MAX_AMOUNT
            raise serializers.ValidationError(
                {
                    "amount": serializers.ErrorDetail(
                        f"The {limit} for {attrs['currency']} is {value}.",
                        "amount_too_small" if limit == "minimum" else "amount_too_large",
                    )
                }
            )
        return attrs


class SheetSerializer(serializers.Serializer):
    """Exactly what PaymentSheet's setup takes (iOS/Android/React Native SDK fields)."""

    payment = PaymentSerializer()
    payment_intent_client_secret = serializers.CharField(
        help_text="PaymentSheet's paymentIntentClientSecret"
    )
    customer = serializers.CharField(help_text="CustomerConfiguration id")
    ephemeral_key_secret = serializers.CharField(
        help_text="CustomerConfiguration ephemeralKeySecret"
    )
    publishable_key = serializers.CharField(help_text="StripeAPI.defaultPublishableKey")


class CardSetupSerializer(serializers.Serializer):
    setup_intent = serializers.CharField()
    setup_intent_client_secret = serializers.CharField(
        help_text="PaymentSheet's setupIntentClientSecret"
    )
    customer = serializers.CharField()
    ephemeral_key_secret = serializers.CharField()
    publishable_key = serializers.CharField()


class SavedCardSerializer(serializers.Serializer):
    id = serializers.CharField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)


class CaptureSerializer(serializers.Serializer):
    amount = serializers.IntegerField(
        required=False, min_value=1, help_text="Capture less than held; the rest is released."
    )
