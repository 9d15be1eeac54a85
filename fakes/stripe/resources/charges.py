"""Charges and refunds (refunds depend on charges, charges on tokens and cards)."""

import functools
import json

import stripe

from fakes.stripe import cards
from fakes.stripe.currencies import PRESENTMENT, amount_problem
from fakes.stripe.generic import shaped
from fakes.stripe.params import apply_metadata
from fakes.stripe.wire import (
    FrozenDict,
    StripeError,
    as_bool,
    as_int,
    empty_billing_details,
    format_amount,
    invalid,
    not_found,
)


def card_error(decline, **extra):
    if decline.decline_code:  # Stripe sends none for an authentication failure
        extra["decline_code"] = decline.decline_code
    return StripeError(402, "card_error", decline.message, decline.code, decline.param, **extra)


# Sub-objects no handler ever changes in place are shared between charges (a stored charge
# then costs less; see the benchmark's bytes per charge). Handlers replace, never mutate, them.
_SHARED = {}


def shared(value):
    key = json.dumps(value, sort_keys=True)
    found = _SHARED.get(key)
    if found is None:
        found = _SHARED[key] = FrozenDict(
            {k: shared(v) if isinstance(v, dict) else v for k, v in value.items()}
        )
    return found


@functools.cache
def outcome(decline, risk_level="normal"):
    return shared(_outcome(decline, risk_level))


def _outcome(decline, risk_level):
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": "elevated_risk_level" if risk_level == "elevated" else None,
            "risk_level": risk_level,
            "risk_score": 65 if risk_level == "elevated" else 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": decline.network_status,
        "reason": "highest_risk_level"
        if decline.outcome_type == "blocked"
        else decline.decline_code,
        "risk_level": decline.risk_level,
        "risk_score": 95 if decline.risk_level == "highest" else 32,
        "seller_message": decline.seller_message,
        "type": decline.outcome_type,
    }


