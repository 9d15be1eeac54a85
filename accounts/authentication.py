"""`Authorization: Token <token>` (or `Bearer <token>`): knox's hashed per-device tokens,
with clear refusals.

Knox's own `authenticate_credentials` deletes an expired token and answers
"Invalid token.", so the app cannot tell "sign in again" from "bad header". This
subclass keeps knox's lookup (by the token's first 15 characters, then a
constant-time digest comparison) and header parsing, and:

- refuses an expired token with its own message (still `authentication_failed`),
  signing that device out (its push registration too);
- refuses, and signs out the same way, a token issued before the user's password
  changed (accounts.models.DeviceSession.auth_hash);
- slides the expiry and records `last_used_at`, at most once per
  MIN_REFRESH_INTERVAL per token, so reads do not write on every request;
- takes the token after `Bearer` too (RFC 6750's scheme, what many mobile HTTP
  clients send), the schemes' names in any case (RFC 7235). A credential in any
  other scheme is left to the next authenticator (a browser session may stand
  behind an HTTP Basic proxy); if nothing signs the request in, the 401 names the
  schemes accepted (conventions.errors.exception_handler, via UNSUPPORTED_SCHEME) instead
  of "credentials were not provided".
"""

import binascii
from hmac import compare_digest

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from accounts import services

INVALID_TOKEN = "Invalid token: sign in again."
EXPIRED_TOKEN = "This device's session has expired: sign in again."
PASSWORD_CHANGED = "The password was changed: sign in again."
SCHEMES = ("Token", "Bearer")  # knox's AUTH_HEADER_PREFIX first: WWW-Authenticate names it
UNSUPPORTED_SCHEME = (
    "Unsupported Authorization scheme: send "
    + " or ".join(f'"Authorization: {scheme} <token>"' for scheme in SCHEMES)
    + "."
)


def sent_another_scheme(request):
    """True when the request carries an Authorization header none of SCHEMES reads."""
    header = get_authorization_header(request).split()
    return bool(header) and header[0].lower() not in {s.lower().encode() for s in SCHEMES}


class DeviceTokenAuthentication(TokenAuthentication):
    def explain_missing_credentials(self, request):
        """The 401 to answer instead of "credentials were not provided" when the request
        sent one in a scheme this API does not read (conventions.errors asks)."""
        if sent_another_scheme(request):
            return exceptions.AuthenticationFailed(UNSUPPORTED_SCHEME)
        return None

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or sent_another_scheme(request):
            return None  # for another authenticator, or nobody (see UNSUPPORTED_SCHEME)
        if len(header) == 1:
            raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
        if len(header) > 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header. Token string should not contain spaces."
            )  # knox's words
        return self.authenticate_credentials(header[1])

    def authenticate_credentials(self, token):
        try:
            token = token.decode("utf-8")
            digest = hash_token(token)
        except (UnicodeDecodeError, TypeError, binascii.Error) as error:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from error
        candidates = (
            get_token_model()
            .objects.filter(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user")
        )
        for session in candidates:
            if not compare_digest(digest, session.digest):
                continue
            if session.expiry is not None and session.expiry <= timezone.now():
                self.sign_out(session, EXPIRED_TOKEN)
            if not session.issued_for_current_password():
                self.sign_out(session, PASSWORD_CHANGED)
            self.renew_token(session)
            return self.validate_user(session)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)

    def sign_out(self, session, reason):
        services.end_sessions(get_token_model().objects.filter(pk=session.pk))
        raise exceptions.AuthenticationFailed(reason)

    def renew_token(self, session):
        now = timezone.now()
        interval = knox_settings.MIN_REFRESH_INTERVAL
        fields = []
        if knox_settings.AUTO_REFRESH and session.expiry is not None:
            new_expiry = now + knox_settings.TOKEN_TTL
            if knox_settings.AUTO_REFRESH_MAX_TTL is not None:
                new_expiry = min(new_expiry, session.created + knox_settings.AUTO_REFRESH_MAX_TTL)
            if (new_expiry - session.expiry).total_seconds() > interval:
                session.expiry = new_expiry
                fields.append("expiry")
        if (
            fields
            or session.last_used_at is None
            or (now - session.last_used_at).total_seconds() > interval
        ):
            session.last_used_at = now
            fields.append("last_used_at")
        if fields:
            session.save(update_fields=fields)
