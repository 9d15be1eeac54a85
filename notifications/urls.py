from django.urls import path

from notifications import views

urlpatterns = [
    path("devices/", views.DeviceListCreateView.as_view(), name="devices"),
    path("devices/<int:pk>/", views.DeviceDetailView.as_view(), name="device-detail"),
]
