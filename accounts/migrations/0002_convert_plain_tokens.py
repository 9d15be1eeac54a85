"""Convert DRF authtoken's plain-text tokens into hashed device sessions, then empty its table.

Each `authtoken_token.key` becomes a DeviceSession holding only the key's SHA-512
digest (knox's hash: sha512 over the token's UTF-8 bytes) and its first 15
characters (knox's lookup key). The app keeps sending the same
`Authorization: Token <key>`, so nobody is signed out by the upgrade; the
converted session then expires like any other (AUTH_TOKEN_TTL_DAYS after its
last use). The user's push devices were all registered with that one token, so
they are tied to its session: signing it out unregisters them. Not reversible:
the plain keys are gone, which is the point.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TOKEN_KEY_LENGTH = 15  # knox.settings.CONSTANTS.TOKEN_KEY_LENGTH
LEGACY_NAME = "Signed in before the upgrade"


def convert(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    DeviceSession = apps.get_model("accounts", "DeviceSession")
    now = timezone.now()
    expiry = now + timedelta(days=getattr(settings, "AUTH_TOKEN_TTL_DAYS", 30))
    sessions = [
        DeviceSession(
            digest=hashlib.sha512(token.key.encode("utf-8")).hexdigest(),
            token_key=token.key[:TOKEN_KEY_LENGTH],
            user_id=token.user_id,
            expiry=expiry,
            name=LEGACY_NAME,
            platform="other",
            last_used_at=now,
        )
        for token in Token.objects.all().iterator()
    ]
    DeviceSession.objects.bulk_create(sessions, batch_size=500)
    Device = apps.get_model("notifications", "Device")
    for session in DeviceSession.objects.filter(name=LEGACY_NAME, user__devices__isnull=False).distinct():
        Device.objects.filter(user_id=session.user_id, session__isnull=True).update(session=session)
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_device_sessions"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("notifications", "0002_device_session"),
    ]

    operations = [migrations.RunPython(convert, migrations.RunPython.noop)]
