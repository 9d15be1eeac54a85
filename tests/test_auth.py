"""Register and sign in: tokens per device, stored hashed; failures never tell users apart."""

from unittest import mock

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from accounts.models import DeviceSession

User = get_user_model()
STRONG = "correct-horse-battery-42"
# PBKDF2 at Django's cost takes ~0.3 s per hash; Django's docs suggest a fast hasher in tests.
FAST_HASHER = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])


@FAST_HASHER
class RegisterTests(APITestCase):
    def test_register_returns_a_token_that_authenticates(self):
        response = self.client.post(
            reverse("register"), {"username": "ada", "email": "ada@example.com", "password": STRONG}
        )
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(response.data["user"]["username"], "ada")
        self.assertNotIn("password", response.data["user"])
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {response.data['token']}")
        me = self.client.get(reverse("me"))
        self.assertEqual(me.status_code, 200)
        self.assertEqual(me.data["email"], "ada@example.com")

    def test_register_signs_in_the_device_it_names(self):
        response = self.client.post(
            reverse("register"),
            {
                "username": "ada",
                "password": STRONG,
                "device_name": "Ada's iPhone",
                "platform": "ios",
            },
        )
        self.assertEqual(response.status_code, 201)
        session = response.json()["session"]
        self.assertEqual((session["name"], session["platform"]), ("Ada's iPhone", "ios"))
        self.assertTrue(session["current"])
        self.assertEqual(response.json()["expires"], session["expires"])
        stored = DeviceSession.objects.get(user__username="ada")
        self.assertEqual((stored.pk, stored.name), (session["id"], "Ada's iPhone"))

    def test_weak_password_is_refused_by_django_validators(self):
        response = self.client.post(reverse("register"), {"username": "bob", "password": "123"})
        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(error["code"], "validation_error")
        self.assertEqual(error["param"], "password")
        codes = {e["code"] for e in error["fields"]["password"]}
        self.assertIn("password_too_short", codes)
        self.assertIn("password_entirely_numeric", codes)
        self.assertFalse(User.objects.filter(username="bob").exists())
        self.assertFalse(DeviceSession.objects.exists())

    def test_duplicate_username_is_refused(self):
        User.objects.create_user("carol", password=STRONG)
        response = self.client.post(reverse("register"), {"username": "Carol", "password": STRONG})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json()["error"]["fields"]["username"][0]["code"], "username_taken"
        )


