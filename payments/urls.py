from django.urls import path

from payments import sandbox, views

urlpatterns = [
    path("payments/", views.PaymentListCreateView.as_view(), name="payments"),
    path("payments/<int:pk>/", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/<int:pk>/refund/", views.RefundView.as_view(), name="payment-refund"),
    path("payments/sheet/", views.PaymentSheetView.as_view(), name="payment-sheet"),
    path("payments/<int:pk>/capture/", views.CaptureView.as_view(), name="payment-capture"),
    path("payments/<int:pk>/cancel/", views.CancelView.as_view(), name="payment-cancel"),
    path("payment-methods/", views.SavedCardListView.as_view(), name="payment-methods"),
    path("payment-methods/setup/", views.CardSetupView.as_view(), name="payment-method-setup"),
    path(
        "payment-methods/<str:method_id>/",
        views.SavedCardDetailView.as_view(),
        name="payment-method-detail",
    ),
    path("sandbox/stripe/<path:path>", sandbox.stripe_api, name="sandbox-stripe"),
    path("sandbox/3ds/<str:intent_id>/", sandbox.three_d_secure, name="sandbox-3ds"),
    path("stripe/webhook/", views.StripeWebhookView.as_view(), name="stripe-webhook"),
]
