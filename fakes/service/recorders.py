"""What a request changed in a fake, as data for the journal, and how to put it back.

A `Recorder` watches one fake's attributes, of three kinds:

- dicts (objects by id, idempotent answers, devices...): replaced by a `TrackedDict`
  that notes every key read or written through it (a read counts: a stored object is
  changed in place), so a change lists only those keys' values, or their deletion;
- append-only lists (the push outbox): a change is the items added since the last one;
- other values (a counter, small sets and lists): the whole value, when it differs.

`changes()` is called after each request that may write, `discard()` after a read (what
a read does, such as the fake Stripe turning an event's stored snapshot into its data,
is equivalent state). The fake Stripe's list indexes are not kept at all: they are
rebuilt from the objects when the state is loaded (`StripeRecorder.finish_load`), so a
charge costs the journal its own values, never a copy of an index 100,000 ids long.
"""

import copy
import pickle

from fakes.stripe.events import peek
from fakes.stripe.store import index_keys, sequence

SNAPSHOT_CHUNK = 256  # keys per snapshot record (one step between requests)


class Packed(bytes):
    """A stored object kept as its pickle until something reads it (a state loaded from a
    snapshot: most of yesterday's charges are never read again). Reading it through a
    TrackedDict, or `peek_value()`, turns it back into the object for good."""

    __slots__ = ()

    def __reduce__(self):
        return (Packed, (bytes(self),))

    def open(self):
        return pickle.loads(self)  # noqa: S301 (our own snapshot)


def peek_value(mapping, key, default=None):
    """mapping[key] without noting a read (a packed value opened): for reads that change
    nothing, so a write after them need not journal what they looked at."""
    value = dict.get(mapping, key, default)
    if type(value) is Packed:
        value = value.open()
        dict.__setitem__(mapping, key, value)
    return value


class TrackedDict(dict):
    """A dict that notes every key read or written through it (`touched`). Membership tests
    (`in`) are not reads; iterating values or items touches every key. A Packed value is
    opened when read. Pickles and deep-copies as a plain dict."""

    __slots__ = ("touched",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.touched = set()

    def _open(self, key, value):
        if type(value) is Packed:
            value = value.open()
            dict.__setitem__(self, key, value)
        return value

    def _open_all(self):
        for key, value in dict.items(self):
            if type(value) is Packed:
                dict.__setitem__(self, key, value.open())

    def __getitem__(self, key):
        self.touched.add(key)
        return self._open(key, dict.__getitem__(self, key))

    def get(self, key, default=None):
        self.touched.add(key)
        if not dict.__contains__(self, key):
            return default
        return self._open(key, dict.__getitem__(self, key))

    def __setitem__(self, key, value):
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key, *default):
        self.touched.add(key)
        value = dict.pop(self, key, *default)
        return value.open() if type(value) is Packed else value

    def setdefault(self, key, default=None):
        self.touched.add(key)
        return self._open(key, dict.setdefault(self, key, default))

    def popitem(self):
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value.open() if type(value) is Packed else value

    def update(self, *args, **kwargs):
        other = dict(*args, **kwargs)
        self.touched.update(other)
        dict.update(self, other)

    def clear(self):
        self.touched.update(dict.keys(self))
        dict.clear(self)

    def values(self):
        self._open_all()
        self.touched.update(dict.keys(self))
        return dict.values(self)

    def items(self):
        self._open_all()
        self.touched.update(dict.keys(self))
        return dict.items(self)

    def copy(self):
        self._open_all()
        self.touched.update(dict.keys(self))
        return dict(self)

    def __reduce__(self):
        return (dict, (dict(self),))


