"""Accounts logic: sign a device in, sign devices out (and their push registrations).

Views call these; they hold no HTTP details. A device's push registration
(notifications.Device) belongs to the session it was registered with, so ending
a session deletes the device row (cascade) and unregisters it at the push
provider. The provider call comes after a PendingUnregistration row is written,
so an outage leaves a row for `manage.py purge_sessions` to retry instead of a
phone that keeps receiving reminders.
"""

import logging

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, update_session_auth_hash
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from knox.models import get_token_model

from accounts.models import DeviceSession, PendingUnregistration
from accounts.throttles import UsernameThrottle
from conventions.errors import ApiError
from notifications.models import Device
from notifications.push import PushArgumentError, PushError, PushService

logger = logging.getLogger(__name__)

INVALID_CREDENTIALS = "Unable to sign in with the username and password provided."


def sign_in(user, name="", platform=DeviceSession.Platform.OTHER):
    """A new session (token) for one device; returns (session, raw token).

    The raw token exists only in the return value: the row keeps its digest. If
    the user is over AUTH_MAX_SESSIONS_PER_USER, the sessions unused the longest
    are signed out.
    """
    with transaction.atomic():
        session, token = get_token_model().objects.create(
            user=user, name=name, platform=platform, last_used_at=timezone.now()
        )
        limit = max(1, settings.AUTH_MAX_SESSIONS_PER_USER)
        stale = list(
            DeviceSession.objects.filter(user=user)
            .order_by(F("last_used_at").desc(nulls_last=True), "-created", "-id")
            .values_list("pk", flat=True)[limit:]
        )
    if stale:
        end_sessions(DeviceSession.objects.filter(pk__in=stale))
    return session, token


def check_credentials(request, username, password):
    """The user for a good username/password, else ApiError; failures count per username.

    Unknown usernames, wrong passwords and inactive users get the same answer.
    Django's ModelBackend runs the password hasher for unknown usernames too, so
    the time taken does not tell them apart either.
    """
    user = authenticate(request, username=username, password=password)
    if user is None:
        UsernameThrottle().record_failure(request)
        raise ApiError(INVALID_CREDENTIALS, code="invalid_credentials")
    return user


def end_sessions(sessions):
    """Sign out the given sessions (a queryset) and their push devices; returns how many."""
    with transaction.atomic():
        ids = list(sessions.values_list("pk", flat=True))
        hwids = _queue_unregistrations(Device.objects.filter(session_id__in=ids))
        _, deleted = DeviceSession.objects.filter(pk__in=ids).delete()  # cascades to Device
    _unregister(hwids)
    return deleted.get(DeviceSession._meta.label, 0)


def remove_push_devices(devices):
    """Delete push devices (a queryset) here and at the provider."""
    with transaction.atomic():
        hwids = _queue_unregistrations(devices)
        devices.delete()
    _unregister(hwids)


def _queue_unregistrations(devices):
    hwids = list(devices.values_list("hwid", flat=True))
    for hwid in hwids:
        PendingUnregistration.objects.get_or_create(hwid=hwid)
    return hwids


def _unregister(hwids):
    if hwids:
        unregister_pending(PendingUnregistration.objects.filter(hwid__in=hwids))


def unregister_pending(pending=None):
    """Remove registrations at the push provider; returns (done, left).

    An unknown device (argument error) counts as done. After the first outage
    the rest are left for a later run rather than each waiting for a timeout.
    """
    pending = PendingUnregistration.objects.all() if pending is None else pending
    service, done, left = PushService(), 0, 0
    unavailable = False
    for item in list(pending.order_by("id")):
        if unavailable:
            left += 1
            continue
        try:
            service.unregister_device(item.hwid)
        except PushArgumentError as error:
            logger.info("push provider does not know device %s: %s", item.hwid, error)
        except PushError as error:
            item.attempts += 1
            item.last_error = str(error)[:500]
            item.save(update_fields=["attempts", "last_error"])
            logger.warning("could not unregister device %s: %s", item.hwid, error)
            unavailable, left = True, left + 1
            continue
        item.delete()
        done += 1
    return done, left


def purge_expired_sessions():
    """Sign out every expired session (a device that never came back); returns how many."""
    return end_sessions(DeviceSession.objects.filter(expiry__lte=timezone.now()))


def other_sessions(request):
    current = current_session(request)
    sessions = DeviceSession.objects.filter(user=request.user)
    return sessions.exclude(pk=current.pk) if current else sessions


def current_session(request):
    return request.auth if isinstance(request.auth, DeviceSession) else None


def change_password(request, new_password):
    """Set the password and sign out every other device; returns how many were signed out.

    This device stays signed in: its session is re-issued against the new password in
    the same transaction. The others no longer match it; the user's save signs them out
    when it commits (sign_out_stale_sessions), and the call below makes sure of it.
    """
    user, current = request.user, current_session(request)
    with transaction.atomic():
        others = list(other_sessions(request).values_list("pk", flat=True))
        user.set_password(new_password)
        user.save(update_fields=["password"])
        if current is not None:
            current.keep_for_current_password()
    end_sessions(DeviceSession.objects.filter(pk__in=others))
    browser = getattr(request, "session", None)
    if current_session(request) is None and browser is not None and browser.session_key:
        update_session_auth_hash(request, user)  # the browser session it came from stays
    return len(others)


def sign_out_stale_sessions(sender, instance, created=False, raw=False, update_fields=None, **kw):
    """post_save of the user model: sign out the devices issued against another password.

    Authentication already refuses them (DeviceSession.issued_for_current_password), by
    whatever path the password changed; this signs them out at once, push registrations
    included, when the save commits: a phone that never calls again gets no more reminders.
    """
    if created or raw or (update_fields is not None and "password" not in update_fields):
        return
    user_id = instance.pk
    transaction.on_commit(lambda: end_sessions(stale_sessions(user_id)))


def stale_sessions(user_id):
    """The user's sessions issued against a password that is no longer theirs."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return DeviceSession.objects.none()
    current = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return DeviceSession.objects.filter(user_id=user_id).exclude(auth_hash__in=current)
