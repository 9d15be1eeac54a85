"""The sandbox's 3-D Secure page, as Stripe's test mode shows one.

A PaymentIntent that needs authentication points here (`next_action.redirect_to_url`
when the intent was confirmed with a `return_url`; otherwise open
/sandbox/3ds/<pi_...>/ by the intent's id). "Complete authentication" and "Fail
authentication" settle the intent in the fake Stripe, which emits the events Stripe
would; with webhook forwarding they settle the backend's payment too. The page
exists only while the fake Stripe runs in sandbox mode.
"""

import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods

from payments.testing import sandbox_stripe

UNSAFE_SCHEMES = {"javascript", "data", "vbscript", "file"}
ACTIONS = ("complete", "fail")  # the page's two buttons: anything else answers nothing
NO_ACTION = "Choose Complete or Fail authentication."


class ReturnRedirect(HttpResponseRedirect):
    """Stripe returns to any URL the integration gave, an app's own scheme included."""

    allowed_schemes = ["http", "https"]

    def __init__(self, url):
        scheme = urlsplit(url).scheme.lower()
        if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) and scheme not in UNSAFE_SCHEMES:
            self.allowed_schemes = [*self.allowed_schemes, scheme]
        super().__init__(url)


def with_query(url, params):
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def no_such_intent(intent_id):
    """The page for a link to an intent the sandbox does not have (a person reads it)."""
    from django.utils.html import format_html

    from conventions.pages import page, shown

    return page(
        "No such payment to authenticate",
        [
            format_html(
                "There is no PaymentIntent <code>{}</code> waiting for 3-D Secure here.",
                shown(intent_id),
            ),
            format_html(
                "The link is stale or mistyped, or the sandbox may have been reset since the "
                "payment began (<code>{}</code> empties it).",
                "manage.py sandbox reset",
            ),
            "Start the payment again from the app: it opens a fresh link.",
        ],
        status=404,
    )


def not_in_sandbox():
    from conventions.pages import page

    return page(
        "No 3-D Secure page here",
        [
            "The 3-D Secure test page exists in sandbox mode only (DEBUG on, no Stripe "
            "key). With a Stripe key, Stripe shows the bank's own page.",
            "Start the payment again from the app.",
        ],
        status=404,
    )


@require_http_methods(["GET", "POST"])
def three_d_secure(request, intent_id):
    fake = sandbox_stripe()
    if fake is None:
        return not_in_sandbox()
    intent = fake.intent(intent_id)
    if intent is None:
        return no_such_intent(intent_id)
    redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
    return_url = redirect.get("return_url")
    context = {"intent": intent, "amount": format_amount(intent), "return_url": return_url}
    if request.method == "GET":
        return render(request, "payments/sandbox_3ds.html", context)
    action = request.POST.get("action")
    if action not in ACTIONS:
        context["error"] = NO_ACTION
        return render(request, "payments/sandbox_3ds.html", context, status=400)
    if intent["status"] != "requires_action":
        context["error"] = f"This PaymentIntent is {intent['status']}: nothing to authenticate."
        return render(request, "payments/sandbox_3ds.html", context, status=409)
    settled = fake.complete_authentication(intent_id, succeed=action == "complete")
    outcome = "succeeded" if settled["status"] == "succeeded" else "failed"
    if return_url:
        return ReturnRedirect(
            with_query(
                return_url,
                {
                    "payment_intent": intent_id,
                    "payment_intent_client_secret": intent["client_secret"],
                    "redirect_status": outcome,
                },
            )
        )
    context.update(intent=settled, outcome=outcome)
    return render(request, "payments/sandbox_3ds.html", context)


class ThreeDSecurePages:
    """The same page as a handle() fake, for `manage.py fakeservices` (mounted at /sandbox)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def handle(self, method, path, query, body, headers):
        from urllib.parse import parse_qs

        from django.template.loader import render_to_string

        from fakes.contract import FakeResponse

        match = re.fullmatch(r"/3ds/([^/]+)/?", path)
        intent = self.sandbox.intent(match.group(1)) if match else None
        if intent is None:
            page = no_such_intent(match.group(1) if match else path)
            return FakeResponse(404, page.content, {"Content-Type": page["Content-Type"]})
        redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
        context = {"intent": intent, "amount": format_amount(intent)}
        status = 200
        if method.upper() == "POST":
            action = parse_qs(body.decode(errors="replace")).get("action", [""])[0]
            if action not in ACTIONS:
                context["error"] = NO_ACTION
                status = 400
            elif intent["status"] != "requires_action":
                context["error"] = f"This PaymentIntent is {intent['status']}."
                status = 409
            else:
                settled = self.sandbox.complete_authentication(
                    intent["id"], succeed=action == "complete"
                )
                outcome = "succeeded" if settled["status"] == "succeeded" else "failed"
                if redirect.get("return_url"):
                    location = with_query(
                        redirect["return_url"],
                        {
                            "payment_intent": intent["id"],
                            "payment_intent_client_secret": intent["client_secret"],
                            "redirect_status": outcome,
                        },
                    )
                    return FakeResponse(302, b"", {"Location": location})
                context.update(intent=settled, outcome=outcome)
        page = render_to_string("payments/sandbox_3ds.html", context).encode()
        return FakeResponse(status, page, {"Content-Type": "text/html; charset=utf-8"})


def format_amount(intent):
    from payments.currencies import ZERO_DECIMAL

    amount, currency = intent["amount"], intent["currency"]
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


urlpatterns = [
    path("3ds/<str:intent_id>/", three_d_secure, name="sandbox-3ds"),
]
