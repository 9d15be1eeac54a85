"""The quote PDF, `GET /v1/quotes/{quote}/pdf` (files.stripe.com), a byte stream: in process
and over loopback HTTP, raw and through stripe-python's `Quote.pdf()` stream.

docs.stripe.com/api/quotes/pdf: "Download the PDF for a finalized quote ... Returns: The PDF
file for the quote"; "open: The quote is finalized" (docs.stripe.com/quotes/overview)."""

import stripe
from django.test import SimpleTestCase

from tests.stripe_layers import TwoLayersMixin


class QuotePdfTests(TwoLayersMixin, SimpleTestCase):
    def quote(self, layer):
        customer = layer.ok("POST", "/v1/customers", {})
        price = layer.ok("POST", "/v1/prices", {"currency": "usd", "unit_amount": 1000,
                         "product_data": {"name": "Gold"}})  # fmt: skip
        return layer.ok("POST", "/v1/quotes", {
            "customer": customer["id"], "line_items": [{"price": price["id"], "quantity": 2}]})  # fmt: skip

    def test_a_finalized_quote_has_a_pdf_a_draft_none(self):
        for layer in self.layers():
            with self.subTest(layer.name):
                quote = self.quote(layer)
                draft = layer.call("GET", f"/v1/quotes/{quote['id']}/pdf")
                self.assertEqual((draft.status, draft.error["type"]),
                                 (400, "invalid_request_error"))  # fmt: skip
                layer.ok("POST", f"/v1/quotes/{quote['id']}/finalize")
                answer = layer.call("GET", f"/v1/quotes/{quote['id']}/pdf")
                self.assertEqual(answer.status, 200)
                self.assertEqual(answer.headers["Content-Type"], "application/pdf")
                self.assertTrue(answer.text.startswith("%PDF-1.4"))
                self.assertIn(quote["id"], answer.text)
                self.assertTrue(answer.text.rstrip().endswith("%%EOF"))
                missing = layer.call("GET", "/v1/quotes/qt_missing/pdf")
                self.assertEqual((missing.status, missing.error["code"]),
                                 (404, "resource_missing"))  # fmt: skip
                with layer.library():
                    stream = stripe.Quote.pdf(quote["id"])  # stripe-python's stream
                    self.assertTrue(stream.io.read().startswith(b"%PDF-1.4"))
                    with self.assertRaises(stripe.InvalidRequestError):
                        stripe.Quote.pdf("qt_missing")


class QuotePdfInStripeMockModeTests(TwoLayersMixin, SimpleTestCase):
    engine_options = {"stripe_mock": True}

    def test_a_quote_never_issued_answers_stripe_mocks_binary_fixture(self):
        """stripe-mock answers every binary endpoint with `Stripe binary response`, which
        stripe-python's own tests read back."""
        for layer in self.layers():
            with self.subTest(layer.name):
                answer = layer.call("GET", "/v1/quotes/qt_123/pdf")
                self.assertEqual((answer.status, answer.text), (200, "Stripe binary response"))
                with layer.library():
                    self.assertEqual(stripe.Quote.pdf("qt_123").io.read(),
                                     b"Stripe binary response")  # fmt: skip
