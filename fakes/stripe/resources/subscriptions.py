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
Renewals, proration and dunning are not modelled.
"""

import time

import stripe

from fakes.stripe.generic import build
from fakes.stripe.wire import StripeError, invalid, not_found

MONTH = 30 * 86400
INTERVAL_SECONDS = {"day": 86400, "week": 7 * 86400, "month": MONTH, "year": 365 * 86400}


class Subscriptions:
    def create_subscription(self, params):
        customer = self.lookup(params.get("customer"), "customer", "customer")
        entries = params.get("items") or []
        prices = [self._price_of(entry, f"items[{n}]") for n, entry in enumerate(entries)]
        sub_id = self.new_id("sub")
        now = int(time.time())
        rest = {k: v for k, v in params.items() if k != "items"}
        sub = build(stripe.Subscription, rest, "/v1/subscriptions")
        items = [
            self._new_item(sub_id, entry, price, plan)
            for entry, (price, plan) in zip(entries, prices, strict=True)
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
        self._emit("customer.subscription.created", sub)
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

    def _new_item(self, sub_id, entry, price, plan):
        now = int(time.time())
        interval = ((price.get("recurring") or {}).get("interval")) or "month"
        item = build(stripe.SubscriptionItem, {}, "")
        item.update(
            id=self.new_id("si"), object="subscription_item", created=now, price=dict(price),
            plan=dict(plan) if plan else None, quantity=int(entry.get("quantity") or 1),
            subscription=sub_id, metadata=dict(entry.get("metadata") or {}),
            current_period_start=now, current_period_end=now + INTERVAL_SECONDS[interval],
        )  # fmt: skip
        self.store(item)
        self._index_add(("subscription_item", "parent", sub_id), item["id"])
        return item

    def _first_invoice(self, sub, customer, items, trial):
        total = (
            0 if trial else sum((i["price"].get("unit_amount") or 0) * i["quantity"] for i in items)
        )
        invoice = build(stripe.Invoice, {}, "/v1/invoices")
        invoice_id = self.new_id("in")
        lines = []
        for item in items:
            line = build(stripe.InvoiceLineItem, {}, "")
            amount = 0 if trial else (item["price"].get("unit_amount") or 0) * item["quantity"]
            line.update(
                id=self.new_id("il"), object="line_item", amount=amount, subtotal=amount,
                currency=sub["currency"], quantity=item["quantity"], invoice=invoice_id,
                subscription=sub["id"], description=f"{item['quantity']} x {item['price']['id']}",
                period={"start": item["current_period_start"], "end": item["current_period_end"]},
            )  # fmt: skip
            lines.append(line)
            self.objects[line["id"]] = line
            self._index_add(("line_item", "parent", invoice_id), line["id"])
        # a customer's negative balance is a credit applied to the next invoice
        # (docs.stripe.com/billing/customer/balance)
        starting = customer.get("balance") or 0
        due = max(total + starting, 0) if starting < 0 else total
        ending = min(starting + total, 0) if starting < 0 else starting
        customer["balance"] = ending
        invoice.update(
            id=invoice_id, object="invoice", customer=customer["id"], currency=sub["currency"],
            amount_due=due, amount_remaining=due, amount_paid=0, subtotal=total, total=total,
            starting_balance=starting, ending_balance=ending,
            status="open", collection_method=sub["collection_method"], created=int(time.time()),
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
        now = int(time.time())
        sub.update(status="canceled", canceled_at=now, ended_at=now)
        self._emit("customer.subscription.deleted", sub)
        return sub
