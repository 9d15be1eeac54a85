"""TODOS_API_URL shows what the client calls; /api/ 404 and 405 in the envelope, pages for
people elsewhere; ports; the quick start's staff account."""

import os
import socket
from unittest import mock

import requests
import responses
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from backend.fakeservices import start_fake_services
from notifications.models import NotificationLog
from notifications.tasks import send_reminder

User = get_user_model()


class TodosUrlTests(TestCase):
    def test_the_setting_defaults_to_the_public_api(self):
        self.assertEqual(settings.PUBLIC_TODOS_API_URL, "https://jsonplaceholder.typicode.com/")
        with self.settings(TODOS_API_URL=settings.PUBLIC_TODOS_API_URL):
            from notifications import todos

            self.assertEqual(todos.base_url(), settings.PUBLIC_TODOS_API_URL)

    @responses.activate
    def test_a_responses_test_built_on_the_setting_intercepts_send_reminder(self):
        user = User.objects.create_user("ada")
        responses.add(
            responses.GET,
            settings.TODOS_API_URL + "todos",
            json=[{"userId": user.id, "id": 1, "title": "bed", "completed": False}],
        )
        responses.add(
            responses.POST,
            settings.PUSH_API_URL + "createMessage",
            json={"status_code": 200, "status_message": "OK", "response": {"Messages": ["C-1"]}},
        )
        summary = send_reminder()
        self.assertEqual(summary["sent"], 1, summary)
        self.assertEqual(responses.calls[0].request.url, settings.TODOS_API_URL + "todos")
        self.assertEqual(NotificationLog.objects.get().text, "You have 1 unfinished todo")


class ApiErrorPagesTests(TestCase):
    def assert_envelope(self, response, status, code):
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json()["error"]["code"], code)

    def test_unknown_api_paths_are_json_404_with_debug_on_and_off(self):
        for debug in (True, False):
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                self.assert_envelope(self.client.get("/api/no-such-thing/"), 404, "not_found")

    def test_wrong_methods_are_json_405_with_debug_on(self):
        with override_settings(DEBUG=True):
            response = self.client.put("/api/health/")
        self.assert_envelope(response, 405, "method_not_allowed")

    def test_a_missing_slash_still_redirects(self):
        with override_settings(DEBUG=True):
            self.assertEqual(self.client.get("/api/health").status_code, 301)

    def test_a_write_without_the_slash_is_a_json_404_that_says_so(self):
        """Not Django's HTML RuntimeError page (DEBUG on), nor a 301 a client follows with
        a GET (DEBUG off: a POST to /api/payments would have listed the payments)."""
        for debug in (True, False):
            for method in ("post", "put", "patch", "delete"):
                with self.subTest(debug=debug, method=method), override_settings(DEBUG=debug):
                    response = getattr(self.client, method)(
                        "/api/payments", {"amount": 500}, content_type="application/json"
                    )
                    self.assert_envelope(response, 404, "not_found")
                    self.assertIn("(/api/payments/)", response.json()["error"]["message"])
        self.assert_envelope(self.client.post("/api/no-such-thing"), 404, "not_found")


class StaticFilesTests(TestCase):
    def test_the_admins_and_swagger_uis_files_come_from_the_app_itself(self):
        """Under gunicorn (`sandbox serve`) nothing else serves them (WhiteNoise: before
        `collectstatic`, straight from the apps' folders; docs/dependencies.md)."""
        for path in (
            "/static/admin/css/base.css",
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        ):
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 200)
                self.assertGreater(len(b"".join(response.streaming_content)), 1000)
        self.assertEqual(self.client.get("/static/admin/no-such-file.css").status_code, 404)


class PagesOutsideTheApiTests(TestCase):
    """A person outside /api/ gets a small page saying what to do, never Django's debug
    404 listing the URL patterns; the browser's /favicon.ico gets an icon (issue 19, #6)."""

    DEBUG_PAGE = "Django tried these URL patterns"

    def assertPage(self, response, *says):
        self.assertEqual(response.status_code, 404, response.content)
        self.assertEqual(response["Content-Type"], "text/html; charset=utf-8")
        self.assertNotContains(response, self.DEBUG_PAGE, status_code=404)
        self.assertNotContains(response, "URLconf", status_code=404)
        self.assertLess(len(response.content), 4096)
        for text in says:
            self.assertContains(response, text, status_code=404)

    def test_an_unknown_page_points_at_the_api_and_its_docs_with_debug_on_and_off(self):
        for debug in (True, False):
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                for method in ("get", "post"):
                    response = getattr(self.client, method)("/nowhere/")
                    self.assertPage(response, "/nowhere/", 'href="/api/docs/"', "/api/")

    def test_the_page_escapes_what_the_url_holds(self):
        with override_settings(DEBUG=True):
            response = self.client.get("/<script>alert(1)</script>/")
        self.assertPage(response, "&lt;script&gt;")
        self.assertNotContains(response, "<script>", status_code=404)

    def test_a_missing_slash_still_redirects_outside_the_api(self):
        with override_settings(DEBUG=True):
            self.assertEqual(self.client.get("/admin").status_code, 301)

    def test_the_favicon_is_a_real_icon_with_debug_on_and_off(self):
        for debug in (True, False):
            with self.subTest(debug=debug), override_settings(DEBUG=debug):
                response = self.client.get("/favicon.ico")
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response["Content-Type"], "image/x-icon")
                self.assertIn("max-age", response["Cache-Control"])
                icon = response.content
                # ICONDIR: reserved 0, type 1 (icon), one image; the image a PNG
                self.assertEqual(icon[:6], b"\x00\x00\x01\x00\x01\x00")
                self.assertIn(b"\x89PNG", icon)
                self.assertLess(len(icon), 1024)

    def test_api_paths_keep_the_json_envelope(self):
        with override_settings(DEBUG=True):
            response = self.client.get("/api/sandbox/3ds/pi_nope/")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")


class FakeServicesPortTests(SimpleTestCase):
    def test_start_fake_services_on_a_given_port(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = start_fake_services(port=port)
        try:
            self.assertEqual(server.url, f"http://127.0.0.1:{port}")
            answer = requests.get(f"http://localhost:{port}/todos-api/todos/1", timeout=5)
            self.assertEqual(answer.json()["id"], 1)
        finally:
            server.stop()


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class StaffAccountTests(TestCase):
    """The quick start's way to a $STAFF_TOKEN (docs/quickstart.md): createsuperuser, then sign in (issue 19, #6)."""

    def test_createsuperuser_then_sign_in_reaches_the_staff_endpoints(self):
        password = "staff-horse-battery-42"
        with mock.patch.dict(os.environ, {"DJANGO_SUPERUSER_PASSWORD": password}):
            call_command(
                "createsuperuser", "--noinput", "--username", "staff",
                "--email", "staff@example.com", stdout=open(os.devnull, "w"),
            )  # fmt: skip
        client = APIClient()
        signed_in = client.post(
            reverse("token"), {"username": "staff", "password": password, "device_name": "curl"}
        )
        self.assertEqual(signed_in.status_code, 200, signed_in.content)
        client.credentials(HTTP_AUTHORIZATION=f"Token {signed_in.json()['token']}")
        # staff get past the permission check (404: no such payment), others do not (403)
        self.assertEqual(client.post(reverse("payment-capture", args=[999])).status_code, 404)
        User.objects.create_user("ada", password=password)
        other = APIClient()
        token = other.post(reverse("token"), {"username": "ada", "password": password}).json()
        other.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")
        self.assertEqual(other.post(reverse("payment-capture", args=[999])).status_code, 403)
