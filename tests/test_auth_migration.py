"""The upgrade from DRF authtoken's plain tokens: nobody is signed out, nothing usable is left."""

import hashlib

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase
from django.urls import reverse
from knox.crypto import hash_token
from rest_framework.test import APIClient

BEFORE = [
    ("accounts", "0001_device_sessions"),
    ("authtoken", "0004_alter_tokenproxy_options"),
    ("notifications", "0002_device_session"),
]
AFTER = [("accounts", "0002_convert_plain_tokens")]


class ConvertPlainTokensTests(TransactionTestCase):
    def migrate(self, targets):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    def tearDown(self):
        self.migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        super().tearDown()

    def test_plain_tokens_become_hashed_sessions_that_still_sign_in(self):
        old = self.migrate(BEFORE)
        User, Token = old.get_model("auth", "User"), old.get_model("authtoken", "Token")
        ada = User.objects.create(username="ada")
        key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # DRF's 40 hex characters
        Token.objects.create(key=key, user=ada)
        Device = old.get_model("notifications", "Device")
        phone = Device.objects.create(user=ada, platform="ios", push_token="apns-1", hwid="hw-1")
        bob = User.objects.create(username="bob")  # no token: nothing to convert
        Device.objects.create(user=bob, platform="ios", push_token="apns-2", hwid="hw-2")

        new = self.migrate(AFTER)
        self.assertFalse(new.get_model("authtoken", "Token").objects.exists())
        session = new.get_model("accounts", "DeviceSession").objects.get()
        self.assertEqual(session.user_id, ada.pk)
        self.assertEqual(session.digest, hash_token(key))  # the migration hashes as knox does
        self.assertNotIn(key, [session.digest, session.token_key, session.name])
        self.assertIsNotNone(session.expiry)
        devices = new.get_model("notifications", "Device").objects
        self.assertEqual(devices.get(pk=phone.pk).session_id, session.pk)
        self.assertIsNone(devices.get(hwid="hw-2").session_id)

        self.migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.get(reverse("me"))
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["username"], "ada")
        sessions = client.get(reverse("sessions")).json()
        self.assertEqual([s["name"] for s in sessions], ["Signed in before the upgrade"])

    def test_knox_hash_is_sha512_of_the_token(self):
        self.assertEqual(hash_token("abc"), hashlib.sha512(b"abc").hexdigest())
