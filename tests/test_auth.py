from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.test import APITestCase

User = get_user_model()
STRONG = "correct-horse-battery-42"


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

    def test_duplicate_username_is_refused(self):
        User.objects.create_user("carol", password=STRONG)
        response = self.client.post(reverse("register"), {"username": "Carol", "password": STRONG})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json()["error"]["fields"]["username"][0]["code"], "username_taken"
        )


class TokenTests(APITestCase):
    def setUp(self):
        self.user = User.objects.create_user("dan", password=STRONG)

    def test_obtain_token_with_good_credentials(self):
        response = self.client.post(reverse("token"), {"username": "dan", "password": STRONG})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.data["token"], Token.objects.get(user=self.user).key)

    def test_bad_credentials_are_a_400_with_a_stable_code(self):
        response = self.client.post(reverse("token"), {"username": "dan", "password": "nope"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "invalid_credentials")

    def test_revoke_deletes_the_token(self):
        token = Token.objects.create(user=self.user)
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        self.assertEqual(self.client.delete(reverse("token")).status_code, 204)
        self.assertFalse(Token.objects.filter(user=self.user).exists())
        response = self.client.get(reverse("me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "authentication_failed")

    def test_revoke_without_a_token_is_401(self):
        response = self.client.delete(reverse("token"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["type"], "authentication_error")

    def test_me_requires_authentication(self):
        response = self.client.get(reverse("me"))
        self.assertEqual(response.status_code, 401)
        self.assertEqual(response.json()["error"]["code"], "not_authenticated")

    @override_settings(API_THROTTLE_AUTH="3/min")
    def test_login_attempts_are_throttled(self):
        for _ in range(3):
            self.client.post(reverse("token"), {"username": "dan", "password": "wrong"})
        response = self.client.post(reverse("token"), {"username": "dan", "password": STRONG})
        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json()["error"]["type"], "rate_limit_error")
        self.assertEqual(response.json()["error"]["code"], "throttled")
        self.assertIn("Retry-After", response)
