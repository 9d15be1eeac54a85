"""EphemeralKeys: the short-lived key the mobile SDK uses to act for one Customer.

Stripe pins an ephemeral key to the API version of the SDK that will use it, so creation
needs an explicit `Stripe-Version` header (stripe-python: `EphemeralKey.create(...,
stripe_version=...)`, which refuses to run without it; stripe-php/-node PRs #353/#347:
"Creation is a bit of a special case, in that it requires Stripe-Version to be set
explicitly"). Keys expire an hour after creation (the `expires` Stripe answers).
"""

import re
import secrets

from fakes.stripe.wire import invalid, not_found

VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.\w+)?")
LIFETIME_SECONDS = 3600


class EphemeralKeys:
    def create_ephemeral_key(self, params):
        version = (self._request_headers or {}).get("Stripe-Version") or ""
        if not version:
            raise invalid(
                "Ephemeral keys must be created with an explicit API version: send the "
                "Stripe-Version header your mobile SDK reports."
            )
        if not VERSION.fullmatch(version):
            raise invalid(f"Invalid Stripe API version: {version}")
        if not params.get("customer"):
            # Stripe also takes issuing_card, nonce or verification_session; the fake knows
            # customers only.
            raise invalid("Missing required param: customer.", "parameter_missing", "customer")
        customer = self.lookup(params["customer"], "customer", "customer")
        now = self.now()
        key = {
            "id": self.new_id("ephkey"),
            "object": "ephemeral_key",
            "associated_objects": [{"id": customer["id"], "type": "customer"}],
            "created": now,
            "expires": now + LIFETIME_SECONDS,
            "livemode": False,
            "secret": "ek_test_" + secrets.token_urlsafe(24),
        }
        self._ephemeral_versions[key["id"]] = version
        return self.store(key)

    def delete_ephemeral_key(self, params, id):
        """Invalidates the key at once; the answer is the key, now expired."""
        key = self.objects.get(id)
        if key is None and self.stripe_mock:
            key = self.fixture("ephemeral_key", id)
        if key is None or key.get("object") != "ephemeral_key":
            raise not_found("ephemeral_key", id)
        key["expires"] = min(key["expires"], self.now())
        return key

    def ephemeral_key_customer(self, secret):
        """The customer a live ephemeral key secret acts for, or None (harness/auth use)."""
        now = self.now()
        for key in self.all("ephemeral_key"):
            # bytes: compare_digest refuses a str outside ASCII (a hostile Bearer header)
            given = secret.encode("utf-8", "replace")
            if secrets.compare_digest(key["secret"].encode(), given) and key["expires"] > now:
                return key["associated_objects"][0]["id"]
        return None
