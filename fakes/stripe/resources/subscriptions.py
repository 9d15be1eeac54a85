"""Subscriptions, as far as their first payment: items from prices or plans, the first
invoice, and the subscription's status from what paying it did.

docs.stripe.com/billing/subscriptions/overview and docs.stripe.com/api/subscriptions/create:
- each entry of `items` becomes a SubscriptionItem (its price, the plan when one is named,
  `quantity` 1 unless given), listed in the subscription's `items`;
- the first invoice (`latest_invoice`) totals the items (unit amount x quantity); a
  trial (`trial_period_days`, `trial_end`) makes it 0 and the subscription `trialing`;
- with collection_method charge_automatically the invoice is paid at once from the
  subscription's or the customer's default payment method or default source: the
  subscription is `active`; when there is none, or the payment fails, it is `incomplete`
  and the invoice `open` (payment_behavior allow_incomplete, the default; no 402);
- updating `items[n][id]` changes an item's quantity or price, an entry without `id` adds
  one; DELETE cancels (status `canceled`, `canceled_at`).

The first invoice also bills the customer's pending invoice items ("you can still add invoice
items to the customer, and these will apply to the next invoice",
docs.stripe.com/billing/invoices/subscription; "If no invoice is specified, the item will be
on the next invoice created for the customer", docs.stripe.com/api/invoiceitems/create) and
those `add_invoice_items` makes, in the subscription's currency. Tax rates
(docs.stripe.com/billing/taxes/tax-rates): an item's `tax_rates`, else the subscription's
`default_tax_rates` ("The tax rates that will apply to any subscription item that does not
have tax_rates set"), an invoice item's own `tax_rates`, else the same defaults. Each line's
tax is its amount x the percentage, rounded half away from zero to a whole minor unit (the
fake's choice: the docs do not give the rounding), added on top (exclusive) or already
in the amount (inclusive: amount x p / (100 + p)); `taxes` on each line, `total_taxes`,
`total_excluding_tax` and `total` on the invoice. The customer's `currency` becomes the
subscription's ("The currency the customer can be charged in for recurring billing
purposes", docs.stripe.com/api/customers/object#customer_object-currency).
Renewals, proration and dunning are not modelled.
"""

from decimal import ROUND_HALF_UP, Decimal

import stripe

from fakes.stripe.generic import build
from fakes.stripe.wire import StripeError, invalid, not_found

MONTH = 30 * 86400
INTERVAL_SECONDS = {"day": 86400, "week": 7 * 86400, "month": MONTH, "year": 365 * 86400}


def line_tax(amount, rate):
    """A line's tax for one TaxRate (docs.stripe.com/billing/taxes/tax-rates: exclusive rates
    are added to the amount, inclusive ones are part of it), rounded half away from zero."""
    percentage = Decimal(str(rate.get("percentage") or 0))
    inclusive = bool(rate.get("inclusive"))
    if inclusive:
        tax = Decimal(amount) * percentage / (100 + percentage)
    else:
        tax = Decimal(amount) * percentage / 100
    tax = int(tax.quantize(Decimal(1), ROUND_HALF_UP))  # ROUND_HALF_UP: ties away from zero
    return {
        "amount": tax,
        "tax_behavior": "inclusive" if inclusive else "exclusive",
        "tax_rate_details": {"tax_rate": rate["id"]},
        "taxability_reason": "standard_rated",
        "taxable_amount": amount - tax if inclusive else amount,
        "type": "tax_rate_details",
    }


