"""Balance transactions and the balance, derived from the charges and refunds that moved money.

A charge gets a balance transaction when its money moves (at capture), a refund when it is
created (docs.stripe.com/api/balance_transactions/object): amount, fee, net, currency,
status. They are built when read (expand[]=balance_transaction, GET
/v1/balance_transactions/{id}, GET /v1/balance) from the object they belong to, so a stored
charge costs one id more, not one object more. The fee is Stripe's standard card pricing,
2.9% + 30 cents (stripe.com/pricing; the fake applies it in every currency, with the fixed
part in that currency's minor units: 30 for two decimals, 300 for three, 0 for none). Funds
are pending for two days, then available; a card that bypasses the pending balance
(4000000000000077) is available at once (docs.stripe.com/testing#available-balance).
"""

from fakes.stripe.currencies import decimals
from fakes.stripe.wire import as_int, invalid, not_found

PENDING_SECONDS = 2 * 86400
FIXED_FEE = {0: 0, 2: 30, 3: 300}


def card_fee(amount, currency):
    return min(amount, round(amount * 0.029) + FIXED_FEE[decimals(currency)])


class Balance:
    def _reset_balance(self):
        self._balance_sources = {}  # txn id -> the charge or refund it belongs to

    def _new_txn(self, source_id):
        txn = self.new_id("txn")
        self._balance_sources[txn] = source_id
        return txn

    def balance_transaction(self, txn_id):
        """The balance transaction with this id, built from its charge or refund (or None)."""
        source_id = self._balance_sources.get(txn_id) if isinstance(txn_id, str) else None
        source = self.objects.get(source_id) if source_id else None
        if source is None or not self._visible(source_id):  # (another account's: connect.py)
            return None
        currency = source["currency"]
        if source["object"] == "charge":
            amount = source["amount_captured"]
            fee = card_fee(amount, currency)
            kind, category, description = "charge", "charge", source.get("description")
            bypass = self.test_card(source["payment_method"]).bypass_pending
            available_on = source["created"] + (0 if bypass else PENDING_SECONDS)
        else:
            amount, fee = -source["amount"], 0
            kind, category, description = "refund", "refund", "REFUND FOR CHARGE"
            available_on = source["created"]
        fee_details = (
            [{"amount": fee, "application": None, "currency": currency,
              "description": "Stripe processing fees", "type": "stripe_fee"}]
            if fee else []
        )  # fmt: skip
        return {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": amount,
            "available_on": available_on,
            "balance_type": "payments",
            "created": source["created"],
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": fee_details,
            "net": amount - fee,
            "reporting_category": category,
            "source": source["id"],
            "status": "available" if available_on <= self.now() else "pending",
            "type": kind,
        }

    def retrieve_balance_transaction(self, params, id):
        found = self.balance_transaction(id)
        if found is None and self.stripe_mock:
            found = self.fixture("balance_transaction", id)
        if found is None:
            raise not_found("balance_transaction", id)
        return found

    def list_balance_transactions(self, params):
        """Newest first; `source`, `type`, `currency` filters, `limit`, `starting_after`."""
        limit = as_int(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid("This value must be less than or equal to 100.", None, "limit")
        ids = list(reversed(self._balance_sources))
        after = params.get("starting_after")
        if after:
            if after not in self._balance_sources:
                raise not_found("balance_transaction", after, "starting_after")
            ids = ids[ids.index(after) + 1 :]
        wanted = {k: params[k] for k in ("source", "type", "currency") if params.get(k)}
        data = []
        for txn in ids:
            found = self.balance_transaction(txn)
            if found and all(found[k] == v for k, v in wanted.items()):
                data.append(found)
                if len(data) > limit:
                    break
        return {"object": "list", "data": data[:limit], "has_more": len(data) > limit,
                "url": "/v1/balance_transactions"}  # fmt: skip

    def retrieve_balance(self, params):
        """GET /v1/balance: what the balance transactions add up to, per currency and status
        (docs.stripe.com/api/balance/balance_object); `usd` 0 before any."""
        totals = {}  # (status, currency) -> amount
        for txn in self._balance_sources:
            found = self.balance_transaction(txn)
            if found:
                key = (found["status"], found["currency"])
                totals[key] = totals.get(key, 0) + found["net"]
        currencies = sorted({c for _, c in totals}) or ["usd"]

        def funds(status):
            return [{"amount": totals.get((status, c), 0), "currency": c,
                     "source_types": {"card": totals.get((status, c), 0)}} for c in currencies]  # fmt: skip

        return {"object": "balance", "available": funds("available"), "livemode": False,
                "pending": funds("pending")}  # fmt: skip
