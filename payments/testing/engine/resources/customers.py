"""Customers, with a card source attached at creation."""

import secrets
import time

import stripe

from payments.testing.engine.generic import shaped
from payments.testing.engine.params import apply_metadata
from payments.testing.engine.resources.charges import card_error


class Customers:
    def create_customer(self, params):
        customer_id = self.new_id("cus")
        default_source = None
        if params.get("source"):
            card = self._card_from_source(params["source"])
            test_card = self.test_card(card["id"])
            # Attaching a card checks it with the issuer: a declining card is refused and no
            # customer is created, except 4000000000000341 ("attaching this card to a Customer
            # object succeeds, but attempts to charge the customer fail", docs.stripe.com/testing).
            if test_card.decline is not None and test_card.attach_declines:
                raise card_error(test_card.decline)
            card["customer"] = customer_id
            self.store(card)
            default_source = card["id"]
        customer = {
            "id": customer_id,
            "object": "customer",
            "address": shaped(stripe.Customer, "address", params),
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": default_source,
            "delinquent": False,
            "description": params.get("description"),
            "discount": None,
            "email": params.get("email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": apply_metadata({}, params.get("metadata")),
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": params.get("preferred_locales") or [],
            "shipping": shaped(stripe.Customer, "shipping", params),
            "tax_exempt": params.get("tax_exempt") or "none",
            "test_clock": None,
        }
        self.store(customer)
        self._emit("customer.created", customer)
        return customer
