"""Signed-in devices: several at once, signed out one by one or all but this one,
expiry with sliding renewal, a cap per user, a password change, and push devices
that go with the session that registered them."""

from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient, APITestCase

from accounts.authentication import EXPIRED_TOKEN, INVALID_TOKEN, PASSWORD_CHANGED
from accounts.models import DeviceSession, PendingUnregistration
from notifications.models import Device
from notifications.testing import FakeNotificationServicesMixin

User = get_user_model()
STRONG = "correct-horse-battery-42"
FAST_HASHER = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])


class SignedInDevicesMixin:
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("dan", password=STRONG)

    def device(self, name="Dan's iPhone", platform="ios", username="dan", password=STRONG):
        """A client signed in as one device; .token and .session_id set on it."""
        client = APIClient()
        response = client.post(
            reverse("token"),
            {"username": username, "password": password, "device_name": name, "platform": platform},
        )
        self.assertEqual(response.status_code, 200, response.content)
        client.credentials(HTTP_AUTHORIZATION=f"Token {response.data['token']}")
        client.token, client.session_id = response.data["token"], response.data["session"]["id"]
        return client

    def assertSignedOut(self, client):
        response = client.get(reverse("me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "authentication_failed")
        return response.json()["error"]


@FAST_HASHER
class SessionTests(SignedInDevicesMixin, APITestCase):
    def test_signing_out_one_device_leaves_the_other_working(self):
        phone, tablet = self.device(), self.device("Dan's iPad")
        self.assertEqual(phone.delete(reverse("token")).status_code, 204)
        self.assertSignedOut(phone)
        self.assertEqual(tablet.get(reverse("me")).status_code, 200)
        self.assertEqual(list(DeviceSession.objects.values_list("name", flat=True)), ["Dan's iPad"])

    def test_sessions_list_the_callers_devices_and_mark_the_current_one(self):
        phone, _ = self.device(), self.device("Dan's Pixel", "android")
        other = User.objects.create_user("eve", password=STRONG)
        self.device("Eve's phone", username=other.username)
        response = phone.get(reverse("sessions"))
        self.assertEqual(response.status_code, 200)
        rows = response.json()
        self.assertEqual([r["name"] for r in rows], ["Dan's Pixel", "Dan's iPhone"])
        self.assertEqual([r["current"] for r in rows], [False, True])
        self.assertEqual(rows[1]["platform"], "ios")
        self.assertEqual(
            set(rows[0]), {"id", "name", "platform", "created", "last_used", "expires", "current"}
        )
        self.assertIsNotNone(rows[1]["last_used"])
        DeviceSession.objects.filter(name="Dan's Pixel").update(expiry=timezone.now())
        self.assertEqual(
            [r["name"] for r in phone.get(reverse("sessions")).json()], ["Dan's iPhone"]
        )

    def test_sign_out_another_device_by_id_but_not_someone_elses(self):
        phone, tablet = self.device(), self.device("Dan's iPad")
        User.objects.create_user("eve", password=STRONG)
        eve = self.device("Eve's phone", username="eve")
        self.assertEqual(
            phone.delete(reverse("session-detail", args=[eve.session_id])).status_code, 404
        )
        self.assertEqual(eve.get(reverse("me")).status_code, 200)
        response = phone.delete(reverse("session-detail", args=[tablet.session_id]))
        self.assertEqual(response.status_code, 204)
        self.assertSignedOut(tablet)
        self.assertEqual(phone.get(reverse("me")).status_code, 200)

    def test_sign_out_all_other_devices(self):
        phone, tablet, laptop = self.device(), self.device("iPad"), self.device("Mac", "web")
        response = phone.delete(reverse("sessions"))
        self.assertEqual(response.json(), {"signed_out": 2})
        self.assertSignedOut(tablet)
        self.assertSignedOut(laptop)
        self.assertEqual(phone.get(reverse("me")).status_code, 200)

    def test_an_expired_token_is_refused_with_a_clear_message(self):
        phone, tablet = self.device(), self.device("iPad")
        DeviceSession.objects.filter(pk=phone.session_id).update(
            expiry=timezone.now() - timedelta(seconds=1)
        )
        error = self.assertSignedOut(phone)
        self.assertEqual(error["type"], "authentication_error")
        self.assertEqual(error["message"], EXPIRED_TOKEN)
        self.assertFalse(DeviceSession.objects.filter(pk=phone.session_id).exists())
        self.assertEqual(tablet.get(reverse("me")).status_code, 200)

    def test_an_unknown_token_is_refused(self):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
        self.assertIn("Invalid token", self.assertSignedOut(client)["message"])
        client.credentials(HTTP_AUTHORIZATION="Token a b")
        self.assertSignedOut(client)

    def test_use_slides_the_expiry_at_most_once_a_minute(self):
        phone = self.device()
        soon = timezone.now() + timedelta(hours=1)
        DeviceSession.objects.filter(pk=phone.session_id).update(expiry=soon)
        self.assertEqual(phone.get(reverse("me")).status_code, 200)
        renewed = DeviceSession.objects.get(pk=phone.session_id)
        self.assertGreater(renewed.expiry, timezone.now() + timedelta(days=29))
        with self.assertNumQueries(1):  # the session lookup (with its user); no write
            phone.get(reverse("token"))
        self.assertEqual(DeviceSession.objects.get(pk=phone.session_id).expiry, renewed.expiry)

    @override_settings(REST_KNOX={"AUTO_REFRESH": True, "TOKEN_TTL": timedelta(days=30),
                                  "AUTO_REFRESH_MAX_TTL": timedelta(days=90),
                                  "TOKEN_MODEL": "accounts.DeviceSession"})  # fmt: skip
    def test_renewal_stops_at_the_maximum_lifetime(self):
        phone = self.device()
        created = timezone.now() - timedelta(days=80)
        DeviceSession.objects.filter(pk=phone.session_id).update(
            created=created, expiry=timezone.now() + timedelta(days=1)
        )
        response = phone.get(reverse("token"))
        self.assertEqual(response.status_code, 200)
        stored = DeviceSession.objects.get(pk=phone.session_id)
        self.assertEqual(stored.expiry, created + timedelta(days=90))

    def test_get_token_describes_this_session(self):
        phone = self.device()
        response = phone.get(reverse("token"))
        self.assertEqual(response.json()["id"], phone.session_id)
        self.assertTrue(response.json()["current"])

    @override_settings(AUTH_MAX_SESSIONS_PER_USER=2)
    def test_the_device_unused_the_longest_is_signed_out_over_the_cap(self):
        first, second = self.device("first"), self.device("second")
        DeviceSession.objects.filter(pk=second.session_id).update(
            last_used_at=timezone.now() - timedelta(days=3)
        )
        DeviceSession.objects.filter(pk=first.session_id).update(
            last_used_at=timezone.now() - timedelta(days=1)
        )
        third = self.device("third")
        self.assertSignedOut(second)
        self.assertEqual(first.get(reverse("me")).status_code, 200)
        self.assertEqual(third.get(reverse("me")).status_code, 200)
        self.assertEqual(DeviceSession.objects.filter(user=self.user).count(), 2)

    def test_a_password_change_leaves_only_this_device_signed_in(self):
        phone, tablet, laptop = self.device(), self.device("iPad"), self.device("Mac", "web")
        response = phone.post(
            reverse("password"),
            {"current_password": STRONG, "new_password": "another-horse-battery-77"},
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json(), {"signed_out": 2})
        self.assertSignedOut(tablet)
        self.assertSignedOut(laptop)
        self.assertEqual(phone.get(reverse("me")).status_code, 200)
        self.assertEqual(
            list(DeviceSession.objects.values_list("pk", flat=True)), [phone.session_id]
        )
        self.device(password="another-horse-battery-77")

    def test_a_password_change_needs_the_current_password_and_a_strong_new_one(self):
        phone, tablet = self.device(), self.device("iPad")
        wrong = phone.post(
            reverse("password"), {"current_password": "nope", "new_password": "another-horse-77"}
        )
        self.assertEqual(wrong.status_code, 400)
        self.assertEqual(
            wrong.json()["error"]["fields"]["current_password"][0]["code"], "wrong_password"
        )
        weak = phone.post(reverse("password"), {"current_password": STRONG, "new_password": "123"})
        self.assertEqual(weak.json()["error"]["param"], "new_password")
        self.assertEqual(tablet.get(reverse("me")).status_code, 200)
        self.user.refresh_from_db()
        self.assertTrue(self.user.check_password(STRONG))

    def test_no_stored_value_works_as_a_bearer_token(self):
        """Done-when: read every token table and try each stored value as a token."""
        for index in range(3):
            self.device(f"device {index}")
        tables = [
            DeviceSession._meta.db_table,
            "authtoken_token",
            *[t for t in connection.introspection.table_names() if t == "knox_authtoken"],
        ]
        values = []
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
                values.extend(str(v) for row in cursor.fetchall() for v in row if v is not None)
        self.assertGreater(len(values), 3 * 5)  # digest, key, created, expiry, name, ...
        client = APIClient()
        for value in values:
            client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
            response = client.get(reverse("me"))
            self.assertEqual(response.status_code, 401, f"{value!r} worked as a token")


@FAST_HASHER
class PushDeviceSessionTests(SignedInDevicesMixin, FakeNotificationServicesMixin, APITestCase):
    def register_push(self, client, push_token, platform="ios"):
        response = client.post(reverse("devices"), {"platform": platform, "push_token": push_token})
        self.assertEqual(response.status_code, 201, response.content)
        return Device.objects.get(pk=response.json()["id"])

    def test_signing_out_a_phone_unregisters_its_push_device(self):
        phone, tablet = self.device(), self.device("iPad")
        phone_push = self.register_push(phone, "apns-phone")
        tablet_push = self.register_push(tablet, "apns-tablet")
        self.assertEqual(phone_push.session_id, phone.session_id)
        self.assertEqual(set(self.push.devices), {phone_push.hwid, tablet_push.hwid})
        self.assertEqual(phone.delete(reverse("token")).status_code, 204)
        self.assertEqual(list(Device.objects.all()), [tablet_push])
        self.assertEqual(self.push.unregistered, [phone_push.hwid])
        self.assertEqual(set(self.push.devices), {tablet_push.hwid})
        unregister = [r for path, r in self.push.requests if path == "/unregisterDevice"]
        self.assertEqual(
            unregister,
            [
                {
                    "application": self.push.application,
                    "auth": self.push.auth,
                    "hwid": phone_push.hwid,
                }
            ],
        )
        self.assertFalse(PendingUnregistration.objects.exists())

    def test_a_password_change_unregisters_the_other_devices_pushes(self):
        phone, tablet = self.device(), self.device("iPad")
        phone_push = self.register_push(phone, "apns-phone")
        tablet_push = self.register_push(tablet, "apns-tablet", "ios")
        phone.post(
            reverse("password"), {"current_password": STRONG, "new_password": "new-horse-battery-9"}
        )
        self.assertEqual(self.push.unregistered, [tablet_push.hwid])
        self.assertEqual(list(Device.objects.all()), [phone_push])

    def test_an_expired_session_takes_its_push_device_with_it(self):
        phone = self.device()
        push = self.register_push(phone, "apns-phone")
        DeviceSession.objects.update(expiry=timezone.now() - timedelta(minutes=1))
        self.assertSignedOut(phone)
        self.assertFalse(Device.objects.exists())
        self.assertEqual(self.push.unregistered, [push.hwid])

    def test_purge_signs_out_expired_sessions_nobody_uses(self):
        phone, tablet = self.device(), self.device("iPad")
        push = self.register_push(phone, "apns-phone")
        DeviceSession.objects.filter(pk=phone.session_id).update(
            expiry=timezone.now() - timedelta(minutes=1)
        )
        call_command("purge_sessions", stdout=open("/dev/null", "w"))
        self.assertEqual(self.push.unregistered, [push.hwid])
        self.assertEqual(
            list(DeviceSession.objects.values_list("pk", flat=True)), [tablet.session_id]
        )

    def test_provider_down_still_signs_out_and_the_unregistration_is_retried(self):
        phone, tablet = self.device(), self.device("iPad")
        push = self.register_push(phone, "apns-phone")
        self.register_push(tablet, "apns-tablet")
        self.push.faults.add("POST /unregisterDevice", "api_error")
        with self.assertLogs("accounts.services", "WARNING"):
            self.assertEqual(phone.delete(reverse("token")).status_code, 204)
        self.assertSignedOut(phone)
        self.assertFalse(Device.objects.filter(pk=push.pk).exists())
        pending = PendingUnregistration.objects.get()
        self.assertEqual((pending.hwid, pending.attempts), (push.hwid, 1))
        self.assertIn(push.hwid, self.push.devices)  # the provider still has it, for now
        call_command("purge_sessions", stdout=open("/dev/null", "w"))
        self.assertNotIn(push.hwid, self.push.devices)
        self.assertFalse(PendingUnregistration.objects.exists())

    def test_a_device_the_provider_no_longer_knows_counts_as_unregistered(self):
        phone = self.device()
        push = self.register_push(phone, "apns-phone")
        del self.push.devices[push.hwid]
        with self.assertLogs("accounts.services", "INFO") as logs:
            self.assertEqual(phone.delete(reverse("token")).status_code, 204)
        self.assertIn("Device not found", logs.output[0])
        self.assertFalse(PendingUnregistration.objects.exists())


@FAST_HASHER
class DeviceRemovalTests(SignedInDevicesMixin, FakeNotificationServicesMixin, APITestCase):
    def test_deleting_a_push_device_unregisters_it_at_the_provider(self):
        phone = self.device()
        response = phone.post(reverse("devices"), {"platform": "ios", "push_token": "apns-1"})
        hwid = response.json()["hwid"]
        self.assertEqual(
            phone.delete(reverse("device-detail", args=[response.json()["id"]])).status_code, 204
        )
        self.assertFalse(Device.objects.exists())
        self.assertEqual(self.push.unregistered, [hwid])
        self.assertEqual(phone.get(reverse("me")).status_code, 200)  # still signed in

    def test_the_admin_sign_out_action_ends_sessions_with_their_pushes(self):
        phone = self.device()
        phone.post(reverse("devices"), {"platform": "ios", "push_token": "apns-1"})
        admin = User.objects.create_superuser("root", password=STRONG)
        browser = Client()
        browser.force_login(admin)
        response = browser.post(
            reverse("admin:accounts_devicesession_changelist"),
            {"action": "sign_out", "_selected_action": [phone.session_id]},
        )
        self.assertEqual(response.status_code, 302)
        self.assertSignedOut(phone)
        self.assertEqual(len(self.push.unregistered), 1)
        listing = browser.get(reverse("admin:accounts_devicesession_changelist"))
        self.assertEqual(listing.status_code, 200)


@FAST_HASHER
class PasswordChangedElsewhereTests(
    SignedInDevicesMixin, FakeNotificationServicesMixin, APITestCase
):
    """A password set by any path signs every device out (issue 19, #5a).

    Each session keeps the user's session auth hash (Django's HMAC of the password hash)
    from when it signed in; authentication refuses it once the password differs, and the
    user's save signs the devices out at once, push registrations included.
    """

    NEW = "another-horse-battery-77"

    def signed_in_devices(self):
        phone, tablet = self.device(), self.device("Dan's iPad")
        self.register_push(phone, "apns-phone")
        self.register_push(tablet, "apns-tablet")
        self.hwids = set(Device.objects.values_list("hwid", flat=True))
        return phone, tablet

    def register_push(self, client, push_token):
        response = client.post(reverse("devices"), {"platform": "ios", "push_token": push_token})
        self.assertEqual(response.status_code, 201, response.content)

    def assertAllSignedOut(self, *clients, message=INVALID_TOKEN):
        """Signed out: at once by the user's save (the session is gone: "Invalid token"),
        or on the device's next request when no save told us (PASSWORD_CHANGED)."""
        for client in clients:
            error = self.assertSignedOut(client)
            self.assertEqual(error["message"], message)
        self.assertFalse(DeviceSession.objects.filter(user=self.user).exists())
        self.assertFalse(Device.objects.exists())
        self.assertEqual(set(self.push.unregistered), self.hwids)
        self.device(password=self.NEW)  # signing in again works

    def test_the_admin_password_form_signs_every_device_out(self):
        phone, tablet = self.signed_in_devices()
        staff = Client()
        staff.force_login(User.objects.create_superuser("root", password=STRONG))
        with self.captureOnCommitCallbacks(execute=True):
            response = staff.post(
                reverse("admin:auth_user_password_change", args=[self.user.pk]),
                {"usable_password": "true", "password1": self.NEW, "password2": self.NEW},
            )
        self.assertEqual(response.status_code, 302, response.content)
        self.assertEqual(len(self.push.unregistered), 2)  # at once, not on the devices' next call
        self.assertAllSignedOut(phone, tablet)

    def test_manage_py_changepassword_signs_every_device_out(self):
        phone, tablet = self.signed_in_devices()
        with mock.patch("getpass.getpass", return_value=self.NEW):
            with self.captureOnCommitCallbacks(execute=True):
                call_command("changepassword", "dan", stdout=open("/dev/null", "w"))
        self.assertEqual(len(self.push.unregistered), 2)
        self.assertAllSignedOut(phone, tablet)

    def test_set_password_and_save_signs_every_device_out(self):
        phone, tablet = self.signed_in_devices()
        user = User.objects.get(pk=self.user.pk)
        user.set_password(self.NEW)
        with self.captureOnCommitCallbacks(execute=True):
            user.save()
        self.assertAllSignedOut(phone, tablet)

    def test_even_a_queryset_update_signs_devices_out_on_their_next_request(self):
        phone, tablet = self.signed_in_devices()
        User.objects.filter(pk=self.user.pk).update(password=make_password(self.NEW))  # no signal
        self.assertEqual(DeviceSession.objects.filter(user=self.user).count(), 2)
        self.assertAllSignedOut(phone, tablet, message=PASSWORD_CHANGED)

    def test_saving_the_user_without_a_new_password_keeps_the_devices(self):
        phone, tablet = self.signed_in_devices()
        with self.captureOnCommitCallbacks(execute=True):
            user = User.objects.get(pk=self.user.pk)
            user.email = "dan@example.com"
            user.save()
            user.save(update_fields=["last_login"])
        for client in (phone, tablet):
            self.assertEqual(client.get(reverse("me")).status_code, 200)
        self.assertEqual(self.push.unregistered, [])

    def test_the_apis_password_change_still_keeps_this_device(self):
        phone, tablet = self.signed_in_devices()
        with self.captureOnCommitCallbacks(execute=True):
            response = phone.post(
                reverse("password"), {"current_password": STRONG, "new_password": self.NEW}
            )
        self.assertEqual(response.json(), {"signed_out": 1})
        self.assertEqual(phone.get(reverse("me")).status_code, 200)
        self.assertEqual(self.assertSignedOut(tablet)["message"], INVALID_TOKEN)  # ended at once
        self.assertEqual(len(self.push.unregistered), 1)
        self.assertEqual(
            list(DeviceSession.objects.values_list("pk", flat=True)), [phone.session_id]
        )

    def test_a_rotated_secret_key_in_the_fallbacks_keeps_the_devices(self):
        phone = self.device()
        with override_settings(SECRET_KEY="r" * 60, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
            self.assertEqual(phone.get(reverse("me")).status_code, 200)
            session = DeviceSession.objects.get(pk=phone.session_id)
            self.assertEqual(session.auth_hash, self.user.get_session_auth_hash())  # re-keyed
            with override_settings(SECRET_KEY_FALLBACKS=[]):
                self.assertEqual(phone.get(reverse("me")).status_code, 200)
        with override_settings(SECRET_KEY="s" * 60):  # neither the key nor a fallback
            self.assertEqual(self.assertSignedOut(phone)["message"], PASSWORD_CHANGED)
