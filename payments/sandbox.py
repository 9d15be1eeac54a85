"""Sandbox mode only: what Stripe's servers and the mobile SDK would do, for curl.

In sandbox mode the fake Stripe lives inside the server process, so the app (or curl) reaches
it here: `/api/sandbox/stripe/v1/...` is the fake's API (confirm a PaymentIntent with the
publishable key and its client secret, as the SDK does), `/api/sandbox/3ds/<intent>/` is the
issuer's 3-D Secure page, and every event the fake emits is applied as a webhook delivery
would be (sandbox has no webhook secret and no public URL). Outside sandbox mode every
route answers 404.
"""

import json

import stripe
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers

from conventions.errors import envelope, validation_envelope
from conventions.inputs import loads_strict
from payments import testing

PAGE = """<!doctype html><title>Sandbox 3-D Secure</title>
<h1>3-D Secure for {id}</h1><p>The fake issuer asks: approve this {what}?</p>
<form method="post"><button name="result" value="succeed">Complete authentication</button>
<button name="result" value="fail">Fail authentication</button></form>"""


class ChallengeAnswerSerializer(serializers.Serializer):
    """The issuer's question needs an answer: no `result` is not an approval."""

    result = serializers.ChoiceField(
        choices=["succeed", "fail"],
        error_messages={
            "required": "Answer the challenge: succeed or fail.",
            "null": "Answer the challenge: succeed or fail.",
            "invalid_choice": "Choose succeed or fail.",  # never echoes the input
        },
    )


def challenge_answer(request):
    """The validated `result` of a form or JSON POST, or the JsonResponse refusing it."""
    if request.content_type == "application/json":
        try:
            data = loads_strict(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            message = str(error) if isinstance(error, ValueError) else "The body is not UTF-8."
            body = envelope("invalid_request_error", "parse_error", message)
            return None, JsonResponse(body, status=400)
    else:
        data = request.POST
    answer = ChallengeAnswerSerializer(data=data)
    if not answer.is_valid():
        return None, JsonResponse(validation_envelope(answer.errors), status=400)
    return answer.validated_data["result"], None


def in_sandbox_state(fn, write=True):
    """fn() with the sandbox's shared Stripe state loaded (and saved after, if it writes)."""
    wrapper = testing.sandbox_stripe()
    return fn() if wrapper is None else wrapper.call(fn, write=write)


def _not_sandbox():
    body = envelope("invalid_request_error", "not_found", "Only in sandbox mode.")
    return JsonResponse(body, status=404)


def deliver_events():
    """Apply every event the sandbox's fake emitted and nobody received (once each)."""
    from payments import events
    from payments.models import StripeEvent

    engine = testing.shared_engine
    applied = 0
    for event in engine.events:
        if event["id"] in engine.delivered:
            continue
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(event_id=event["id"], type=event["type"])
                # the object the webhook view gets from stripe.Webhook.construct_event
                received = stripe.Event.construct_from(json.loads(json.dumps(event)), None)
                record.payment = events.apply_event(received)
                record.save(update_fields=["payment"])
                applied += 1
        except IntegrityError:
            pass
        engine.delivered.add(event["id"])
        event["pending_webhooks"] = 0
    return applied


@csrf_exempt
def stripe_api(request, path):
    """The fake Stripe's API, as api.stripe.com answers the mobile SDK."""
    if not testing.is_installed():
        return _not_sandbox()
    headers = {name: value for name, value in request.headers.items()}
    # Through the sandbox's own Stripe (shared state, forwarded webhooks) when it runs.
    fake = testing.sandbox_stripe() or testing.shared_engine
    answer = fake.handle(
        request.method, "/" + path, request.META.get("QUERY_STRING", ""), request.body, headers
    )
    in_sandbox_state(deliver_events)
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@csrf_exempt
def three_d_secure(request, intent_id):
    """The issuer's challenge page: GET shows it, POST result=succeed|fail answers it.

    The answer comes as a form field or a JSON body; without one the intent is left
    as it is (400 `validation_error`, param `result`).
    """
    if not testing.is_installed():
        return _not_sandbox()
    return in_sandbox_state(lambda: challenge(request, intent_id), write=request.method == "POST")


def challenge(request, intent_id):
    engine = testing.shared_engine
    found = engine.objects.get(intent_id)
    if not found or found.get("object") not in ("payment_intent", "setup_intent"):
        body = envelope("invalid_request_error", "not_found", f"No such intent: {intent_id}")
        return JsonResponse(body, status=404)
    if request.method == "GET":
        return HttpResponse(
            PAGE.format(id=escape(intent_id), what=found["object"].replace("_", " "))
        )
    if request.method != "POST":
        return JsonResponse(
            envelope("invalid_request_error", "method_not_allowed", "GET or POST."), status=405
        )
    result, refused = challenge_answer(request)
    if refused is not None:
        return refused
    complete = (
        engine.complete_authentication
        if found["object"] == "payment_intent"
        else engine.complete_setup_authentication
    )
    try:
        intent = complete(intent_id, succeed=result == "succeed")
    except ValueError as error:
        body = envelope("invalid_request_error", "intent_unexpected_state", str(error))
        return JsonResponse(body, status=400)
    deliver_events()
    return JsonResponse({"id": intent["id"], "status": intent["status"]})
