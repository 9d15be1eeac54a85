"""Stripe's currency table (fakes/stripe/currencies.py, from docs.stripe.com/currencies):
every presentment currency, minor units, three-decimal rounding, ISK in whole units,
the published minimums and the eight-digit maximum, for charges, PaymentIntents, refunds.
Each check runs in process and over loopback HTTP."""

import stripe
from django.test import SimpleTestCase

from fakes.stripe import currencies
from tests.stripe_layers import TwoLayersMixin


class CurrencyTableTests(SimpleTestCase):
    def test_the_table(self):
        self.assertGreaterEqual(len(currencies.PRESENTMENT), 135)  # "more than 135"
        self.assertLessEqual(currencies.ZERO_DECIMAL | currencies.THREE_DECIMAL,
                             currencies.PRESENTMENT)  # fmt: skip
        self.assertLessEqual(set(currencies.MINIMUM_AMOUNTS), currencies.PRESENTMENT)
        self.assertEqual(currencies.decimals("jpy"), 0)
        self.assertEqual(currencies.decimals("kwd"), 3)
        self.assertEqual(currencies.decimals("isk"), 2)
        self.assertEqual(currencies.format_amount(50, "usd"), "$0.50 usd")
        self.assertEqual(currencies.format_amount(1230, "kwd"), "1.230 kwd")
        self.assertEqual(currencies.format_amount(50, "jpy"), "¥50 jpy")


class CurrencyRuleTests(TwoLayersMixin, SimpleTestCase):
    def charge(self, layer, amount, currency, **extra):
        return layer.call("POST", "/v1/charges", {"amount": amount, "currency": currency,
                                                  "source": "tok_visa", **extra})  # fmt: skip

    def test_inr_kwd_and_every_currency_of_the_table_are_accepted(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                for currency in ("inr", "kwd", "bhd", "jod", "omr", "tnd", "krw", "xof", "isk"):
                    answer = self.charge(layer, 100000, currency)
                    self.assertEqual(answer.status, 200, (currency, answer.text))
                    self.assertEqual(answer.json["currency"], currency)
                unknown = self.charge(layer, 1000, "xyz")
                self.assertEqual((unknown.status, unknown.error["param"]), (400, "currency"))
        for currency in sorted(currencies.PRESENTMENT):  # the whole table, in process
            engine = layer.engine
            charge = engine.create_charge({"amount": 100000, "currency": currency,
                                           "source": "tok_visa"})  # fmt: skip
            self.assertEqual(charge["status"], "succeeded", currency)

    def test_three_decimal_amounts_end_in_zero(self):
        # "these API calls require the least-significant (last) digit to be 0"
        # (docs.stripe.com/currencies#three-decimal): charges, PaymentIntents, refunds
        for layer in self.layers():
            with self.subTest(layer.name):
                bad = self.charge(layer, 5124, "kwd")
                self.assertEqual((bad.status, bad.error["code"], bad.error["param"]),
                                 (400, "invalid_charge_amount", "amount"))  # fmt: skip
                intent = layer.call("POST", "/v1/payment_intents",
                                    {"amount": 5125, "currency": "bhd"})  # fmt: skip
                self.assertEqual(intent.error["code"], "invalid_charge_amount")
                charge = self.charge(layer, 5120, "kwd").json
                refund = layer.call("POST", "/v1/refunds", {"charge": charge["id"], "amount": 1001})
                self.assertEqual(refund.error["code"], "invalid_charge_amount")
                layer.ok("POST", "/v1/refunds", {"charge": charge["id"], "amount": 1000})

    def test_isk_in_whole_kronur_and_zero_decimal_jpy(self):
        # support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds
        for layer in self.layers():
            with self.subTest(layer.name):
                self.assertEqual(
                    self.charge(layer, 4010, "isk").error["code"], "invalid_charge_amount"
                )
                self.assertEqual(self.charge(layer, 4000, "isk").status, 200)
                self.assertEqual(self.charge(layer, 50, "jpy").status, 200)
                small = self.charge(layer, 49, "jpy").error
                self.assertEqual((small["code"], small["message"]),
                                 ("amount_too_small", "Amount must be at least ¥50 jpy"))  # fmt: skip

    def test_published_minimums_and_the_maximum(self):
        # docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
        for layer in self.layers():
            with self.subTest(layer.name):
                for currency, minimum in currencies.MINIMUM_AMOUNTS.items():
                    below = self.charge(layer, minimum - 1, currency)
                    self.assertEqual(below.error.get("code"), "amount_too_small", currency)
                    self.assertEqual(self.charge(layer, minimum, currency).status, 200, currency)
                self.assertEqual(self.charge(layer, 175 * 100 - 1, "huf").error["code"],
                                 "amount_too_small")  # fmt: skip
                big = self.charge(layer, 100000000, "usd").error
                self.assertEqual((big["code"], big["message"]),
                                 ("amount_too_large", "Amount must be no more than $999,999.99 usd"))  # fmt: skip
                with layer.library(), self.assertRaises(stripe.InvalidRequestError) as caught:
                    stripe.PaymentIntent.create(amount=29, currency="gbp")
                self.assertEqual(caught.exception.code, "amount_too_small")
