"""Moved to the `accounts` app (models, serializers, services, views); kept for old imports."""

from accounts.serializers import RegisterSerializer, UserSerializer
from accounts.views import MeView, RegisterView, TokenView

__all__ = ["MeView", "RegisterSerializer", "RegisterView", "TokenView", "UserSerializer"]
