"""TODOS_API_URL shows what the client calls; /api/ 404 and 405 in the envelope; ports."""

import socket

import requests
import responses
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase, override_settings

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

    def test_pages_outside_the_api_keep_djangos_404(self):
        with override_settings(DEBUG=True):
            response = self.client.get("/nowhere/")
        self.assertEqual(response.status_code, 404)
        self.assertNotEqual(response["Content-Type"], "application/json")


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