@FAST_HASHER
class TokenTests(APITestCase):
    def setUp(self):
        self.user = User.objects.create_user("dan", password=STRONG)

    def sign_in(self, password=STRONG, username="dan", **extra):
        return self.client.post(
            reverse("token"), {"username": username, "password": password, **extra}
        )

    def test_obtain_token_with_good_credentials(self):
        response = self.sign_in(device_name="Dan's Pixel", platform="android")
        self.assertEqual(response.status_code, 200)
        token = response.data["token"]
        session = DeviceSession.objects.get(user=self.user)
        self.assertEqual((session.name, session.platform), ("Dan's Pixel", "android"))
        # Stored hashed: the row has knox's SHA-512 digest and a 15-character lookup prefix.
        self.assertNotEqual(session.digest, token)
        self.assertEqual(len(session.digest), 128)
        self.assertEqual(session.token_key, token[:15])
        self.assertNotIn(token, str(DeviceSession.objects.values().get()))
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        self.assertEqual(self.client.get(reverse("me")).data["username"], "dan")

    def test_each_sign_in_is_its_own_token(self):
        first, second = self.sign_in().data["token"], self.sign_in().data["token"]
        self.assertNotEqual(first, second)
        self.assertEqual(DeviceSession.objects.filter(user=self.user).count(), 2)

    def test_bad_credentials_are_a_400_with_a_stable_code(self):
        response = self.sign_in("nope")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "invalid_credentials")
        self.assertFalse(DeviceSession.objects.exists())

    def test_unknown_username_and_inactive_user_get_the_same_answer(self):
        User.objects.create_user("eve", password=STRONG, is_active=False)
        wrong = self.sign_in("nope").json()
        unknown = self.sign_in(STRONG, username="nobody").json()
        inactive = self.sign_in(STRONG, username="eve").json()
        self.assertEqual(wrong, unknown)
        self.assertEqual(wrong, inactive)
        self.assertEqual(wrong["error"]["code"], "invalid_credentials")

    def test_the_password_hasher_runs_for_unknown_usernames_too(self):
        # Django's ModelBackend hashes the password for a missing user (timing parity).
        with mock.patch(
            "django.contrib.auth.base_user.make_password", wraps=make_password
        ) as hashed:
            self.sign_in(STRONG, username="nobody")
        hashed.assert_called_once_with(STRONG)

    def test_a_stale_token_does_not_block_signing_in(self):
        self.client.credentials(HTTP_AUTHORIZATION="Token not-a-token-any-more")
        self.assertEqual(self.sign_in().status_code, 200)

    def test_revoke_deletes_the_token(self):
        token = self.sign_in().data["token"]
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        self.assertEqual(self.client.delete(reverse("token")).status_code, 204)
        self.assertFalse(DeviceSession.objects.filter(user=self.user).exists())
        response = self.client.get(reverse("me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "authentication_failed")

    def test_revoke_without_a_token_is_401(self):
        response = self.client.delete(reverse("token"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["type"], "authentication_error")

    def test_revoke_with_a_browser_session_is_401_not_authenticated(self):
        self.client.force_authenticate(self.user)
        response = self.client.delete(reverse("token"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "not_authenticated")

    def test_me_requires_authentication(self):
        response = self.client.get(reverse("me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "not_authenticated")

    def test_bad_platform_is_a_validation_error(self):
        response = self.sign_in(platform="palmos")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json()["error"]["fields"]["platform"][0]["code"], "invalid_choice"
        )

    @override_settings(API_THROTTLE_AUTH="3/min")
    def test_login_attempts_are_throttled(self):
        for _ in range(3):
            self.client.post(reverse("token"), {"username": "dan", "password": "wrong"})
        response = self.client.post(reverse("token"), {"username": "dan", "password": STRONG})
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json()["error"]["type"], "rate_limit_error")
        self.assertEqual(response.json()["error"]["code"], "throttled")
        self.assertIn("Retry-After", response)


@FAST_HASHER
@override_settings(API_THROTTLE_AUTH="1000/min", AUTH_THROTTLE_USERNAME="3/hour")
class UsernameThrottleTests(APITestCase):
    def setUp(self):
        User.objects.create_user("dan", password=STRONG)
        User.objects.create_user("fay", password=STRONG)

    def attempt(self, username, password, address):
        return self.client.post(
            reverse("token"), {"username": username, "password": password}, REMOTE_ADDR=address
        )

    def test_failures_from_many_addresses_lock_that_username_only(self):
        for index in range(3):
            self.assertEqual(self.attempt("dan", "wrong", f"10.0.0.{index}").status_code, 400)
        refused = self.attempt("DAN", STRONG, "10.0.0.99")  # any case, any address
        self.assertEqual(refused.status_code, 429)
        self.assertEqual(refused.json()["error"]["code"], "throttled")
        self.assertEqual(self.attempt("fay", STRONG, "10.0.0.1").status_code, 200)

    def test_unknown_usernames_are_throttled_exactly_like_known_ones(self):
        for username in ("dan", "ghost"):
            answers = [self.attempt(username, "wrong", "10.1.1.1").json() for _ in range(4)]
            self.assertEqual(answers[0]["error"]["code"], "invalid_credentials")
            self.assertEqual(answers[3]["error"]["code"], "throttled")
        self.assertFalse(User.objects.filter(username="ghost").exists())

    def test_successful_sign_ins_are_not_counted(self):
        for _ in range(5):
            self.assertEqual(self.attempt("dan", STRONG, "10.2.2.2").status_code, 200)


class SchemaTests(APITestCase):
    def test_the_schema_describes_the_mobile_sign_in_flow(self):
        response = self.client.get(
            reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json"
        )
        self.assertEqual(response.status_code, 200)
        schema = response.json()
        for path in ("/api/auth/token/", "/api/auth/sessions/", "/api/auth/sessions/{id}/",
                     "/api/auth/password/"):  # fmt: skip
            self.assertIn(path, schema["paths"])
        self.assertEqual(set(schema["paths"]["/api/auth/token/"]), {"get", "post", "delete"})
        token = schema["paths"]["/api/auth/token/"]
        self.assertNotIn("security", token["post"])  # signing in needs no token
        self.assertIn({"tokenAuth": []}, token["delete"]["security"])
        self.assertIn(
            "Renew", next(t for t in schema["tags"] if t["name"] == "auth")["description"]
        )
        scheme = schema["components"]["securitySchemes"]["tokenAuth"]
        self.assertEqual((scheme["in"], scheme["name"]), ("header", "Authorization"))


@FAST_HASHER
class AuthorizationSchemeTests(APITestCase):
    """`Authorization: Token` or `Bearer` (issue 19, #5b); any other scheme is named as such."""

    def setUp(self):
        User.objects.create_user("dan", password=STRONG)
        signed_in = self.client.post(reverse("token"), {"username": "dan", "password": STRONG})
        self.token = signed_in.json()["token"]

    def me(self, authorization):
        return self.client.get(reverse("me"), HTTP_AUTHORIZATION=authorization)

    def assertRefused(self, response, code, message=None):
        self.assertEqual(response.status_code, 401, response.content)
        error = response.json()["error"]
        self.assertEqual(error["code"], code)
        if message is not None:
            self.assertEqual(error["message"], message)
        self.assertEqual(response["WWW-Authenticate"], "Token")
        return error

    def test_bearer_is_accepted_as_token_is_in_any_case(self):
        for scheme in ("Token", "Bearer", "bearer", "BEARER", "token"):
            with self.subTest(scheme):
                response = self.me(f"{scheme} {self.token}")
                self.assertEqual(response.status_code, 200, response.content)
                self.assertEqual(response.json()["username"], "dan")

    def test_a_bearer_token_signs_this_device_out(self):
        self.assertEqual(
            self.client.delete(
                reverse("token"), HTTP_AUTHORIZATION=f"Bearer {self.token}"
            ).status_code,
            204,
        )
        self.assertRefused(self.me(f"Bearer {self.token}"), "authentication_failed")
        self.assertFalse(DeviceSession.objects.exists())

    def test_a_bad_bearer_token_is_refused_as_a_bad_token_is(self):
        self.assertRefused(
            self.me("Bearer " + "0" * 64), "authentication_failed", "Invalid token: sign in again."
        )
        self.assertRefused(self.me("Bearer"), "authentication_failed")
        self.assertRefused(self.me(f"Bearer {self.token} extra"), "authentication_failed")

    def test_another_scheme_is_a_401_naming_the_accepted_ones(self):
        for header in (f"Basic {self.token}", f"JWT {self.token}", "Digest a=b", self.token):
            with self.subTest(header):
                error = self.assertRefused(self.me(header), "authentication_failed")
                self.assertIn('"Authorization: Token <token>"', error["message"])
                self.assertIn('"Authorization: Bearer <token>"', error["message"])
                self.assertNotIn(self.token, error["message"])  # input is not echoed

    def test_no_credentials_is_still_not_authenticated(self):
        self.assertRefused(
            self.client.get(reverse("me")),
            "not_authenticated",
            "Authentication credentials were not provided.",
        )

    def test_another_scheme_changes_nothing_where_no_sign_in_is_needed(self):
        schema = self.client.get(reverse("schema"), HTTP_AUTHORIZATION="Basic c3RhZ2luZzpzZWNyZXQ=")
        self.assertEqual(schema.status_code, 200)
        browser = self.client_class()  # a staff browser behind HTTP Basic (e.g. staging)
        browser.force_login(User.objects.get(username="dan"))
        me = browser.get(reverse("me"), HTTP_AUTHORIZATION="Basic c3RhZ2luZzpzZWNyZXQ=")
        self.assertEqual(me.status_code, 200, me.content)

    def test_the_schema_describes_both_schemes(self):
        schema = self.client.get(
            reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json"
        ).json()
        schemes = schema["components"]["securitySchemes"]
        self.assertEqual(schemes["bearerAuth"]["type"], "http")
        self.assertEqual(schemes["bearerAuth"]["scheme"], "bearer")
        self.assertEqual(
            (schemes["tokenAuth"]["in"], schemes["tokenAuth"]["name"]), ("header", "Authorization")
        )
        me = schema["paths"]["/api/me/"]["get"]["security"]
        self.assertIn({"tokenAuth": []}, me)
        self.assertIn({"bearerAuth": []}, me)  # either one (OpenAPI: entries are alternatives)
