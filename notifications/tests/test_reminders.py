import io
import json
from datetime import timedelta
from unittest import mock
from unittest.mock import MagicMock, Mock, patch

import requests
import responses
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APITestCase

from fakes.server import FakeServer
from notifications import todos
from notifications.models import Device, NotificationLog
from notifications.push import (
    PushArgumentError,
    PushConfigurationError,
    PushService,
    PushUnavailable,
)
from notifications.tasks import send_reminder
from notifications.testing import (
    FakeNotificationServicesMixin,
    FakePushProvider,
    FakeTodoApi,
    fake_push,
)
from notifications.todos import get_todos, get_uncompleted_todos

User = get_user_model()


def make_users(*ids):
    return [User.objects.create(id=i, username=f"user{i}") for i in ids]


class SeedShapeTests(FakeNotificationServicesMixin, TestCase):
    def test_send_reminder_calls_create_message(self):
        (user,) = make_users(1)
        self.todo_api.todos = [{"userId": 1, "id": 1, "title": "Make the bed", "completed": False}]
        with mock.patch.object(
            PushService, "create_message", MagicMock(name="create_message")
        ) as create:
            send_reminder()
        log = NotificationLog.objects.get()
        create.assert_called_with(
            [
                {
                    "text": "You have 1 unfinished todo",
                    "conditions": ["UserID", "EQ", user.id],
                    "transaction_id": str(log.transaction_id),
                }
            ]
        )

    @override_settings(
        PUSH_API_URL="https://push.example.com/json/1.3/",
        PUSH_APPLICATION="APP-1",
        PUSH_AUTH_KEY="key",
    )
    @responses.activate
    def test_create_message_with_responses(self):
        responses.add(responses.POST, settings.PUSH_API_URL + "createMessage", status=200,
                      json={"status_code": 200, "status_message": "OK", "response": {"Messages": ["ABC-1"]}})  # fmt: skip
        codes = PushService().create_message(
            [{"text": "My push", "conditions": ["UserID", "EQ", 1]}]
        )
        self.assertEqual(codes, ["ABC-1"])
        request = responses.calls[0].request
        assert request.url == settings.PUSH_API_URL + "createMessage"
        self.assertEqual(json.loads(request.body), {"request": {"application": "APP-1", "auth": "key", "notifications": [
            {"send_date": "now", "content": "My push", "conditions": [["UserID", "EQ", 1]]}]}})  # fmt: skip


