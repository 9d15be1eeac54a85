"""A quote's PDF: `GET /v1/quotes/{quote}/pdf`, a byte stream from files.stripe.com.

docs.stripe.com/api/quotes/pdf: "Download the PDF for a finalized quote" (`curl
https://files.stripe.com/v1/quotes/qt_.../pdf`), "Returns: The PDF file for the quote".
A quote is finalized once it leaves `draft` ("open: The quote is finalized and awaiting
action from the customer", docs.stripe.com/quotes/overview); a draft's PDF is refused (400;
the docs name no error code for it). The fake's PDF is a one-page PDF 1.4 document naming
the quote, its customer, status and total; stripe-python reads it as a stream
(`stripe.Quote.pdf(id).io.read()`). In the stripe-mock-compatible mode a quote the fake
never issued answers what stripe-mock answers for every binary endpoint,
`Stripe binary response`.
"""

from fakes.stripe.currencies import format_amount
from fakes.stripe.wire import invalid

STRIPE_MOCK_BINARY = b"Stripe binary response"


def pdf_document(lines):
    """A minimal, valid one-page PDF showing `lines` of text (Helvetica, 12 pt)."""

    def escape(text):
        text = text.encode("latin-1", "replace").decode("latin-1")
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    shown = "".join(f"({escape(line)}) Tj T* " for line in lines)
    content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown}ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    document = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return document


class Quotes:
    def quote_pdf(self, params, id):
        """The PDF of a finalized quote, as bytes (the pipeline answers application/pdf)."""
        if self.stripe_mock and id not in self.objects:
            return STRIPE_MOCK_BINARY
        quote = self.lookup(id, "quote")
        if self.stripe_mock and id in self._fixtures:
            return STRIPE_MOCK_BINARY
        if quote.get("status") == "draft":
            raise invalid(
                f"The quote {id} is a draft: only a finalized quote has a PDF. Finalize it "
                "first (POST /v1/quotes/{quote}/finalize)."
            )
        currency = quote.get("currency") or "usd"
        total = quote.get("amount_total") or 0
        return pdf_document([
            f"Quote {quote.get('number') or quote['id']}",
            f"Customer: {quote.get('customer') or '-'}",
            f"Status: {quote.get('status')}",
            f"Total: {format_amount(total, currency)}",
        ])  # fmt: skip
