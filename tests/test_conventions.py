from unittest import mock

from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APITestCase

User = get_user_model()


class ErrorEnvelopeTests(APITestCase):
    def setUp(self):
        self.user = User.objects.create_user("erin", password="correct-horse-battery-42")
        self.client.force_authenticate(self.user)

    def assertEnvelope(self, response, status_code, type_, code):
        self.assertEqual(response.status_code, status_code, response.content)
        error = response.json()["error"]
        self.assertEqual(set(error), {"type", "code", "message", "param", "fields"})
        self.assertEqual((error["type"], error["code"]), (type_, code))
        self.assertTrue(error["message"])
        return error

    def test_malformed_json_is_a_400_parse_error(self):
        response = self.client.generic(
            "POST", reverse("register"), '{"username": "x",', content_type="application/json"
        )
        self.assertEnvelope(response, 400, "invalid_request_error", "parse_error")

    def test_wrong_content_type_is_a_415(self):
        response = self.client.generic(
            "POST", reverse("register"), "username=x", content_type="text/plain"
        )
        self.assertEnvelope(response, 415, "invalid_request_error", "unsupported_media_type")

    def test_wrong_method_is_a_405(self):
        response = self.client.put(reverse("me"), {})
        self.assertEnvelope(response, 405, "invalid_request_error", "method_not_allowed")

    def test_unknown_api_url_is_a_404_in_the_envelope(self):
        response = self.client.get("/api/does-not-exist/")
        self.assertEnvelope(response, 404, "invalid_request_error", "not_found")

    @override_settings(API_MAX_BODY_BYTES=100)
    def test_oversized_body_is_a_413(self):
        response = self.client.generic(
            "POST",
            reverse("register"),
            '{"username": "' + "x" * 200 + '"}',
            content_type="application/json",
        )
        self.assertEnvelope(response, 413, "invalid_request_error", "payload_too_large")

    def test_validation_errors_list_every_field(self):
        response = self.client.post(reverse("register"), {}, format="json")
        error = self.assertEnvelope(response, 400, "invalid_request_error", "validation_error")
        self.assertEqual(set(error["fields"]), {"username", "password"})
        self.assertEqual(error["fields"]["password"][0]["code"], "required")

    def test_an_unhandled_exception_is_a_500_in_the_envelope(self):
        self.client.raise_request_exception = False
        with (
            mock.patch(
                "accounts.serializers.UserSerializer.to_representation", side_effect=KeyError
            ),
            self.assertLogs("django.request", "ERROR"),
        ):
            response = self.client.get(reverse("me"))
        self.assertEnvelope(response, 500, "api_error", "internal_error")


class HealthTests(APITestCase):
    def test_health_checks_the_database(self):
        response = self.client.get(reverse("health"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["database"], "ok")

    def test_health_reports_a_database_failure_as_503(self):
        with (
            mock.patch("backend.views.connection.cursor", side_effect=DatabaseError("down")),
            self.assertLogs("django.request", "ERROR"),
        ):
            response = self.client.get(reverse("health"))
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["status"], "unavailable")

    def test_health_does_not_report_fakes_in_tests(self):
        self.assertEqual(self.client.get(reverse("health")).json()["sandbox"], [])


class SchemaTests(APITestCase):
    def test_schema_and_docs_are_served(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
        self.assertEqual(schema.status_code, 200)
        paths = schema.json()["paths"]
        self.assertIn("/api/auth/register/", paths)
        payments = paths["/api/payments/"]["post"]["responses"]
        self.assertTrue({"201", "202", "400", "401", "409", "422", "429", "503"} <= set(payments))
        envelope = payments["400"]["content"]["application/json"]["schema"]["$ref"]
        self.assertTrue(envelope.endswith("/Error"), envelope)
        self.assertIn("/api/stripe/webhook/", paths)
        self.assertIn("/api/devices/", paths)
        docs = self.client.get(reverse("docs"))
        self.assertEqual(docs.status_code, 200)
        self.assertContains(docs, "swagger-ui")


class EnvelopeUnitTests(APITestCase):
    def test_odd_validation_errors_still_get_an_envelope(self):
        from rest_framework.exceptions import ValidationError

        from conventions.errors import exception_handler

        for detail in ({}, [], "flat message", {"items": [{"name": ["bad"]}]}):
            response = exception_handler(ValidationError(detail), {})
            error = response.data["error"]
            self.assertEqual(
                (response.status_code, error["code"]), (400, "validation_error"), detail
            )
            self.assertTrue(error["message"])
        nested = exception_handler(ValidationError({"items": [{"name": ["bad"]}]}), {})
        self.assertEqual(nested.data["error"]["param"], "items.0.name")