class ReminderTests(FakeNotificationServicesMixin, TestCase):
    def setUp(self):
        super().setUp()
        self.users = make_users(1, 2, 3)
        User.objects.filter(id=3).update(is_active=False)
        self.todo_api.todos = [
            {"userId": 1, "id": 1, "title": "a", "completed": False},
            {"userId": 1, "id": 2, "title": "b", "completed": False},
            {"userId": 1, "id": 3, "title": "c", "completed": True},
            {"userId": 2, "id": 4, "title": "d", "completed": True},
            {"userId": 3, "id": 5, "title": "e", "completed": False},
            {"userId": 99, "id": 6, "title": "not ours", "completed": False},
        ]

    def test_each_user_with_unfinished_todos_gets_one_push(self):
        summary = send_reminder()
        self.assertEqual(summary["sent"], 1)
        self.assertEqual(self.push.received_by(1), ["You have 2 unfinished todos"])
        self.assertEqual(self.push.received_by(2), [], "all done: nothing")
        self.assertEqual(self.push.received_by(3), [], "inactive users are skipped")
        self.assertEqual(self.push.received_by(99), [], "not our user")
        log = NotificationLog.objects.get()
        self.assertEqual(
            (log.status, log.attempts, log.message_code), ("sent", 1, self.push.outbox[0]["code"])
        )

    def test_a_second_run_the_same_day_sends_nothing(self):
        send_reminder()
        send_reminder()
        self.assertEqual(len(self.push.outbox), 1)

    @override_settings(PUSH_BATCH_SIZE=2)
    def test_large_runs_are_batched(self):
        make_users(4, 5, 6)
        self.todo_api.todos = [
            {"userId": i, "id": i, "title": "x", "completed": False} for i in (1, 2, 4, 5, 6)
        ]
        send_reminder()
        creates = [r for r in self.push.requests if r[0] == "/createMessage"]
        self.assertEqual([len(r[1]["notifications"]) for r in creates], [2, 2, 1])

    def test_provider_down_keeps_reminders_pending_and_retry_sends_once(self):
        self.push.faults.add("POST /createMessage", "api_error")
        with self.assertLogs("notifications.tasks", "WARNING"):
            summary = send_reminder()
        self.assertEqual((summary["sent"], summary["pending"]), (0, 1))
        self.assertEqual(NotificationLog.objects.get().status, "pending")
        out = io.StringIO()
        call_command("retry_notifications", stdout=out)
        self.assertIn("sent 0", out.getvalue(), "not before its backoff has elapsed")
        later = timezone.now() + timedelta(seconds=settings.NOTIFICATIONS_RETRY_BASE_SECONDS + 1)
        with mock.patch("django.utils.timezone.now", return_value=later):
            call_command("retry_notifications", stdout=out)
            self.assertIn("sent 1", out.getvalue())
            call_command("retry_notifications", stdout=io.StringIO())
            send_reminder()
        self.assertEqual(self.push.received_by(1), ["You have 2 unfinished todos"])
        self.assertEqual(NotificationLog.objects.get().attempts, 2)

    def test_overlapping_runs_do_not_send_a_reminder_twice(self):
        from notifications.models import NotificationLog as Log
        from notifications.tasks import claim

        log = Log.objects.create(user=self.users[0], day=timezone.localdate(), text="x")
        self.assertEqual(claim([log.pk]), [log], "run A leases the row")
        self.assertEqual(claim([log.pk]), [], "run B finds it leased")
        self.assertEqual(Log.objects.get(pk=log.pk).attempts, 1)

    def test_dry_run_sends_and_records_nothing(self):
        out = io.StringIO()
        call_command("send_reminders", "--dry-run", stdout=out)
        self.assertIn("would send to user 1: You have 2 unfinished todos", out.getvalue())
        self.assertEqual(self.push.outbox, [])
        self.assertEqual(NotificationLog.objects.count(), 0)

    def test_command_reports_a_summary(self):
        out = io.StringIO()
        call_command("send_reminders", stdout=out)
        self.assertIn("sent 1, left pending 0", out.getvalue())

    def test_todo_api_down_or_garbage_is_a_clear_error_and_sends_nothing(self):
        for fault in ("api_error", "timeout"):
            self.todo_api.faults.add("GET /todos", fault)
            with self.assertRaises(CommandError):
                call_command("send_reminders", stdout=io.StringIO())
        self.todo_api.todos = {"not": "a list"}
        with self.assertRaisesMessage(todos.TodoApiError, "not a list of todos"):
            send_reminder()
        self.assertEqual(self.push.outbox, [])


class PushServiceErrorTests(FakeNotificationServicesMixin, TestCase):
    def test_status_210_is_an_argument_error(self):
        self.push.application = "SOMETHING-ELSE"
        with self.assertRaisesMessage(PushArgumentError, "Application not found"):
            PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])

    def test_bad_auth_is_a_configuration_error(self):
        with self.assertRaises(PushConfigurationError):
            PushService(auth="wrong").create_message(
                [{"text": "x", "conditions": ["UserID", "EQ", 1]}]
            )

    def test_5xx_429_and_timeouts_are_retryable(self):
        for fault in ("api_error", "rate_limit", "timeout", "connection_error"):
            self.push.faults.add("POST /createMessage", fault)
            with self.assertRaises(PushUnavailable) as caught:
                PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])
            self.assertTrue(caught.exception.retryable, fault)

    def test_a_lost_answer_means_the_push_was_sent_but_we_cannot_know(self):
        self.push.faults.add("POST /createMessage", "lost_response")
        with self.assertRaises(PushUnavailable):
            PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])
        self.assertEqual(self.push.received_by(1), ["x"], "the provider did send it")

    @override_settings(PUSH_BATCH_SIZE=2)
    def test_create_message_sends_large_lists_in_batches(self):
        notifications = [{"text": f"n{i}", "conditions": ["UserID", "EQ", i]} for i in range(5)]
        codes = PushService().create_message(notifications)
        sizes = [len(r[1]["notifications"]) for r in self.push.requests if r[0] == "/createMessage"]
        self.assertEqual(sizes, [2, 2, 1])
        self.assertEqual(codes, [m["code"] for m in self.push.outbox])
        self.assertEqual([m["content"] for m in self.push.outbox], [f"n{i}" for i in range(5)])

    def test_delete_message(self):
        [code] = PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])
        PushService().delete_message(code)
        self.assertEqual(self.push.deleted, [code])
        with self.assertRaisesMessage(PushArgumentError, "Message not found"):
            PushService().delete_message(code)


