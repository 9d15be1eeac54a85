from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self):
        import stripe
        from django.conf import settings

        # The real client for this process; sandbox mode or a test swaps the provider beneath.
        stripe.api_key = settings.STRIPE_SECRET_KEY or None
        stripe.max_network_retries = settings.STRIPE_MAX_NETWORK_RETRIES
        stripe.default_http_client = stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        if settings.STRIPE_API_BASE:
            stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
