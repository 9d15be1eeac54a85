"""Sessions remember the password they were issued against (issue 19: a password set
outside the API signs devices out).

Existing sessions get the hash of their user's password as it is now, so nobody is
signed out by the upgrade; from then on another password refuses them.
"""

from django.contrib.auth import get_user_model
from django.db import migrations, models


def issue_for_current_passwords(apps, schema_editor):
    DeviceSession = apps.get_model("accounts", "DeviceSession")
    # The user model's own get_session_auth_hash (an HMAC of the password hash with
    # SECRET_KEY), on an unsaved instance: the historical model has no methods, and the
    # hash must be exactly what authentication compares.
    user_model = get_user_model()
    hashes = {}
    sessions = DeviceSession.objects.select_related("user").only("pk", "user__password")
    for session in sessions.iterator():
        password = session.user.password
        if password not in hashes:
            hashes[password] = user_model(password=password).get_session_auth_hash()
        DeviceSession.objects.filter(pk=session.pk).update(auth_hash=hashes[password])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_convert_plain_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="devicesession",
            name="auth_hash",
            field=models.CharField(
                default="",
                editable=False,
                help_text="The user's session auth hash when this device signed in (or when the "
                "API's password change kept it signed in): another password signs it out.",
                max_length=128,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(issue_for_current_passwords, migrations.RunPython.noop),
    ]