class TodoTutorialTests(TestCase):
    """The tutorial's todo tests: decorator, context manager, patcher in setUpClass."""

    todo1 = {"userId": 1, "id": 1, "title": "Make the bed", "completed": False}
    todo2 = {"userId": 1, "id": 2, "title": "Walk the dog", "completed": True}

    @patch("notifications.todos.session.get")
    def test_getting_todos_when_response_is_ok(self, mock_get):
        mock_get.return_value = Mock(ok=True)
        mock_get.return_value.json.return_value = [self.todo1]
        self.assertEqual(get_todos().json(), [self.todo1])

    def test_getting_todos_when_response_is_not_ok(self):
        with patch("notifications.todos.session.get") as mock_get:
            mock_get.return_value.ok = False
            self.assertIsNone(get_todos())

    @patch("notifications.todos.get_todos")
    def test_getting_uncompleted_todos(self, mock_get_todos):
        mock_get_todos.return_value = Mock()
        mock_get_todos.return_value.json.return_value = [self.todo1, self.todo2]
        self.assertEqual(get_uncompleted_todos(), [self.todo1])
        self.assertTrue(mock_get_todos.called)

    @patch("notifications.todos.get_todos")
    def test_getting_uncompleted_todos_when_todos_is_none(self, mock_get_todos):
        mock_get_todos.return_value = None
        self.assertEqual(get_uncompleted_todos(), [])

    @patch("notifications.todos.session.get")
    def test_success_then_timeout(self, mock_get):
        mock_get.side_effect = [Mock(ok=True, json=lambda: [self.todo1]), requests.Timeout("slow")]
        self.assertEqual(get_uncompleted_todos(), [self.todo1])
        with self.assertRaisesMessage(todos.TodoApiError, "timed out"):
            get_uncompleted_todos()


