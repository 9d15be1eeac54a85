"""Stripe's published test cards, tokens and payment methods, with Stripe's outcomes.

Source: Stripe's testing documentation (docs.stripe.com/testing). A card's
outcome is decided when it is *charged*, as in Stripe: tokenising a declining
card succeeds, charging it fails. Only malformed data fails at tokenisation.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    code: str  # Stripe's error code, e.g. card_declined
    decline_code: str  # the issuer's reason, e.g. insufficient_funds
    message: str
    param: str | None = None
    outcome_type: str = "issuer_declined"
    network_status: str = "declined_by_network"
    risk_level: str = "normal"
    seller_message: str = "The bank did not return any further details with this decline."


DECLINED = "Your card was declined."

GENERIC_DECLINE = Decline("card_declined", "generic_decline", DECLINED)
INSUFFICIENT_FUNDS = Decline(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
    seller_message="The bank returned the decline code `insufficient_funds`.",
)
LOST_CARD = Decline(
    "card_declined",
    "lost_card",
    DECLINED,
    seller_message="The bank returned the decline code `lost_card`.",
)
STOLEN_CARD = Decline(
    "card_declined",
    "stolen_card",
    DECLINED,
    seller_message="The bank returned the decline code `stolen_card`.",
)
FRAUDULENT = Decline(
    "card_declined",
    "fraudulent",
    DECLINED,
    outcome_type="blocked",
    network_status="not_sent_to_network",
    risk_level="highest",
    seller_message="Stripe blocked this payment as too risky.",
)
EXPIRED_CARD = Decline(
    "expired_card",
    "expired_card",
    "Your card has expired.",
    param="exp_month",
    seller_message="The bank returned the decline code `expired_card`.",
)
INCORRECT_CVC = Decline(
    "incorrect_cvc",
    "incorrect_cvc",
    "Your card's security code is incorrect.",
    param="cvc",
    seller_message="The bank returned the decline code `incorrect_cvc`.",
)
PROCESSING_ERROR = Decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
    seller_message="The bank returned the decline code `processing_error`.",
)
AUTHENTICATION_REQUIRED = Decline(
    "card_declined",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    seller_message="The bank returned the decline code `authentication_required`.",
)
# An off-session PaymentIntent whose card needs authentication fails with the error code
# authentication_required (docs.stripe.com/payments/save-and-reuse: "if (err.code ===
# 'authentication_required')"; docs.stripe.com/error-codes#authentication-required), the
# decline code repeating it; the Charges API, which cannot authenticate, declines the card
# (card_declined / authentication_required).
AUTHENTICATION_REQUIRED_OFF_SESSION = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    seller_message="The bank returned the decline code `authentication_required`.",
)
VELOCITY_EXCEEDED = Decline(
    "card_declined",
    "card_velocity_exceeded",
    "Your card was declined for making repeated attempts too frequently or exceeding its "
    "amount limit.",
    seller_message="The bank returned the decline code `card_velocity_exceeded`.",
)
HIGHEST_RISK = Decline(
    "card_declined",
    "fraudulent",
    DECLINED,
    outcome_type="blocked",
    network_status="not_sent_to_network",
    risk_level="highest",
    seller_message="Stripe blocked this payment as too risky.",
)
LIVE_CARD_IN_TEST_MODE = Decline(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
    network_status="not_sent_to_network",
    outcome_type="invalid",
    seller_message="This card is a live card and cannot be used in test mode.",
)


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str  # as on a Card (token) object: "Visa"
    network: str  # as on a PaymentMethod: "visa"
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    requires_3ds: bool = False
    # After a successful 3-D Secure challenge the issuer still declines (4000008260003178).
    decline_after_authentication: Decline | None = None
    # Funds go straight to the available balance (4000000000000077).
    bypass_pending: bool = False
    risk_level: str = "normal"  # Radar's level on a successful charge
    # the charge succeeds, then is disputed: (reason, status) of the dispute, or None
    dispute: tuple | None = None
    # 4000003800000446: needs 3-D Secure on session, succeeds off session "as if the card
    # has been previously set up"
    off_session_exempt: bool = False
    # What a refund of a charge on this card does later (settle_refunds):
    # (status at creation, final status), e.g. ("succeeded", "failed") for 4000000000005126.
    refund_path: tuple = ("succeeded", "succeeded")
    attach_declines: bool = True  # False: attaching to a customer succeeds (4000000000000341)

    @property
    def last4(self):
        return self.number[-4:]


def _card(number, brand="Visa", network="visa", **kwargs):
    return TestCard(number, brand, network, **kwargs)


CARDS = {
    card.number: card
    for card in [
        # Successful payments, by brand.
        _card("4242424242424242"),
        _card("4000056655665556", funding="debit"),
        _card("5555555555554444", "MasterCard", "mastercard"),
        _card("2223003122003222", "MasterCard", "mastercard"),
        _card("5200828282828210", "MasterCard", "mastercard", funding="debit"),
        _card("5105105105105100", "MasterCard", "mastercard", funding="prepaid"),
        _card("378282246310005", "American Express", "amex"),
        _card("371449635398431", "American Express", "amex"),
        _card("6011111111111117", "Discover", "discover"),
        _card("3056930009020004", "Diners Club", "diners"),
        _card("36227206271667", "Diners Club", "diners"),
        _card("3566002020360505", "JCB", "jcb", country="JP"),
        _card("6200000000000005", "UnionPay", "unionpay", country="CN"),
        # Declines.
        _card("4000000000000002", decline=GENERIC_DECLINE),
        _card("4000000000009995", decline=INSUFFICIENT_FUNDS),
        _card("4000000000009987", decline=LOST_CARD),
        _card("4000000000009979", decline=STOLEN_CARD),
        _card("4100000000000019", decline=FRAUDULENT),
        _card("4000000000000069", decline=EXPIRED_CARD),
        _card("4000000000000127", decline=INCORRECT_CVC),
        _card("4000000000000119", decline=PROCESSING_ERROR),
        # Attaching to a customer succeeds; charging fails.
        _card("4000000000000341", decline=GENERIC_DECLINE, attach_declines=False),
        # "Bypass pending balance": succeeds, funds available at once.
        _card("4000000000000077", bypass_pending=True),
        # Fraud and disputes: succeeds with an elevated risk level; succeeds, then disputed.
        _card("4000000000009235", risk_level="elevated"),
        _card("4000000000000259", dispute=("fraudulent", "needs_response")),
        _card("4000000000002685", dispute=("product_not_received", "needs_response")),
        _card("4000000000001976", dispute=("general", "warning_needs_response")),  # inquiry
        _card("4000000000004954", decline=HIGHEST_RISK),  # Radar: highest risk, blocked
        _card("4000000000006975", decline=VELOCITY_EXCEEDED),
        # Refunds (docs.stripe.com/testing#refunds): 5126's refund starts succeeded and fails
        # some time later; 7726's starts pending and succeeds later (FakeStripe.settle_refunds).
        _card("4000000000005126", refund_path=("succeeded", "failed")),
        _card("4000000000007726", refund_path=("pending", "succeeded")),
        # 3-D Secure (docs.stripe.com/testing#regulatory-cards): a PaymentIntent goes to
        # requires_action; the Charges API cannot authenticate, so it declines with
        # authentication_required.
        _card("4000002500003155", requires_3ds=True),  # authenticate unless set up
        _card("4000002760003184", requires_3ds=True),  # always authenticate
        _card("4000000000003220", requires_3ds=True),  # 3DS2 required
        _card("4000000000003063", requires_3ds=True),  # 3DS required
        _card("4000003800000446", requires_3ds=True, off_session_exempt=True),
        _card(
            "4000008260003178",
            requires_3ds=True,
            decline_after_authentication=INSUFFICIENT_FUNDS,
        ),  # authenticated, then declined with insufficient_funds
        # 3-D Secure supported but not required: succeeds without a challenge.
        _card("4000000000003055"),
    ]
}

# Magic tokens and payment methods: each names one of the cards above.
TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_visa_debit": "4000056655665556",
    "tok_mastercard": "5555555555554444",
    "tok_mastercard_debit": "5200828282828210",
    "tok_amex": "378282246310005",
    "tok_discover": "6011111111111117",
    "tok_chargeDeclined": "4000000000000002",
    "tok_chargeDeclinedInsufficientFunds": "4000000000009995",
    "tok_chargeDeclinedLostCard": "4000000000009987",
    "tok_chargeDeclinedStolenCard": "4000000000009979",
    "tok_chargeDeclinedFraudulent": "4100000000000019",
    "tok_chargeDeclinedExpiredCard": "4000000000000069",
    "tok_chargeDeclinedIncorrectCvc": "4000000000000127",
    "tok_chargeDeclinedProcessingError": "4000000000000119",
    "tok_chargeCustomerFail": "4000000000000341",
    "tok_threeDSecure2Required": "4000000000003220",
    "tok_mastercard_prepaid": "5105105105105100",
    "tok_bypassPending": "4000000000000077",
    "tok_riskLevelElevated": "4000000000009235",
    "tok_createDispute": "4000000000000259",
    "tok_createDisputeProductNotReceived": "4000000000002685",
    "tok_createDisputeInquiry": "4000000000001976",
    "tok_riskLevelHighest": "4000000000004954",
    "tok_radarBlock": "4100000000000019",
    "tok_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "tok_refundFail": "4000000000005126",
    "tok_diners": "3056930009020004",
    "tok_jcb": "3566002020360505",
    "tok_unionpay": "6200000000000005",
}
PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_radarBlock": "4100000000000019",
    "pm_card_visa_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_visa_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_visa_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    # docs.stripe.com/testing#authentication-and-setup: 3184 "requires authentication on
    # all transactions", 3155 "...OnSetup" (set up once, then no further authentication),
    # 0446 "...SetupForOffSession" (off-session payments succeed as if set up)
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_authenticationRequiredSetupForOffSession": "4000003800000446",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_threeDSecureRequired": "4000000000003063",
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": "4000008260003178",
    "pm_card_threeDSecureOptional": "4000000000003055",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_riskLevelElevated": "4000000000009235",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
    "pm_card_createDisputeInquiry": "4000000000001976",
    "pm_card_riskLevelHighest": "4000000000004954",
    "pm_card_visa_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_diners": "3056930009020004",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_refundFail": "4000000000005126",
    "pm_card_mastercard_prepaid": "5105105105105100",
}


def luhn_valid(number):
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


BRAND_PREFIXES = [
    (("34", "37"), "American Express", "amex"),
    (("4",), "Visa", "visa"),
    (
        ("51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27"),
        "MasterCard",
        "mastercard",
    ),
    (("6011", "65", "64"), "Discover", "discover"),
    (("30", "36", "38"), "Diners Club", "diners"),
    (("35",), "JCB", "jcb"),
    (("62",), "UnionPay", "unionpay"),
]


# The lengths each network issues (ISO/IEC 7812 as the networks publish them): a number
# of another length is not a card of that brand. Stripe answers `incorrect_number` for it
# ("The card number is incorrect", docs.stripe.com/error-codes#incorrect-number), as it does
# for a failed Luhn check: a 15-digit 424242424242424 is no Visa.
LENGTHS = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "discover": (16, 17, 18, 19),
    "diners": (14, 15, 16, 17, 18, 19),
    "jcb": (16, 17, 18, 19),
    "unionpay": (16, 17, 18, 19),
}


def network_of(number):
    for prefixes, _, network in BRAND_PREFIXES:
        if number.startswith(prefixes):
            return network
    return "unknown"


def length_fits(number):
    """Whether a number has a length its network issues (published test cards always do)."""
    return number in CARDS or len(number) in LENGTHS.get(network_of(number), range(12, 20))


def card_for(number):
    """The behaviour of a well-formed number: a published test card, or a live card."""
    if number in CARDS:
        return CARDS[number]
    brand, network = "Unknown", "unknown"
    for prefixes, prefix_brand, prefix_network in BRAND_PREFIXES:
        if number.startswith(prefixes):
            brand, network = prefix_brand, prefix_network
            break
    return TestCard(number, brand, network, decline=LIVE_CARD_IN_TEST_MODE)


def card_key(card):
    """A plain-data key for a card's behaviour (so engine state pickles and keeps no PAN):
    the number of a published test card, or brand/network/last4 of a live card."""
    if card.number in CARDS:
        return card.number
    return f"live:{card.brand}:{card.network}:{card.last4}"


def from_key(key):
    if key in CARDS:
        return CARDS[key]
    _, brand, network, last4 = key.split(":", 3)
    return TestCard("0" * 12 + last4, brand, network, decline=LIVE_CARD_IN_TEST_MODE)