class Subscriptions:
    def create_subscription(self, params):
        if not params.get("customer"):  # (declared optional: customer_account may stand in)
            raise invalid("Missing required param: customer.", "parameter_missing", "customer")
        customer = self.lookup(params["customer"], "customer", "customer")
        entries = params.get("items") or []
        prices = [self._price_of(entry, f"items[{n}]") for n, entry in enumerate(entries)]
        rates = [self._tax_rates(entry.get("tax_rates"), f"items[{n}][tax_rates]")
                 for n, entry in enumerate(entries)]  # fmt: skip
        defaults = self._tax_rates(params.get("default_tax_rates"), "default_tax_rates")
        extras = [self._price_of(entry, f"add_invoice_items[{n}]")[0]
                  for n, entry in enumerate(params.get("add_invoice_items") or [])]  # fmt: skip
        sub_id = self.new_id("sub")
        now = self.now()
        rest = {k: v for k, v in params.items() if k not in ("items", "add_invoice_items")}
        sub = build(stripe.Subscription, rest, "/v1/subscriptions")
        sub["default_tax_rates"] = defaults
        items = [
            self._new_item(sub_id, entry, price, plan, item_rates)
            for entry, (price, plan), item_rates in zip(entries, prices, rates, strict=True)
        ]
        sub.update(
            id=sub_id,
            customer=customer["id"],
            created=now,
            start_date=now,
            collection_method=params.get("collection_method") or "charge_automatically",
            cancel_at_period_end=bool(params.get("cancel_at_period_end", False)),
            items={
                "object": "list",
                "data": items,
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            currency=(prices[0][0]["currency"] if prices else "usd"),
        )
        trial_end = self._trial_end(params, now)
        if trial_end:
            sub.update(trial_start=now, trial_end=trial_end)
        self.store(sub)
        if customer.get("currency") is None:
            customer["currency"] = sub["currency"]
        self._emit("customer.subscription.created", sub)
        for n, (entry, price) in enumerate(
            zip(params.get("add_invoice_items") or [], extras, strict=True)
        ):
            self._add_invoice_item(customer, sub, entry, price, f"add_invoice_items[{n}]")
        invoice = self._first_invoice(sub, customer, items, trial=bool(trial_end))
        sub["latest_invoice"] = invoice["id"]
        if trial_end:
            sub["status"] = "trialing"
        elif invoice["status"] == "paid":
            sub["status"] = "active"
        else:
            sub["status"] = "incomplete"
        return sub

    @staticmethod
    def _trial_end(params, now):
        if params.get("trial_end") not in (None, "", "now"):
            return int(params["trial_end"])
        days = params.get("trial_period_days")
        return now + int(days) * 86400 if days else None

    def _price_of(self, entry, param):
        """(price, plan or None) an item names: a Price, or a Plan (answered as its price)."""
        if not isinstance(entry, dict):
            raise invalid("Invalid object", None, param)
        if entry.get("price"):
            return self.lookup(entry["price"], "price", f"{param}[price]"), None
        if entry.get("plan"):
            plan = self.lookup(entry["plan"], "plan", f"{param}[plan]")
            price = build(stripe.Price, {}, "")
            price.update(
                id=plan["id"], object="price", active=plan.get("active", True),
                currency=plan["currency"], unit_amount=plan.get("amount"),
                unit_amount_decimal=plan.get("amount_decimal"), product=plan.get("product"),
                type="recurring", recurring={"interval": plan.get("interval"),
                "interval_count": plan.get("interval_count") or 1, "meter": None,
                "trial_period_days": None, "usage_type": plan.get("usage_type") or "licensed"},
            )  # fmt: skip
            return price, plan
        raise invalid(f"Missing required param: {param}[price].", "parameter_missing",
                      f"{param}[price]")  # fmt: skip

    def _tax_rates(self, given, param):
        """The TaxRate objects a list of ids names (each must exist)."""
        if not isinstance(given, list):
            return None if given in (None, "") else [self.lookup(given, "tax_rate", param)]
        return [dict(self.lookup(rate, "tax_rate", f"{param}[{n}]"))
                for n, rate in enumerate(given)]  # fmt: skip

    def _add_invoice_item(self, customer, sub, entry, price, param):
        """An invoice item `add_invoice_items` makes for the subscription's first invoice."""
        quantity = int(entry.get("quantity") or 1)
        item = self.generic_create("invoiceitem", {
            "customer": customer["id"], "currency": sub["currency"],
            "amount": (price.get("unit_amount") or 0) * quantity,
            "description": f"{quantity} x {price['id']}",
            "tax_rates": [r["id"] for r in self._tax_rates(entry.get("tax_rates"),
                                                            f"{param}[tax_rates]") or []],
        })  # fmt: skip
        item.update(quantity=quantity, subscription=sub["id"])
        return item

    def _new_item(self, sub_id, entry, price, plan, tax_rates=None):
        now = self.now()
        interval = ((price.get("recurring") or {}).get("interval")) or "month"
        item = build(stripe.SubscriptionItem, {}, "")
        item.update(
            id=self.new_id("si"), object="subscription_item", created=now, price=dict(price),
            plan=dict(plan) if plan else None, quantity=int(entry.get("quantity") or 1),
            subscription=sub_id, metadata=dict(entry.get("metadata") or {}),
            current_period_start=now, current_period_end=now + INTERVAL_SECONDS[interval],
            tax_rates=tax_rates,
        )  # fmt: skip
        self.store(item)
        self._index_add(("subscription_item", "parent", sub_id), item["id"])
        return item

    def _first_invoice(self, sub, customer, items, trial):
        invoice = build(stripe.Invoice, {}, "/v1/invoices")
        invoice_id = self.new_id("in")
        defaults = sub.get("default_tax_rates") or []
        lines = []
        for item in items:
            amount = 0 if trial else (item["price"].get("unit_amount") or 0) * item["quantity"]
            line = self._invoice_line(invoice_id, sub, amount, item["tax_rates"] or defaults)
            line.update(
                quantity=item["quantity"], description=f"{item['quantity']} x {item['price']['id']}",
                period={"start": item["current_period_start"], "end": item["current_period_end"]},
                parent={"type": "subscription_item_details", "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None, "proration": False, "proration_details": None,
                            "subscription": sub["id"], "subscription_item": item["id"]}},
            )  # fmt: skip
            lines.append(line)
        for pending in self._pending_invoice_items(customer, sub["currency"]):
            line = self._invoice_line(
                invoice_id, sub, pending["amount"], pending.get("tax_rates") or defaults
            )
            line.update(
                quantity=pending.get("quantity") or 1, description=pending.get("description"),
                parent={"type": "invoice_item_details", "subscription_item_details": None,
                        "invoice_item_details": {
                            "invoice_item": pending["id"], "proration": False,
                            "proration_details": None, "subscription": sub["id"]}},
            )  # fmt: skip
            pending["invoice"] = invoice_id
            lines.append(line)
        subtotal = sum(line["amount"] for line in lines)
        taxes = [tax for line in lines for tax in line["taxes"]]
        exclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for t in taxes if t["tax_behavior"] == "inclusive")
        total = subtotal + exclusive
        # a customer's negative balance is a credit applied to the next invoice
        # (docs.stripe.com/billing/customer/balance)
        starting = customer.get("balance") or 0
        due = max(total + starting, 0) if starting < 0 else total
        ending = min(starting + total, 0) if starting < 0 else starting
        customer["balance"] = ending
        # finalized at once (charge_automatically): numbered from the customer's prefix and
        # sequence, "The suffix of the customer's next invoice number (for example, 0001)"
        # (docs.stripe.com/api/customers/object#customer_object-next_invoice_sequence)
        sequence = customer.get("next_invoice_sequence") or 1
        invoice["number"] = f"{customer.get('invoice_prefix') or 'FAKE'}-{sequence:04d}"
        customer["next_invoice_sequence"] = sequence + 1
        invoice.update(
            id=invoice_id, object="invoice", customer=customer["id"], currency=sub["currency"],
            amount_due=due, amount_remaining=due, amount_paid=0, subtotal=subtotal,
            subtotal_excluding_tax=subtotal - inclusive, total=total,
            total_excluding_tax=total - exclusive - inclusive,
            total_taxes=self._total_taxes(taxes), default_tax_rates=defaults,
            starting_balance=starting, ending_balance=ending,
            status="open", collection_method=sub["collection_method"], created=self.now(),
            billing_reason="subscription_create",
            lines={"object": "list", "data": lines, "has_more": False,
                   "url": f"/v1/invoices/{invoice_id}/lines"},
            parent={"type": "subscription_details", "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": sub["id"]}},
        )  # fmt: skip
        self.store(invoice)
        if due == 0 or self._pay_invoice(invoice, sub, customer):
            invoice.update(status="paid", amount_paid=due, amount_remaining=0)
            self._emit("invoice.paid", invoice)
        return invoice

    def _pending_invoice_items(self, customer, currency):
        """The customer's invoice items on no invoice yet, in the invoice's currency."""
        return [
            item
            for item in self.all("invoiceitem")
            if item.get("customer") == customer["id"]
            and item.get("invoice") is None
            and str(item.get("currency") or "").lower() == currency
        ]

    def _invoice_line(self, invoice_id, sub, amount, tax_rates):
        line = build(stripe.InvoiceLineItem, {}, "")
        line.update(
            id=self.new_id("il"), object="line_item", amount=amount, subtotal=amount,
            currency=sub["currency"], invoice=invoice_id, subscription=sub["id"],
            taxes=[line_tax(amount, rate) for rate in tax_rates],
        )  # fmt: skip
        self.objects[line["id"]] = line
        self._index_add(("line_item", "parent", invoice_id), line["id"])
        return line

    @staticmethod
    def _total_taxes(taxes):
        """The invoice's taxes, one entry per tax rate and behaviour."""
        totals = {}
        for tax in taxes:
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"])
            entry = totals.setdefault(key, {**tax, "amount": 0, "taxable_amount": 0})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]
        return list(totals.values())

    def _pay_invoice(self, invoice, sub, customer):
        """Charge the invoice from a default payment method or source; True once paid."""
        if sub["collection_method"] != "charge_automatically":
            return False
        method = sub.get("default_payment_method") or (customer["invoice_settings"] or {}).get(
            "default_payment_method"
        )
        money = {"amount": invoice["amount_due"], "currency": invoice["currency"],
                 "customer": customer["id"]}  # fmt: skip
        try:
            if method:
                self.create_payment_intent(
                    {**money, "payment_method": method, "confirm": True, "off_session": True}
                )
                return True
            if sub.get("default_source") or customer.get("default_source"):
                source = sub.get("default_source") or customer["default_source"]
                self.create_charge({**money, "source": source})
                return True
        except StripeError:
            return False  # incomplete: the customer pays later
        return False

    PREVIEWED = ("subscription", "subscription_details", "schedule", "schedule_details",
                 "invoice_items")  # fmt: skip

    def _check_invoice_preview(self, params):
        """POST /v1/invoices/create_preview for a customer with nothing to bill: 404
        `invoice_upcoming_none`, "There is no upcoming invoice on the specified customer to
        preview. Only customers with active subscriptions or pending invoice items have
        invoices that can be previewed" (docs.stripe.com/error-codes#invoice-upcoming-none);
        since 2025-03-31.basil a preview names what it previews ("You must pass specific
        subscription details (subscription, subscription_details.items, schedule,
        schedule_details.phases, or invoice_items) along with the customer parameter",
        docs.stripe.com/changelog/basil/2025-03-31/invoice-preview-api-deprecations). The
        preview itself is answered generically."""
        if any(params.get(name) for name in self.PREVIEWED) or not params.get("customer"):
            return
        customer = self.lookup(params["customer"], "customer", "customer")
        active = any(
            sub.get("customer") == customer["id"] and sub.get("status") != "canceled"
            for sub in self.all("subscription")
        )
        pending = any(
            item.get("customer") == customer["id"] and item.get("invoice") is None
            for item in self.all("invoiceitem")
        )
        if not active and not pending:
            raise invalid(
                f"No upcoming invoices for customer: {customer['id']}",
                "invoice_upcoming_none",
                status=404,
            )

    def update_subscription(self, params, id):
        sub = self.lookup(id, "subscription")
        entries = params.pop("items", None) or []
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise invalid("Invalid object", None, f"items[{n}]")
            if entry.get("id"):
                item = self.objects.get(entry["id"])
                if not item or item.get("subscription") != sub["id"]:
                    raise not_found("subscription_item", entry["id"], f"items[{n}][id]")
                if entry.get("deleted") in (True, "true"):
                    sub["items"]["data"] = [
                        i for i in sub["items"]["data"] if i["id"] != item["id"]
                    ]
                    continue
                if entry.get("quantity") is not None:
                    item["quantity"] = int(entry["quantity"])
                if entry.get("price") or entry.get("plan"):
                    price, plan = self._price_of(entry, f"items[{n}]")
                    item.update(price=dict(price), plan=dict(plan) if plan else None)
            else:
                price, plan = self._price_of(entry, f"items[{n}]")
                sub["items"]["data"].append(self._new_item(sub["id"], entry, price, plan))
        for name in ("cancel_at_period_end", "default_payment_method", "default_source",
                     "description", "collection_method", "days_until_due"):  # fmt: skip
            if name in params:
                sub[name] = params[name] if params[name] != "" else None
        if "metadata" in params:
            from fakes.stripe.params import apply_metadata

            sub["metadata"] = apply_metadata(sub.get("metadata"), params["metadata"])
        self._emit("customer.subscription.updated", sub)
        return sub

    def cancel_subscription(self, params, id):
        sub = self.lookup(id, "subscription")
        if sub["status"] == "canceled":
            raise invalid(
                f"No such subscription: '{id}'", "resource_missing", "id", status=404
            )  # Stripe: a canceled subscription cannot be canceled again
        now = self.now()
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        self._emit("customer.subscription.deleted", sub)
        return sub
