from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and signed-in devices"

    def ready(self):
        from django.conf import settings
        from django.db.models.signals import post_save

        from accounts import (
            schema,  # noqa: F401  (registers the OpenAPI auth scheme)
            services,
        )

        post_save.connect(
            services.sign_out_stale_sessions,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="accounts.sign_out_stale_sessions",
        )
