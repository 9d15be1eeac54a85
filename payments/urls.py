from django.urls import path

from payments import views

urlpatterns = [
    path("payments/", views.PaymentListCreateView.as_view(), name="payments"),
    path("payments/<int:pk>/", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/<int:pk>/refund/", views.RefundView.as_view(), name="payment-refund"),
    path("stripe/webhook/", views.StripeWebhookView.as_view(), name="stripe-webhook"),
]