CHECKS_PASS = shared(
    {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"}
)
CHECKS_UNCHECKED = shared(
    {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "unchecked"}
)
NETWORK_TOKEN = shared({"used": False})
BILLING_DETAILS = shared(empty_billing_details())
FRAUD_DETAILS = shared({})


class Charges:
    def _amount_and_currency(self, params):
        """amount and currency, checked against Stripe's currency table (currencies.py)."""
        amount = as_int(params, "amount", required=True)
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise invalid("Missing required param: currency.", "parameter_missing", "currency")
        if currency not in PRESENTMENT:
            raise invalid(
                f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                f"{', '.join(sorted(PRESENTMENT))}",
                "parameter_invalid_string",
                "currency",
            )
        if amount < 1:
            raise invalid(
                "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                "amount",
            )
        self._check_amount(amount, currency)
        return amount, currency

    @staticmethod
    def _check_amount(amount, currency, param="amount", charge=True):
        problem = amount_problem(amount, currency, charge=charge)
        if problem:
            raise invalid(problem[1], problem[0], param)

    def create_charge(self, params):
        amount, currency = self._amount_and_currency(params)
        capture = as_bool(params, "capture", True)
        customer_id = params.get("customer")
        if params.get("source") and customer_id:
            try:
                card = self.customer_card(customer_id, params["source"], "source")
            except StripeError as error:
                if error.body.get("param") != "source":
                    raise
                # docs.stripe.com/error-codes#missing: "Both a customer and source ID have
                # been provided, but the source has not been saved to the customer" (a token
                # too: with a customer the source is one of its own); 404, as Stripe answered
                # stripe-stateful-mock's live-checked parity test
                raise invalid(
                    f"Customer {customer_id} does not have a linked source with ID "
                    f"{params['source']}.",
                    "missing",
                    "source",
                    status=404,
                ) from None
        elif params.get("source"):
            card = self._card_from_source(params["source"])
        elif customer_id:
            customer = self.lookup(customer_id, "customer", "customer")
            if not customer["default_source"]:
                raise invalid("Cannot charge a customer that has no active card", "missing", "card")
            card = self.objects[customer["default_source"]]
        else:
            raise invalid("Must provide source or customer.", "parameter_missing", "source")
        test_card = self.test_card(card["id"])
        decline = test_card.decline
        if decline is None and test_card.requires_3ds:
            decline = cards.AUTHENTICATION_REQUIRED
        charge = self._new_charge(
            amount, currency, params, card, test_card, decline, capture, customer=customer_id
        )
        charge["source"] = card
        if decline:
            self._emit("charge.failed", charge)
            raise card_error(decline, charge=charge["id"])
        self._emit("charge.succeeded", charge)
        self._maybe_dispute(charge, test_card)
        return charge

    def _maybe_dispute(self, charge, test_card):
        """4000000000000259 / tok_createDispute: "the charge succeeds, only to be disputed as
        fraudulent"; 2685 as product not received; 1976 "as an inquiry" (a dispute in
        warning_needs_response), docs.stripe.com/testing#disputes. Stripe opens it shortly
        after; the fake opens it at once (the docs do not say how long "after" is)."""
        if not test_card.dispute:
            return
        reason, status = test_card.dispute
        dispute = {
            "id": self.new_id("dp"),
            "object": "dispute",
            "amount": charge["amount"],
            "balance_transactions": [],
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {},
            "evidence_details": {
                "due_by": self.now() + 7 * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            # an inquiry (warning_needs_response) leaves the charge refundable
            "is_charge_refundable": status.startswith("warning_"),
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": status,
        }
        self.store(dispute)
        charge["disputed"] = True
        self._emit("charge.dispute.created", dispute)

    def _new_charge(
        self,
        amount,
        currency,
        params,
        card,
        test_card,
        decline,
        capture,
        payment_intent=None,
        payment_method=None,
        customer=None,
    ):
        succeeded = decline is None
        charge = {
            "id": self.new_id("ch"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if succeeded and capture else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            # an authorisation moves no money: no balance transaction until captured
            "balance_transaction": None,  # set below, when money moves
            "billing_details": BILLING_DETAILS,
            "calculated_statement_descriptor": "FAKE STRIPE",
            "captured": succeeded and capture,
            "created": self.now(),
            "currency": currency,
            "customer": customer,
            "description": params.get("description"),
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline.code if decline else None,
            "failure_message": decline.message if decline else None,
            "fraud_details": FRAUD_DETAILS,
            "livemode": False,
            "metadata": apply_metadata({}, params.get("metadata")),
            "on_behalf_of": None,
            "outcome": outcome(decline, test_card.risk_level),  # shared (cached)
            "paid": succeeded,
            "payment_intent": payment_intent,
            "payment_method": payment_method or card["id"],
            "payment_method_details": {
                "card": {
                    "amount_authorized": amount if succeeded else None,
                    "authorization_code": None,
                    "brand": test_card.network,
                    "checks": CHECKS_PASS if succeeded else CHECKS_UNCHECKED,
                    "country": test_card.country,
                    "exp_month": card["exp_month"],
                    "exp_year": card["exp_year"],
                    "fingerprint": card["fingerprint"],
                    "funding": test_card.funding,
                    "installments": None,
                    "last4": test_card.last4,
                    "mandate": None,
                    "network": test_card.network,
                    "network_token": NETWORK_TOKEN,
                    "three_d_secure": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": params.get("receipt_email"),
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False, "url": ""},
            "review": None,
            "shipping": shaped(stripe.Charge, "shipping", params),
            "source": None,
            "source_transfer": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "succeeded" if succeeded else "failed",
            "transfer_data": None,
            "transfer_group": params.get("transfer_group"),
        }
        charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
        if succeeded and capture:
            charge["balance_transaction"] = self._new_txn(charge["id"])
        if succeeded:
            charge["receipt_url"] = f"https://pay.stripe.com/receipts/fake/{charge['id']}"
        return self.store(charge)

    def capture_charge(self, params, id):
        charge = self.lookup(id, "charge")
        if charge["captured"]:
            raise invalid("This charge has already been captured.", "charge_already_captured")
        if charge["status"] != "succeeded":
            raise invalid(
                "This charge cannot be captured because it failed.", "charge_not_capturable"
            )
        amount = as_int(params, "amount") or charge["amount"]
        # what is captured is charged: the currency's minimum applies
        self._check_amount(amount, charge["currency"])
        if amount > charge["amount"]:
            raise invalid(
                "The amount to capture exceeds the authorized amount.", "amount_too_large", "amount"
            )
        # A partial capture releases the rest of the authorisation. The API reference only says
        # the amount "must be less than or equal to the original amount" and that uncaptured
        # charges that expire "are marked as refunded" (docs.stripe.com/api/charges/capture);
        # it is silent on the remainder, which the fake reports in amount_refunded, without a
        # refund object.
        previous = {"captured": False, "amount_captured": 0, "amount_refunded": 0,
                    "balance_transaction": None}  # fmt: skip
        charge.update(
            captured=True,
            amount_captured=amount,
            amount_refunded=charge["amount"] - amount,
            balance_transaction=self._new_txn(charge["id"]),
        )
        self._emit("charge.captured", charge, previous)
        return charge

    # ------------------------------------------------------------ refunds
    def list_charge_refunds(self, params, charge_id):
        """GET /v1/charges/{charge}/refunds: the charge's refunds, newest first (the URL of
        a charge's `refunds` list)."""
        charge = self.lookup(charge_id, "charge")
        wanted = {**params, "charge": charge["id"]}
        return self.page("refund", wanted, f"/v1/charges/{charge['id']}/refunds", ("charge",))

    def retrieve_charge_refund(self, params, charge_id, refund_id):
        """GET /v1/charges/{charge}/refunds/{refund}: one of the charge's refunds."""
        charge = self.lookup(charge_id, "charge")
        refund = self.lookup(refund_id, "refund")
        if refund["charge"] != charge["id"] and not (
            self.stripe_mock and refund_id in self._fixtures
        ):
            raise not_found("refund", refund_id)
        return refund

    def create_refund(self, params):
        if params.get("payment_intent"):
            intent = self.lookup(params["payment_intent"], "payment_intent", "payment_intent")
            if not intent["latest_charge"]:
                raise invalid(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                    "charge_not_refundable",
                )
            charge = self.objects[intent["latest_charge"]]
        elif params.get("charge"):
            # a missing charge is the request's own object: 404 with param `id`, as Stripe
            # answered (stripe/stripe-node#639: "param: 'id', message: 'No such charge: ...'";
            # stripe-stateful-mock's refund parity test, checked against live Stripe: 404)
            charge = self.lookup(params["charge"], "charge", "id")
        else:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                "parameter_missing",
                "charge",
            )
        if charge["status"] != "succeeded":
            raise invalid(
                f"Charge {charge['id']} has failed and cannot be refunded.", "charge_not_refundable"
            )
        if charge["refunded"]:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", "charge_already_refunded"
            )
        if charge["disputed"]:
            dispute = next((d for d in self.all("dispute") if d["charge"] == charge["id"]), None)
            if dispute is not None and not dispute["is_charge_refundable"]:
                raise invalid(
                    f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                    "charge_disputed",
                )
        if not charge["captured"]:
            given = as_int(params, "amount")
            if given is not None and given != charge["amount"]:
                # an authorisation is released whole; capture less instead
                # (docs.stripe.com/api/charges/capture: amount)
                raise invalid(
                    "You cannot partially refund an uncaptured charge. Instead, capture the "
                    "charge for an amount less than the original amount",
                    None,
                    "amount",
                )
            return self._void(charge, params)
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = as_int(params, "amount")
        amount = remaining if amount is None else amount
        if amount < 1:
            raise invalid(
                "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                "amount",
            )
        self._check_amount(amount, charge["currency"], charge=False)
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
                "amount_too_large",
                "amount",
            )
        test_card = self.test_card(charge["payment_method"])
        first, final = test_card.refund_path
        refund = self._new_refund(charge, amount, params, first)
        if final != first:
            self._refunds_due.append([refund["id"], final])
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge, previous)
        return refund

    def _void(self, charge, params):
        """Refunding an uncaptured charge releases the authorisation instead of failing: no
        money moved, so no balance transaction; the charge ends refunded, as an expired
        uncaptured charge is "marked as refunded" (docs.stripe.com/api/charges/capture). The
        docs are silent on a partial `amount` here; the fake releases the whole amount."""
        refund = self._new_refund(charge, charge["amount"], params, "succeeded")
        self._balance_sources.pop(refund["balance_transaction"])  # no money moved
        refund["balance_transaction"] = None
        previous = {"amount_refunded": 0, "refunded": False}
        charge.update(amount_refunded=charge["amount"], refunded=True)
        charge["refunds"]["data"].insert(0, refund)
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge, previous)
        return refund

    def _new_refund(self, charge, amount, params, status):
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": self.now(),
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": apply_metadata({}, params.get("metadata")),
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": status,
            "transfer_reversal": None,
        }
        refund["balance_transaction"] = self._new_txn(refund["id"])
        return self.store(refund)

    def settle_refunds(self):
        """Harness: what Stripe does "some time later" to refunds of the refund test cards:
        4000000000007726's pending refund succeeds; 4000000000005126's succeeded refund fails
        (its amount goes back to the charge's refundable amount). Sends refund.updated and
        charge.refund.updated (plus refund.failed), as Stripe does. Returns the refunds."""
        with self._lock:
            settled = []
            for refund_id, final in self._refunds_due:
                refund = self.objects[refund_id]
                charge = self.objects[refund["charge"]]
                previous = {"status": refund["status"]}
                refund["status"] = final
                if final == "failed":
                    # The docs name no reason for this card. A card refund that fails
                    # later is most often to a closed card: Stripe's enum (and Terminal's
                    # docs) list expired_or_canceled_card for that.
                    refund["failure_reason"] = "expired_or_canceled_card"
                    refund["failure_balance_transaction"] = self.new_id("txn")
                    charge["amount_refunded"] = max(charge["amount_refunded"] - refund["amount"], 0)
                    charge["refunded"] = False
                for index, listed in enumerate(charge["refunds"]["data"]):
                    if listed["id"] == refund_id:
                        charge["refunds"]["data"][index] = refund
                self._emit("refund.updated", refund, previous)
                self._emit("charge.refund.updated", refund, previous)
                if final == "failed":
                    self._emit("refund.failed", refund)
                settled.append(refund)
            self._refunds_due = []
            return settled

    def cancel_refund(self, params, id):
        refund = self.lookup(id, "refund")
        # Only refunds in requires_action can be canceled (docs.stripe.com/api/refunds/cancel);
        # card refunds never are.
        if refund["status"] != "requires_action":
            raise invalid(
                f"You cannot cancel this refund because it has a status of {refund['status']}."
            )
        refund["status"] = "canceled"
        self._emit("refund.updated", refund, {"status": "requires_action"})
        return refund
