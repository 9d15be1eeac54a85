"""Objects by id, Stripe-style ids, and per-resource indexes ordered by `created` for lists.

Everything here is plain data (dicts, lists, ints, strings) so the state pickles
(`FakeStripe.dump_state`). An index is a list of ids, oldest first. Every id ends with the
store's counter (`ch_<12 hex><counter>`), so an index is sorted by it too and the position of
`starting_after` is a binary search; objects deleted later stay in an index and are skipped
when a page is read. Lists cost O(limit + log n), whatever the number of objects.
"""

import bisect
import secrets

from fakes.stripe.wire import as_int, invalid, not_found

# The filters Stripe's list endpoints take that we index, per object type: the value
# is fixed when the object is stored (a charge's customer, an event's type).
INDEXED_FILTERS = {
    "charge": ("customer", "payment_intent"),
    "payment_intent": ("customer",),
    "refund": ("charge", "payment_intent"),
    "event": ("type",),
    "payment_method": ("customer", "type"),
}


def index_keys(obj):
    """The list indexes an object goes in when it is stored: all of its type, and one per
    indexed filter it has a value for (a store that keeps objects elsewhere rebuilds its
    indexes from these)."""
    name = obj["object"]
    keys = [(name, None, None)]
    for field in INDEXED_FILTERS.get(name, ()):
        value = obj.get(field)
        if isinstance(value, str):
            keys.append((name, field, value))
    return keys


def sequence(object_id):
    """The store's counter at the end of an id (`ch_<12 hex><counter>`)."""
    tail = object_id.rsplit("_", 1)[-1][12:]
    return int(tail) if tail.isdigit() else -1


def position_of(ids, object_id):
    if not isinstance(object_id, str):
        return None
    position = bisect.bisect_left(ids, sequence(object_id), key=sequence)
    return position if position < len(ids) and ids[position] == object_id else None


class Store:
    def _reset_store(self):
        self.objects = {}
        self._indexes = {}  # (object name, filter field or None, value) -> index
        self._counter = 0

    def new_id(self, prefix):
        self._counter += 1
        return f"{prefix}_{secrets.token_hex(6)}{self._counter:06d}"

    def store(self, obj):
        """Keep an object and index it by created (and by its indexed filters)."""
        self.objects[obj["id"]] = obj
        for key in index_keys(obj):
            self._index_add(key, obj["id"])
        return obj

    def _index_add(self, key, object_id):
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = []
        if not index or index[-1] != object_id:
            index.append(object_id)

    def all(self, object_name):
        """Every stored object of a type, oldest first."""
        if object_name == "event":
            return self.events
        index = self._indexes.get((object_name, None, None), ())
        objects = self.objects
        return [objects[i] for i in index if i in objects and not objects[i].get("deleted")]

    def lookup(self, object_id, object_name, param="id", deleted_ok=False):
        found = self.objects.get(object_id or "") if isinstance(object_id, str) else None
        if found is not None and found["object"] == "event":
            self._materialize(found)
        if found is None and getattr(self, "stripe_mock", False) and isinstance(object_id, str):
            found = self.fixture(object_name, object_id)  # generic.py: as stripe-mock answers
        if found is None or found["object"] != object_name:
            raise not_found(object_name, object_id, param)
        if not deleted_ok and found.get("deleted"):  # a deleted customer's tombstone
            raise not_found(object_name, object_id, param)
        return found

    def page(self, object_name, params, url, filters=(), parent=None):
        """One page of a list, newest first, in O(limit) for indexed filters."""
        limit = as_int(params, "limit")
        limit = 10 if limit is None else limit
        if not 1 <= limit <= 100:
            raise invalid(
                "This value must be less than or equal to 100."
                if limit > 100
                else "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                "limit",
            )
        wanted = {name: params[name] for name in filters if params.get(name) not in (None, "")}
        key = (object_name, None, None) if parent is None else (object_name, "parent", parent)
        for name in INDEXED_FILTERS.get(object_name, ()):
            if name in wanted:
                key = (object_name, name, wanted.pop(name))
                break
        ids, objects = self._indexes.get(key, []), self.objects
        stop = len(ids)  # exclusive upper bound, walking down (newest first)
        floor = 0
        after, before = params.get("starting_after"), params.get("ending_before")
        if after:
            stop = position_of(ids, after)
            if stop is None:
                raise not_found("object", after, "starting_after")
        created = params.get("created")
        if isinstance(created, dict) and created:
            created_of = lambda i: objects[i]["created"] if i in objects else 0  # noqa: E731
            if created.get("gte") not in (None, ""):
                floor = max(floor, bisect.bisect_left(ids, int(created["gte"]), key=created_of))
            if created.get("gt") not in (None, ""):
                floor = max(floor, bisect.bisect_right(ids, int(created["gt"]), key=created_of))
            if created.get("lte") not in (None, ""):
                stop = min(stop, bisect.bisect_right(ids, int(created["lte"]), key=created_of))
            if created.get("lt") not in (None, ""):
                stop = min(stop, bisect.bisect_left(ids, int(created["lt"]), key=created_of))
        elif created not in (None, "", {}):
            value = as_int(params, "created")
            floor = max(floor, bisect.bisect_left(ids, value, key=lambda i: objects[i]["created"]))
            stop = min(stop, bisect.bisect_right(ids, value, key=lambda i: objects[i]["created"]))
        data = []
        if before:
            position = position_of(ids, before)
            if position is None:
                raise not_found("object", before, "ending_before")
            position, step, end = position + 1, 1, stop
            # the `limit` objects just newer than ending_before, still returned newest first
            while position < end and len(data) <= limit:
                self._take(ids[position], wanted, data)
                position += step
            has_more = len(data) > limit
            data = list(reversed(data[:limit]))
        else:
            position = stop - 1
            while position >= floor and len(data) <= limit:
                self._take(ids[position], wanted, data)
                position -= 1
            has_more = len(data) > limit
            data = data[:limit]
        if object_name == "event":
            data = [self._materialize(event) for event in data]
        if not data and not after and not before and getattr(self, "stripe_mock", False):
            data = [self.fixture(object_name)]  # stripe-mock answers a list of one
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    def _take(self, object_id, wanted, data):
        obj = self.objects.get(object_id)
        if obj is None or obj.get("deleted"):
            return
        for name, value in wanted.items():
            if obj.get(name) != value:
                return
        data.append(obj)
