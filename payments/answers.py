"""What the API answers when Stripe declined, refused or did not answer a money request.

A request's outcome is (HTTP status, body, headers, final): a final answer is stored and
replayed to a retry with the same Idempotency-Key; a 503 is not (the retry asks again).
"""

import logging

from conventions.errors import ApiError, envelope

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


def provider_message(error):
    return getattr(error, "user_message", None) or str(error)


def refused(record, pk, code, message, param=None):
    """Stripe refused the request (invalid_request_error): a final 400 naming our record."""
    body = envelope("invalid_request_error", code, message, param)
    body["error"][record] = pk
    return 400, body, {}, True


def unavailable(code, message):
    """Stripe did not answer, or refused our credentials: 503, not final."""
    body = envelope("api_error", code, message)
    return 503, body, {"Retry-After": RETRY_AFTER_SECONDS}, False


def provider_unavailable(error, what):
    """The same as an exception, for calls with no stored answer (customers, cards, holds)."""
    logger.warning("Stripe unavailable for %s: %s", what, type(error).__name__)
    return ApiError(
        "The payment provider is not answering. Retry shortly; nothing will be duplicated.",
        code="payment_provider_unavailable",
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def stripe_refused(error):
    """Stripe refused a staff or setup request: a 400 in our envelope, in Stripe's words."""
    return ApiError(
        provider_message(error), code=error.code or "invalid_request", param=error.param
    )