class Recorder:
    """The changes of one fake, named `name` in the journal."""

    def __init__(self, name, fake, dicts=(), appends=(), values=()):
        self.name, self.fake = name, fake
        self.dicts, self.appends, self.values = tuple(dicts), tuple(appends), tuple(values)
        self._lengths, self._lists, self._saved = {}, {}, {}
        # Snapshots: each dict chunk's record as last written, kept until one of its keys
        # is touched (`_dirty`), so a snapshot encodes only what changed since the last.
        self._chunks = {attr: {} for attr in self.dicts}  # attr -> {first key: (keys, bytes)}
        self._dirty = {attr: set() for attr in self.dicts}
        self.track()

    # ------------------------------------------------------------ watching
    def track(self):
        """Watch the fake's current attributes (after loading, or after it reset itself)."""
        for attr in self.dicts:
            value = getattr(self.fake, attr)
            if type(value) is not TrackedDict:
                setattr(self.fake, attr, TrackedDict(value))
                self._chunks[attr] = {}
        self._lists = {attr: getattr(self.fake, attr) for attr in self.appends}
        self._lengths = {attr: len(items) for attr, items in self._lists.items()}
        self._saved = {attr: copy.deepcopy(getattr(self.fake, attr)) for attr in self.values}

    def discard(self):
        """After a read: forget what it touched (still dirty for the next snapshot)."""
        for attr in self.dicts:
            value = getattr(self.fake, attr)
            if type(value) is TrackedDict:
                self._dirty[attr] |= value.touched
                value.touched.clear()

    def changes(self):
        """What changed since the last call, or None; watching goes on from here."""
        found = {}
        dicts = {}
        for attr in self.dicts:
            value = getattr(self.fake, attr)
            if type(value) is not TrackedDict:  # the fake replaced it (reset): all of it
                dicts[attr] = (dict(value), None)
                setattr(self.fake, attr, TrackedDict(value))
                self._chunks[attr] = {}
                continue
            if not value.touched:
                continue
            self._dirty[attr] |= value.touched
            present, deleted = {}, []
            for key in value.touched:
                if dict.__contains__(value, key):
                    present[key] = dict.__getitem__(value, key)
                else:
                    deleted.append(key)
            value.touched.clear()
            dicts[attr] = (present, deleted)
        if dicts:
            found["d"] = dicts
        appended = {}
        for attr in self.appends:
            items = getattr(self.fake, attr)
            start = self._lengths.get(attr, 0)
            if items is not self._lists.get(attr) or len(items) < start:
                appended[attr] = (0, list(items))  # replaced (a reset) or shortened: all of it
            elif len(items) > start:
                appended[attr] = (start, items[start:])
            self._lengths[attr], self._lists[attr] = len(items), items
        if appended:
            found["a"] = appended
        values = {}
        for attr in self.values:
            value = getattr(self.fake, attr)
            if value != self._saved.get(attr):
                values[attr] = copy.deepcopy(value)
                self._saved[attr] = copy.deepcopy(value)
        if values:
            found["v"] = values
        return found or None

    # ------------------------------------------------------------ loading
    def apply(self, change):
        for attr, (present, deleted) in change.get("d", {}).items():
            target = getattr(self.fake, attr)
            if deleted is None:  # the whole dict
                target = dict(present)
                setattr(self.fake, attr, target)
                continue
            dict.update(target, present)
            for key in deleted:
                dict.pop(target, key, None)
        for attr, (start, items) in change.get("a", {}).items():
            target = getattr(self.fake, attr)
            del target[start:]
            target.extend(items)
        for attr, value in change.get("v", {}).items():
            setattr(self.fake, attr, copy.deepcopy(value))

    def apply_snapshot(self, kind, attr, value):
        if kind == "dict":
            dict.update(getattr(self.fake, attr), value)
        elif kind == "list":
            getattr(self.fake, attr).extend(value)
        else:
            setattr(self.fake, attr, value)

    def finish_load(self):
        self.track()

    # ------------------------------------------------------------ snapshots
    def snapshot_plan(self):
        """What a snapshot of this fake will write: called under the service lock, at the
        rotation. Dict keys are listed now, values read when their chunk is written."""
        plan = []
        for attr in self.dicts:
            keys = list(dict.keys(getattr(self.fake, attr)))
            plan.append(("dict", attr, keys))
        for attr in self.appends:
            plan.append(("list", attr, list(getattr(self.fake, attr))))
        for attr in self.values:
            plan.append(("value", attr, copy.deepcopy(getattr(self.fake, attr))))
        return plan

    def snapshot_chunk(self, kind, attr, keys):
        """One snapshot record's value for `keys` of a dict, as they are now."""
        target = getattr(self.fake, attr)
        return {
            key: dict.__getitem__(target, key) for key in keys if dict.__contains__(target, key)
        }

    def snapshot_record(self, attr, keys, encode):
        """The encoded snapshot record of `keys` of a dict (under the service lock): the one
        last written when none of them was touched since and the chunk holds the same
        keys, else made anew from the values as they are now."""
        keys = tuple(keys)
        dirty = self._dirty[attr]
        cached = self._chunks[attr].get(keys[0])
        if cached is not None and cached[0] == keys and dirty.isdisjoint(keys):
            return cached[1]
        value = self.snapshot_chunk("dict", attr, keys)
        record = encode(("fake", self.name, "dict", attr, value))
        self._chunks[attr][keys[0]] = (keys, record)
        dirty.difference_update(keys)
        return record


