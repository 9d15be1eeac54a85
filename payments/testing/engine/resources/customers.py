"""Customers, with a card source attached at creation."""

import secrets
import time


class Customers:
    def create_customer(self, params):
        customer_id = self.new_id("cus")
        default_source = None
        if params.get("source"):
            card = self._card_from_source(params["source"])
            card["customer"] = customer_id
            self.store(card)
            default_source = card["id"]
        customer = {
            "id": customer_id,
            "object": "customer",
            "address": None,
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
            "metadata": params.get("metadata") or {},
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.store(customer)
        self._emit("customer.created", customer)
        return customer
