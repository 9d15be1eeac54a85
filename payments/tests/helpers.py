import contextlib


@contextlib.contextmanager
def expect_stripe_unavailable(test):
    """The 503 path logs twice: our warning, and Django's log of the 5xx response."""
    with (
        test.assertLogs("payments", "WARNING"),
        test.assertLogs("django.request", "ERROR"),
    ):
        yield
