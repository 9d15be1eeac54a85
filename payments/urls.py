from django.urls import path

from payments import views

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
    path("stripe/webhook/", views.StripeWebhookView.as_view(), name="stripe-webhook"),
]
