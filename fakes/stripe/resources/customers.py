"""Customers, with a card source attached at creation."""

import secrets
import time

import stripe

from fakes.stripe.generic import shaped
from fakes.stripe.params import apply_metadata
from fakes.stripe.resources.charges import card_error
from fakes.stripe.wire import invalid


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


class CustomerAccounts:
    """Customer CRUD and the customer's saved PaymentMethods (the mobile checkout's side).

    docs.stripe.com/api/customers: update takes `invoice_settings[default_payment_method]`,
    which must be a PaymentMethod attached to this customer; delete answers
    `{id, object, deleted: true}` and a deleted customer cannot be used again.
    """

    UPDATABLE = ("description", "email", "name", "phone", "preferred_locales", "tax_exempt")

    def update_customer(self, params, id):
        customer = self.lookup(id, "customer")
        previous = {}
        for name in self.UPDATABLE:
            if name in params:
                previous[name] = customer[name]
                customer[name] = params[name] if params[name] != "" else None
        for name in ("address", "shipping"):
            if name in params:
                previous[name] = customer[name]
                customer[name] = shaped(stripe.Customer, name, params)
        if "metadata" in params:
            previous["metadata"] = dict(customer["metadata"])
            customer["metadata"] = apply_metadata(customer["metadata"], params["metadata"])
        settings = params.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            wanted = settings["default_payment_method"] or None
            if wanted is not None:
                method = self.objects.get(wanted)
                if (
                    not method
                    or method.get("object") != "payment_method"
                    or (method.get("customer") != customer["id"])
                ):
                    raise invalid(
                        f"The customer does not have a payment method with the ID {wanted}. "
                        "The payment method must be attached to the customer.",
                        "resource_missing",
                        "invoice_settings[default_payment_method]",
                    )
            previous["invoice_settings"] = dict(customer["invoice_settings"])
            customer["invoice_settings"]["default_payment_method"] = wanted
        self._emit("customer.updated", customer, previous)
        return customer

    def delete_customer(self, params, id):
        customer = self.lookup(id, "customer")
        # Deleting a customer detaches its payment methods (they cannot be used again).
        for method in self.page(
            "payment_method", {"customer": id, "limit": 100}, "", ("customer",)
        )["data"]:
            self._detach(method)
        # "If it's for a deleted Customer, a subset of the customer's information is returned,
        # including a deleted property that's set to true" (docs.stripe.com/api/customers/retrieve):
        # the tombstone stays; lists and every other use see no customer.
        tombstone = {"id": id, "object": "customer", "deleted": True}
        self.objects[id] = tombstone
        self._emit("customer.deleted", customer)
        return dict(tombstone)

    def retrieve_customer(self, params, id):
        return self.lookup(id, "customer", deleted_ok=True)

    def list_customer_payment_methods(self, params, id):
        self.lookup(id, "customer", "customer")
        wanted = {**params, "customer": id}
        return self.page(
            "payment_method", wanted, f"/v1/customers/{id}/payment_methods", ("customer", "type")
        )

    def retrieve_customer_payment_method(self, params, customer_id, method_id):
        self.lookup(customer_id, "customer", "customer")
        method = self.lookup(method_id, "payment_method")
        if method["customer"] != customer_id:
            raise invalid(
                f"No such PaymentMethod: '{method_id}'",
                "resource_missing",
                "payment_method",
                status=404,
            )
        return method
