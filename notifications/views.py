import uuid

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from accounts.services import current_session, remove_push_devices
from conventions.errors import ApiError
from conventions.schema import error_responses
from notifications.models import Device
from notifications.push import PushError, PushService
from notifications.serializers import DeviceSerializer


class DeviceListCreateView(generics.ListAPIView):
    serializer_class = DeviceSerializer

    def get_queryset(self):
        return Device.objects.filter(user=self.request.user).order_by("-created_at")

    @extend_schema(
        request=DeviceSerializer,
        responses={
            201: DeviceSerializer,
            200: DeviceSerializer,
            **error_responses(400, 401, 413, 415, 429, 502, 503),
        },
    )
    def post(self, request):
        """Register the caller's device; the same token again is the same device (idempotent)."""
        serializer = DeviceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Tied to the signed-in device (its token), so signing that device out stops its pushes.
        session = current_session(request)
        device, created = Device.objects.update_or_create(
            push_token=data["push_token"],
            defaults={"user": request.user, "platform": data["platform"], "session": session},
            create_defaults={
                "user": request.user,
                "platform": data["platform"],
                "session": session,
                "hwid": uuid.uuid4().hex,
            },
        )
        try:
            PushService().register_device(
                device.hwid, device.push_token, device.platform, request.user.pk
            )
        except PushError as error:
            device.last_error = str(error)[:500]
            device.save(update_fields=["last_error"])
            raise ApiError(
                "The push provider did not register the device; it is saved and can be retried.",
                code="push_provider_unavailable" if error.retryable else "push_registration_failed",
                status_code=503 if error.retryable else 502,
                headers={"Retry-After": "30"} if error.retryable else None,
            ) from error
        device.registered_at, device.last_error = timezone.now(), ""
        device.save(update_fields=["registered_at", "last_error"])
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(DeviceSerializer(device).data, status=code)


class DeviceDetailView(generics.DestroyAPIView):
    serializer_class = DeviceSerializer

    def get_queryset(self):
        return Device.objects.filter(user=self.request.user)

    def perform_destroy(self, instance):
        # Here and at the provider (unregisterDevice), retried by purge_sessions if it is down.
        remove_push_devices(Device.objects.filter(pk=instance.pk))
