"""Customers, with a card source attached at creation."""

import secrets

import stripe

from fakes.stripe.generic import shaped
from fakes.stripe.params import apply_metadata
from fakes.stripe.resources.charges import card_error
from fakes.stripe.wire import invalid


class Customers:
    def create_customer(self, params):
        # payment_method: "The ID of the PaymentMethod to attach to the customer"
        # (docs.stripe.com/api/customers/create): one that does not exist is resource_missing
        # and no customer is created; invoice_settings[default_payment_method] must be it.
        settings = params.get("invoice_settings")
        wanted = settings.get("default_payment_method") if isinstance(settings, dict) else None
        if wanted and wanted != params.get("payment_method"):
            raise invalid(
                f"The customer does not have a payment method with the ID {wanted}. The "
                "payment method must be attached to the customer.",
                "resource_missing",
                "invoice_settings[default_payment_method]",
            )
        method = None
        if params.get("payment_method"):
            method = self._payment_method(params["payment_method"])
            if method["customer"]:
                raise invalid(
                    "The payment method you provided has already been attached to a customer.",
                    "payment_method_unexpected_state",
                    "payment_method",
                )
            self._check_attachable(method)
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
            self._index_add(("card", "parent", customer_id), card["id"])
            default_source = card["id"]
        customer = {
            "id": customer_id,
            "object": "customer",
            "address": shaped(stripe.Customer, "address", params),
            "balance": params.get("balance") or 0,  # negative: credit for the next invoices
            "created": self.now(),
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
        if wanted:
            customer["invoice_settings"]["default_payment_method"] = method["id"]
        self.store(customer)
        self._emit("customer.created", customer)
        if method is not None:
            self._attach(method, customer_id)
        return customer


class CustomerAccounts:
    """Customer CRUD and the customer's saved PaymentMethods (the mobile checkout's side).

    docs.stripe.com/api/customers: update takes `invoice_settings[default_payment_method]`,
    which must be a PaymentMethod attached to this customer; delete answers
    `{id, object, deleted: true}` and a deleted customer cannot be used again.
    """

    UPDATABLE = ("balance", "description", "email", "name", "phone", "preferred_locales",
                 "tax_exempt")  # fmt: skip

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
        if params.get("source"):
            # "passing source will create a new source object, make it the new customer
            # default source, and delete the old customer default if one exists"
            # (docs.stripe.com/api/customers/update#update_customer-source)
            old = customer["default_source"]
            previous["default_source"] = old
            card = self._add_source(customer, params["source"])
            customer["default_source"] = card["id"]
            if old and old != card["id"] and (self.objects.get(old) or {}).get("object") == "card":
                del self.objects[old]
                self._emit(
                    "customer.source.deleted", {"id": old, "object": "card", "deleted": True}
                )
        if params.get("default_source"):
            self.customer_card(customer["id"], params["default_source"], "default_source")
            previous["default_source"] = customer["default_source"]
            customer["default_source"] = params["default_source"]
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
        self.lookup(id, "customer")  # named by the URL: 404
        wanted = {**params, "customer": id}
        return self.page(
            "payment_method", wanted, f"/v1/customers/{id}/payment_methods", ("customer", "type")
        )

    def retrieve_customer_payment_method(self, params, customer_id, method_id):
        self.lookup(customer_id, "customer")
        method = self.lookup(method_id, "payment_method")
        if method["customer"] != customer_id:
            raise invalid(
                f"No such PaymentMethod: '{method_id}'",
                "resource_missing",
                "payment_method",
                status=404,
            )
        return method


class CustomerSources:
    """A customer's cards, the legacy Sources API older integrations use
    (docs.stripe.com/api/cards: create with a token, list, retrieve, update, delete).

    The first card becomes the customer's `default_source`; deleting the default makes the
    newest remaining card the default (or none); `default_source` on update must be one of
    the customer's cards; `source` on update adds a card and makes it the default. A charge
    with `customer` and no `source` uses the default source; with `customer` and
    `source=card_...` one of that customer's cards.
    """

    CARD_UPDATABLE = ("address_city", "address_country", "address_line1", "address_line2",
                      "address_state", "address_zip", "exp_month", "exp_year", "name")  # fmt: skip

    def create_customer_source(self, params, customer_id):
        customer = self.lookup(customer_id, "customer")
        if not params.get("source"):
            raise invalid("Missing required param: source.", "parameter_missing", "source")
        return self._add_source(customer, params["source"], params.get("metadata"))

    def _add_source(self, customer, source, metadata=None):
        found = self.objects.get(source) if isinstance(source, str) else None
        if found is not None and found.get("object") == "source" and self._visible(source):
            # a Source (POST /v1/sources) is attached as it is (docs.stripe.com/api/sources/attach)
            found["customer"] = customer["id"]
            if not customer["default_source"]:
                customer["default_source"] = found["id"]
            self._emit("customer.source.created", found)
            return found
        card = self._card_from_source(source)
        test_card = self.test_card(card["id"])
        if test_card.decline is not None and test_card.attach_declines:
            raise card_error(test_card.decline)
        card["customer"] = customer["id"]
        if metadata:
            card["metadata"] = apply_metadata({}, metadata)
        self.store(card)
        self._index_add(("card", "parent", customer["id"]), card["id"])
        if not customer["default_source"]:
            previous = {"default_source": None}
            customer["default_source"] = card["id"]
            self._emit("customer.updated", customer, previous)
        self._emit("customer.source.created", card)
        return card

    def customer_card(self, customer_id, card_id, param="id"):
        self.lookup(customer_id, "customer")
        card = self.objects.get(card_id) if isinstance(card_id, str) else None
        if card is None and self.stripe_mock and isinstance(card_id, str):
            kind = {"ba": "bank_account", "src": "source"}.get(card_id.split("_")[0], "card")
            card = self.fixture(kind, card_id)
            card["customer"] = customer_id
        kinds = ("card", "bank_account", "source") if self.stripe_mock else ("card",)
        if not card or card.get("object") not in kinds or card.get("customer") != customer_id:
            raise invalid(
                f"Customer {customer_id} does not have a source with ID {card_id}",
                "resource_missing",
                param,
                status=404 if param == "id" else 400,
            )
        return card

    def list_customer_sources(self, params, customer_id):
        self.lookup(customer_id, "customer")
        wanted = params.get("object")
        if wanted not in (None, "", "card"):  # bank accounts and sources are not modelled
            return {"object": "list", "data": [], "has_more": False,
                    "url": f"/v1/customers/{customer_id}/sources"}  # fmt: skip
        return self.page("card", params, f"/v1/customers/{customer_id}/sources", (),
                         parent=customer_id)  # fmt: skip

    def retrieve_customer_source(self, params, customer_id, card_id):
        return self.customer_card(customer_id, card_id)

    def update_customer_source(self, params, customer_id, card_id):
        card = self.customer_card(customer_id, card_id)
        updated = dict(card)
        for name in self.CARD_UPDATABLE:
            if name in params:
                updated[name] = params[name] if params[name] != "" else None
        if "metadata" in params:
            updated["metadata"] = apply_metadata(card["metadata"], params["metadata"])
        card.update(updated)
        self._emit("customer.source.updated", card)
        return card

    def delete_customer_source(self, params, customer_id, card_id):
        card = self.customer_card(customer_id, card_id)
        customer = self.objects[customer_id]
        del self.objects[card_id]
        if customer["default_source"] == card_id:
            remaining = self.page("card", {"limit": 1}, "", (), parent=customer_id)["data"]
            previous = {"default_source": card_id}
            customer["default_source"] = remaining[0]["id"] if remaining else None
            self._emit("customer.updated", customer, previous)
        self._emit("customer.source.deleted", card)
        return {"id": card_id, "object": "card", "deleted": True}