class TodoPatcherTests(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mock_get_patcher = patch("notifications.todos.session.get")
        cls.mock_get = cls.mock_get_patcher.start()

    @classmethod
    def tearDownClass(cls):
        cls.mock_get_patcher.stop()
        super().tearDownClass()

    def test_getting_users(self):
        self.mock_get.return_value = Mock(ok=True)
        self.mock_get.return_value.json.return_value = [{"id": 1}]
        self.assertEqual(todos.get_users().json(), [{"id": 1}])
        self.assertTrue(self.mock_get.call_args.args[0].endswith("/users"))


class LocalServerTests(TestCase):
    """The fakes over real HTTP, on a free loopback port, with the services pointed at them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.push, cls.todo_api = FakePushProvider(), FakeTodoApi()
        cls.server = FakeServer({"/push": cls.push, "/todos-api": cls.todo_api}).start()
        cls.addClassCleanup(cls.server.stop)

    def test_todos_and_users_over_http(self):
        with override_settings(TODOS_API_URL=self.server.url + "/todos-api/"):
            response = get_todos()
            self.assertEqual(response.headers["Content-Type"], "application/json; charset=utf-8")
            self.assertEqual(len(response.json()), 200)
            self.assertEqual(set(response.json()[0]), {"userId", "id", "title", "completed"})
            self.assertEqual(len(todos.get_users().json()), 10)

    def test_unknown_path_is_404_and_wrong_method_is_405(self):
        self.assertEqual(
            requests.get(self.server.url + "/todos-api/nope", timeout=5).status_code, 404
        )
        self.assertEqual(
            requests.post(self.server.url + "/todos-api/users", timeout=5).status_code, 405
        )
        self.assertEqual(
            requests.get(self.server.url + "/push/createMessage", timeout=5).status_code, 405
        )
        self.assertEqual(requests.get(self.server.url + "/elsewhere", timeout=5).status_code, 404)

    def test_push_service_against_the_server(self):
        service = PushService(self.server.url + "/push/", self.push.application, self.push.auth)
        codes = service.create_message([{"text": "Hi", "conditions": ["UserID", "EQ", 5]}])
        self.assertEqual(len(codes), 1)
        self.assertEqual(self.push.received_by(5), ["Hi"])


class DeviceTests(FakeNotificationServicesMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("dev")
        self.client.force_authenticate(self.user)

    def register(self, token="apns-token-1", platform="ios"):
        return self.client.post(
            reverse("devices"), {"platform": platform, "push_token": token}, format="json"
        )

    def test_register_is_forwarded_and_idempotent(self):
        first = self.register()
        self.assertEqual(first.status_code, 201, first.content)
        second = self.register()
        self.assertEqual(second.status_code, 200)
        self.assertEqual(first.json()["id"], second.json()["id"])
        device = Device.objects.get()
        self.assertEqual(
            self.push.devices[device.hwid],
            {"push_token": "apns-token-1", "device_type": 1, "userId": str(self.user.pk)},
        )
        self.assertIsNotNone(device.registered_at)

    def test_provider_down_is_a_503_and_the_device_is_kept(self):
        self.push.faults.add("POST /registerDevice", "api_error")
        with self.assertLogs("django.request", "ERROR"):
            response = self.register(platform="android")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["error"]["code"], "push_provider_unavailable")
        self.assertEqual(response["Retry-After"], "30")
        self.assertIsNone(Device.objects.get().registered_at)

    def test_bad_platform_is_a_validation_error(self):
        response = self.register(platform="windows")
        self.assertEqual(
            response.json()["error"]["fields"]["platform"][0]["code"], "invalid_choice"
        )

    def test_delete_own_device_only(self):
        device_id = self.register().json()["id"]
        self.client.force_authenticate(User.objects.create_user("other"))
        self.assertEqual(
            self.client.delete(reverse("device-detail", args=[device_id])).status_code, 404
        )
        self.client.force_authenticate(self.user)
        self.assertEqual(
            self.client.delete(reverse("device-detail", args=[device_id])).status_code, 204
        )
        self.assertFalse(Device.objects.exists())


class FakePushUnitTests(TestCase):
    def test_fake_push_restores_settings(self):
        before = settings.PUSH_API_URL
        with fake_push() as provider:
            self.assertEqual(settings.PUSH_AUTH_KEY, provider.auth)
        self.assertEqual(settings.PUSH_API_URL, before)


class FakePushProviderTests(TestCase):
    """The fake answers as Pushwoosh does, so bad requests from our code would show."""

    def setUp(self):
        self.provider = FakePushProvider()

    def call(self, method, request, http_method="POST"):
        body = json.dumps({"request": request}).encode()
        answer = self.provider.handle(http_method, f"/{method}", "", body, {})
        return answer.status, json.loads(answer.body)

    def valid(self, **extra):
        return {"application": self.provider.application, "auth": self.provider.auth, **extra}

    def test_argument_errors_are_status_code_210_with_http_200(self):
        cases = [
            self.valid(notifications=[]),
            self.valid(notifications=[{"send_date": "now"}]),
            self.valid(notifications=[{"content": "x", "conditions": ["UserID", "EQ", 1]}]),
        ]
        for request in cases:
            status, body = self.call("createMessage", request)
            self.assertEqual((status, body["status_code"]), (200, 210), request)
        self.assertEqual(self.provider.outbox, [])

    def test_bad_json_and_wrong_method(self):
        answer = self.provider.handle("POST", "/createMessage", "", b"{not json", {})
        self.assertEqual(answer.status, 400)
        self.assertEqual(self.call("createMessage", self.valid(), http_method="GET")[0], 405)
        self.assertEqual(self.call("nosuchMethod", self.valid())[0], 404)

    def test_register_device_validates_its_arguments(self):
        status, body = self.call(
            "registerDevice", self.valid(hwid="h1", push_token="t", device_type=7)
        )
        self.assertEqual(body["status_message"], "Invalid device type")
        status, body = self.call(
            "registerDevice", self.valid(hwid="h1", push_token="t", device_type=3)
        )
        self.assertEqual((status, body["status_code"]), (200, 200))
        self.assertEqual(self.provider.devices["h1"]["device_type"], 3)
