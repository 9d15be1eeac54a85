from django.conf import settings
from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

HEALTH = inline_serializer(
    "Health",
    {
        "status": serializers.CharField(),
        "database": serializers.CharField(),
        "sandbox": serializers.ListField(child=serializers.CharField()),
        "sandbox_url": serializers.CharField(allow_null=True),
    },
)


class HealthView(APIView):
    """Liveness and readiness: answers 200 when the database answers."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = []

    @extend_schema(
        responses={
            (code, "application/json"): OpenApiResponse(HEALTH, description=description)
            for code, description in ((200, "Healthy."), (503, "The database does not answer."))
        }
    )
    def get(self, request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            database = "ok"
        except DatabaseError:
            database = "unavailable"
        healthy = database == "ok"
        body = {
            "status": "ok" if healthy else "unavailable",
            "database": database,
            # the providers reached on the sandbox service (SANDBOX_URL), in sandbox mode
            "sandbox": settings.SANDBOX_SERVICES,
            "sandbox_url": settings.SANDBOX_URL if settings.SANDBOX_SERVICES else None,
        }
        return Response(body, status=200 if healthy else 503)
