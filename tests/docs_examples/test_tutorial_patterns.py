"""The mocking tutorials' patterns (docs/testing-harness.md, "The tutorials' patterns").

The seeds in shared/seeds/: a hand-written MockToken over stripe.Token, MagicMock on
PushService.create_message, `responses` on raw HTTP, a mock server in a thread, and a
contract test against the real provider that is skipped offline. Each works as the
tutorial wrote it, on top of the default fakes.
"""

# --8<-- [start:mock-server-imports]
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

# --8<-- [end:mock-server-imports]
from unittest import mock
from unittest.mock import MagicMock

import responses
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase, override_settings

from backend.testing import real_network
from notifications import todos
from notifications.models import NotificationLog
from notifications.push import PushService
from notifications.tasks import send_reminder
from notifications.testing import fake_todos

User = get_user_model()


# --8<-- [start:magicmock-push]
class ReminderTest(TestCase):
    def test_send_reminder_calls_create_message(self):
        user = User.objects.create_user("ada")
        todo = {"userId": user.id, "id": 1, "title": "Make the bed", "completed": False}
        with (
            fake_todos() as api,
            mock.patch.object(PushService, "create_message", MagicMock()) as create_message,
        ):
            api.todos = [todo]
            send_reminder()
        log = NotificationLog.objects.get(user=user)
        create_message.assert_called_with(
            [
                {
                    "text": "You have 1 unfinished todo",
                    "conditions": ["UserID", "EQ", user.id],
                    "transaction_id": str(log.transaction_id),  # Pushwoosh's de-duplication key
                }
            ]
        )


# --8<-- [end:magicmock-push]


# --8<-- [start:responses-raw-http]
@override_settings(PUSH_API_URL="https://push.example.com/json/1.3/")
class RawHttpTest(SimpleTestCase):
    @responses.activate  # while it is active, the default fakes step aside
    def test_create_message_posts_to_the_provider(self):
        url = settings.PUSH_API_URL + "createMessage"
        responses.add(responses.POST, url, status=200, json={
            "status_code": 200, "status_message": "OK", "response": {"Messages": ["ABC-1"]}})  # fmt: skip

        codes = PushService().create_message(
            [{"text": "My push", "conditions": ["UserID", "EQ", 1]}]
        )

        self.assertEqual(codes, ["ABC-1"])
        self.assertEqual(responses.calls[0].request.url, url)


# --8<-- [end:responses-raw-http]


# --8<-- [start:mock-server-in-a-thread]
class MockTodoServer(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'[{"userId": 1, "id": 1, "title": "Make the bed", "completed": false}]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep the test output quiet
        pass


def get_free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MockServerTest(SimpleTestCase):
    def setUp(self):
        self.server = HTTPServer(("127.0.0.1", get_free_port()), MockTodoServer)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def test_the_todo_client_reads_the_mock_server(self):
        url = f"http://127.0.0.1:{self.server.server_port}/"
        with override_settings(TODOS_API_URL=url):  # loopback: the network guard allows it
            uncompleted = todos.get_uncompleted_todos()
        self.assertEqual([todo["title"] for todo in uncompleted], ["Make the bed"])


# --8<-- [end:mock-server-in-a-thread]


# --8<-- [start:contract-test]
@real_network("compares the fake todo API's keys with JSONPlaceholder's")
class TodoContractTest(SimpleTestCase):
    """Skipped unless REAL_NETWORK_TESTS=1: the one place a test may leave the machine."""

    def test_a_todo_has_the_same_keys_as_the_real_one(self):
        with override_settings(TODOS_API_URL=todos.PUBLIC_TODOS_API):
            real = todos.get_todos().json()[0]
        with fake_todos():
            fake = todos.get_todos().json()[0]
        self.assertEqual(set(real), set(fake))


# --8<-- [end:contract-test]
