"""Connect: requests made for a connected account with the `Stripe-Account` header.

docs.stripe.com/connect/authentication: "For server-side API calls, you can make requests as
connected accounts using the special header Stripe-Account with the Stripe account
identifier (it starts with the prefix acct_) of your platform user"; docs.stripe.com/api/
connected-accounts: "To act as connected accounts, clients can issue requests using the
Stripe-Account special header". What such a request creates belongs to that account, so:

- an object created with the header is reachable only with the same header: without it (the
  platform) or with another account's, its id is `resource_missing` (404 for the object the
  URL names, as for any id the account does not have); lists, searches, the balance and
  balance transactions show only the account's own objects, and the platform's lists
  only its own;
- the header must name an account the platform has (POST /v1/accounts); any other value is
  403 `account_invalid`, "The provided key ... does not have access to account ... (or that
  account does not exist)" (docs.stripe.com/error-codes#account-invalid);
- a connected account cannot create accounts (it is not a platform): 400, and
  `/v1/accounts/{account}` with another account in the header is a 400 (the messages are
  those Stripe answered to stripe-stateful-mock's authors);
- `GET /v1/account` with the header is that account;
- events of a connected account carry its id in `account` ("The connected account that
  originates the event", docs.stripe.com/api/events/object#event_object-account);
- an idempotency key is the account's own: the same key on two accounts is two requests
  (a replay never hands one account's object to another).

Stripe.js names the account as the `_stripe_account` form parameter of a publishable-key
call (its `stripeAccount` option); the mobile SDKs send the header.

Ownership is kept beside the objects, not in them (answers stay Stripe's shape): every id
minted during a connected request is the account's (`new_id`), and so are ids a create was
given. The stripe-mock-compatible mode ignores an account the fake never issued, as
stripe-mock ignores the header.
"""

from fakes.stripe.events import peek
from fakes.stripe.pipeline import mask_key
from fakes.stripe.wire import StripeError, invalid, not_found

ANY = object()  # outside a request (the harness: engine.all, engine.get): everything is seen


class Connect:
    def _reset_connect(self):
        self._account_of = {}  # object id -> the connected account that owns it
        self._account = ANY  # the request's account: None for the platform

    # ------------------------------------------------------------ per request
    def _connected_account(self, headers, from_form, api_key, endpoint):
        """The account a request acts for (None: the platform), checked. `from_form`: the
        `_stripe_account` parameter (Stripe.js's stripeAccount option), honoured for a
        publishable key."""
        account = (headers.get("Stripe-Account") or "").strip()
        if not account and api_key.startswith("pk_") and isinstance(from_form, str):
            account = from_form.strip()
        if not account:
            return None
        found = self.objects.get(account)
        if found is None or found.get("object") != "account" or found.get("deleted"):
            if self.stripe_mock:
                return None  # stripe-mock ignores the header
            raise StripeError(
                403,
                "invalid_request_error",
                f"The provided key '{mask_key(api_key)}' does not have access to account "
                f"'{account}' (or that account does not exist). Application access may have "
                "been revoked.",
                "account_invalid",
            )
        if endpoint.template == "/v1/accounts" and endpoint.method == "POST":
            raise invalid(
                "You can only create new accounts if you've signed up for Connect, which you "
                "can learn how to do at https://stripe.com/docs/connect."
            )
        return account

    def _end_connected_request(self):
        self._account = ANY

    def _check_account_path(self, endpoint, ids):
        """/v1/accounts/{account}/... with another account in the Stripe-Account header."""
        connected = self._account
        if (
            isinstance(connected, str)
            and endpoint.template.startswith("/v1/accounts/{")
            and ids
            and ids[0] != connected
        ):
            raise invalid(
                "The account specified in the path of /v1/accounts/:account does not match "
                "the account specified in the Stripe-Account header."
            )

    def _check_scope(self, ids):
        """An object the URL names that belongs to another account (or to the platform, for a
        connected request) does not exist for this request: 404, as for an unknown id."""
        if not self._account_of and self._account is None:
            return  # no connected account has made anything: nothing to hide
        for object_id in ids:
            found = self.objects.get(object_id) if isinstance(object_id, str) else None
            if found is not None and not self._visible(object_id, found):
                raise not_found(found.get("object", "object"), object_id)

    # ------------------------------------------------------------ ownership
    def _visible(self, object_id, found=None):
        """Whether the request's account (or the platform) may see this object."""
        connected = self._account
        if connected is ANY:
            return True
        if found is not None and found.get("object") == "account":
            return True  # accounts are the platform's, named by any of its requests
        owner = peek(self._account_of, object_id) if self._account_of else None
        return owner == connected

    def _own(self, object_id):
        """Make an id the request's account's (a create given its `id`)."""
        if isinstance(self._account, str):
            self._account_of[object_id] = self._account

    def new_id(self, prefix):
        object_id = super().new_id(prefix)
        if isinstance(self._account, str) and prefix != "acct":
            self._account_of[object_id] = self._account
        return object_id

    # ------------------------------------------------------------ the store, scoped
    def lookup(self, object_id, object_name, param="id", deleted_ok=False):
        found = super().lookup(object_id, object_name, param, deleted_ok)
        if not self._visible(found["id"], found):
            raise not_found(object_name, object_id, param)
        return found

    def all(self, object_name):
        found = super().all(object_name)
        if self._account is ANY or (not self._account_of and self._account is None):
            return found
        return [obj for obj in found if self._visible(obj["id"], obj)]

    def _take(self, object_id, wanted, data):
        if self._account is not ANY and (self._account_of or self._account is not None):
            found = self.objects.get(object_id)
            if found is not None and not self._visible(object_id, found):
                return
        super()._take(object_id, wanted, data)

    def _emit(self, type, obj, previous=None):
        event = super()._emit(type, obj, previous)
        if isinstance(self._account, str):
            event["account"] = self._account
        return event
