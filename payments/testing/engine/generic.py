"""Endpoints with no model: answered generically (filled in below)."""

from payments.testing.engine.wire import invalid


class Generic:
    def generic(self, endpoint, params, ids):
        raise invalid(
            f"Unrecognized request URL ({endpoint.method}: {endpoint.template}).", status=404
        )
