"""The 3-D Secure page, hosted by the service as Stripe hosts the issuer's test page.

A PaymentIntent that needs authentication and was confirmed with a `return_url` points
here (`next_action.redirect_to_url.url`); without one, open /sandbox/3ds/<pi_...>/ by the
intent's id (SetupIntents too). "Complete authentication" or "Fail authentication"
settles the intent in the fake Stripe, which emits the events Stripe would (forwarded to
the backend's webhook). Then, as Stripe does, the browser goes back to the return_url
with `payment_intent`, `payment_intent_client_secret` and `redirect_status`: a 302 for
an http(s) URL; for an app's own scheme (`myapp://paid`) the page says it is done and
shows the link back (a tap opens the app), since a browser redirected to a scheme it
cannot open would go on showing the old status.
"""

import html
import re
from string import Template
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from fakes.contract import FakeResponse
from fakes.service.service import ControlError
from fakes.stripe.currencies import ZERO_DECIMAL

UNSAFE_SCHEMES = {"javascript", "data", "vbscript", "file"}
ACTIONS = ("complete", "fail")
NO_ACTION = "Choose Complete or Fail authentication."

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>3D Secure 2 Test Page</title>
  <style>
    body { font-family: system-ui, sans-serif; background: #f6f9fc; margin: 0; }
    main { max-width: 28rem; margin: 3rem auto; background: #fff; padding: 2rem;
           border-radius: 8px; box-shadow: 0 2px 8px rgba(0,0,0,.1); }
    h1 { font-size: 1.25rem; margin-top: 0; }
    .note { color: #697386; font-size: .9rem; }
    dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; }
    dt { color: #697386; }
    form { display: flex; gap: 1rem; margin-top: 1.5rem; }
    button { flex: 1; padding: .75rem; border: 0; border-radius: 4px; font-size: 1rem;
             cursor: pointer; color: #fff; }
    .complete { background: #635bff; }
    .fail { background: #df1b41; }
    .outcome { font-weight: bold; }
    a.return { display: block; margin-top: 1rem; word-break: break-all; }
  </style>
</head>
<body>
<main>
  <h1>3D Secure 2 Test Page</h1>
  <p class="note">This is the sandbox's stand-in for the card issuer's authentication
    page (Stripe test mode shows one like it). No real bank is involved.</p>
  <dl>
    <dt>$what</dt><dd id="intent">$id</dd>
    $amount
    <dt>Status</dt><dd id="status">$status</dd>
  </dl>
  $body
</main>
</body>
</html>
""")

STALE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No such payment to authenticate</title>
<style>body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; }</style>
</head><body><h1>No such payment to authenticate</h1>
<p>There is no PaymentIntent <code>$id</code> waiting for 3-D Secure here.</p>
<p>The link is stale or mistyped, or the sandbox may have been reset since the payment
began (<code>manage.py sandbox reset</code> empties it).</p>
<p>Start the payment again from the app: it opens a fresh link.</p></body></html>
""")

BUTTONS = """<form method="post">
      <button class="complete" type="submit" name="action" value="complete" id="complete">Complete authentication</button>
      <button class="fail" type="submit" name="action" value="fail" id="fail">Fail authentication</button>
    </form>"""


def format_amount(intent):
    amount, currency = intent.get("amount"), intent.get("currency") or ""
    if amount is None:
        return None
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


def with_query(url, params):
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def scheme_of(url):
    scheme = urlsplit(url).scheme.lower()
    return scheme if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else ""


def html_page(status, text):
    return FakeResponse(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


class ThreeDSecurePages:
    """handle() for /sandbox: GET /3ds/<intent>/ shows the page, POST action= answers it."""

    def __init__(self, service):
        self.service = service

    def handle(self, method, path, query, body, headers):
        match = re.fullmatch(r"/3ds/([^/]+)/?", path)
        intent = self.service.intent(match.group(1)) if match else None
        if intent is None:
            shown = match.group(1) if match else path
            return html_page(404, STALE.substitute(id=html.escape(shown[:200])))
        if method.upper() == "GET":
            return self.render(200, intent)
        if method.upper() != "POST":
            answer = html_page(405, "<!doctype html><p>GET or POST.</p>")
            answer.headers["Allow"] = "GET, POST"
            return answer
        action = parse_qs(body.decode(errors="replace")).get("action", [""])[0]
        if action not in ACTIONS:
            return self.render(400, intent, error=NO_ACTION)
        if intent["status"] != "requires_action":
            return self.render(
                409,
                intent,
                error=f"This {self.label(intent)} is {intent['status']}: nothing to authenticate.",
            )
        redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
        return_url = redirect.get("return_url")
        try:
            settled = self.service.authenticate(intent["id"], succeed=action == "complete")
        except ControlError as refused:
            return self.render(409, intent, error=refused.message)
        outcome = "succeeded" if settled["status"] == "succeeded" else "failed"
        if return_url and scheme_of(return_url) not in UNSAFE_SCHEMES | {""}:
            prefix = "payment_intent" if intent["object"] == "payment_intent" else "setup_intent"
            location = with_query(
                return_url,
                {
                    prefix: intent["id"],
                    f"{prefix}_client_secret": intent["client_secret"],
                    "redirect_status": outcome,
                },
            )
            if scheme_of(return_url) in ("http", "https"):
                return FakeResponse(302, b"", {"Location": location})
            return self.render(200, settled, outcome=outcome, back=location)
        return self.render(200, settled, outcome=outcome)

    @staticmethod
    def label(intent):
        return "PaymentIntent" if intent["object"] == "payment_intent" else "SetupIntent"

    def render(self, status, intent, error=None, outcome=None, back=None):
        parts = []
        if error:
            parts.append(f'<p class="outcome" id="error">{html.escape(error)}</p>')
        if outcome:
            done = "completed" if outcome == "succeeded" else "failed"
            parts.append(f'<p class="outcome" id="outcome">Authentication {done}.</p>')
            if back:
                link = html.escape(back, quote=True)
                parts.append(
                    f'<p id="returning">Back to the app: <a class="return" id="return" '
                    f'href="{link}">{html.escape(back)}</a></p>'
                )
        elif intent["status"] == "requires_action":
            parts.append(BUTTONS)
        amount = format_amount(intent)
        return html_page(
            status,
            PAGE.substitute(
                what="Payment" if intent["object"] == "payment_intent" else "Setup",
                id=html.escape(intent["id"]),
                amount=f"<dt>Amount</dt><dd>{html.escape(amount)}</dd>" if amount else "",
                status=html.escape(intent["status"]),
                body="\n  ".join(parts),
            ),
        )