class StripeRecorder(Recorder):
    """The fake Stripe: every attribute its STATE names, but the list indexes (rebuilt from
    the objects at load) and the request log (a debugging aid, kept in memory only).

    In a snapshot each stored object is written as its own pickle with the index keys it
    belongs under, and loaded as that pickle (Packed): a restart reads the bytes and
    rebuilds the indexes from the keys, and an object is unpickled when first read (but
    the events, small and read by the engine without a TrackedDict: they are written
    inline, and loaded as objects). Chunks nobody touched since the last snapshot are
    written again as they were (Recorder.snapshot_record): compaction costs what changed,
    not what is stored.
    """

    NOT_KEPT = ("_indexes", "_requests")

    def __init__(self, engine, dumps):
        names = [name for name in engine.STATE if name not in self.NOT_KEPT]
        dicts = [name for name in names if isinstance(getattr(engine, name), dict)]
        values = [name for name in names if name not in dicts]
        self.dumps = dumps
        self.packed_keys = {}  # id -> the index keys of an object loaded packed
        super().__init__("stripe", engine, dicts=dicts, values=values)

    def track(self):
        if type(self.fake.objects) is not TrackedDict:  # new, or reset by the engine
            self.packed_keys.clear()
        super().track()

    def snapshot_chunk(self, kind, attr, keys):
        if attr != "objects":
            return super().snapshot_chunk(kind, attr, keys)
        objects = self.fake.objects
        values, index = {}, {}
        for key in keys:
            if not dict.__contains__(objects, key):
                continue  # deleted since the rotation: the journal says so
            value = dict.__getitem__(objects, key)
            if type(value) is Packed:
                values[key], index[key] = value, self.packed_keys.get(key)
            elif value.get("object") == "event":
                values[key] = value  # small, read without a TrackedDict: inline, loaded as is
            else:
                values[key], index[key] = Packed(self.dumps(value)), tuple(index_keys(value))
        return {"packed": values, "index": index}

    def apply_snapshot(self, kind, attr, value):
        if attr == "objects" and isinstance(value, dict) and "packed" in value:
            dict.update(self.fake.objects, value["packed"])
            self.packed_keys.update((k, v) for k, v in value["index"].items() if v is not None)
            return
        super().apply_snapshot(kind, attr, value)

    def finish_load(self):
        """Rebuild the list indexes as the engine's own store() builds them, oldest first
        (an id ends with the store's counter); nested generic objects under their parent."""
        engine = self.fake
        engine._indexes = {}
        objects = engine.objects
        shared_keys = {}  # one tuple of keys for the many objects that share it
        for object_id in sorted(dict.keys(objects), key=sequence):
            value = dict.__getitem__(objects, object_id)
            keys = self.packed_keys.get(object_id) if type(value) is Packed else None
            if keys is None:
                keys = index_keys(peek_value(objects, object_id))
            else:
                keys = self.packed_keys[object_id] = shared_keys.setdefault(keys, keys)
            for key in keys:
                engine._index_add(key, object_id)
        parents = peek(vars(engine), "_parents") or {}
        for child in sorted(dict.keys(parents), key=sequence):
            found = peek_value(objects, child)
            if found is not None:
                engine._index_add(
                    (found["object"], "parent", dict.__getitem__(parents, child)), child
                )
        super().finish_load()


def push_recorder(provider):
    return Recorder(
        "push",
        provider,
        dicts=("devices", "transactions"),
        appends=("outbox", "unregistered", "deleted", "duplicates"),
    )


def todos_recorder(api):
    return Recorder("todos", api, values=("todos", "users"))
