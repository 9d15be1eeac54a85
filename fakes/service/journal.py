"""The sandbox service's durable state: a snapshot plus an append-only journal, one writer.

The service is the only process that touches its state, so durability needs no locking
between processes. Every request that changes a fake appends ONE record to the journal
(the values of the keys it changed, see recorders.py) with a single `write()` before the
answer leaves, so an acknowledged change is in the kernel's page cache: it survives
`kill -9` of every process (with `fsync=True` it survives a power cut too, at a cost per
request; benchmarks/service_durability.py measures both, and SQLite in WAL beside them).

Files in the state directory:

    LOCK                     held (flock) by the running service: a second one refuses
    snapshot-<g>.bin         every value, as of the start of journal <g> (fuzzy, see below)
    journal-<g>.log          records appended since, oldest first

A record is `length (u32) | crc32 (u32) | flags (u8) | payload`, the payload a pickle
(zlib-compressed when it is over 64 KiB and that saves a quarter). Loading reads the newest complete
snapshot, then every journal from its generation on; a torn record at the end of the
last journal (killed mid-write: never acknowledged) is cut off.

Compaction keeps the journal short (so a start after `kill -9` replays little) without
stopping the service: `rotate()` starts journal <g+1>, and the snapshot of generation
<g+1> is written in small chunks, each value as it is when its chunk is encoded
(service.py, `_snapshot_step`). Such a snapshot is "fuzzy" (not of one instant), which
is safe because every journal record carries whole values (redo logging): replaying
journal <g+1> over it, in order, ends with each key's latest value, and a key nobody
changed since the rotation has the same value in both. Only when the
snapshot is complete (fsync, rename) are the older files removed.
"""

import contextlib
import fcntl
import logging
import os
import pickle
import re
import struct
import zlib
from pathlib import Path

logger = logging.getLogger(__name__)

HEADER = struct.Struct("<IIB")
COMPRESSED = 1
# Bytes: smaller records are written as they are. Compressing a request's record (a few
# KiB) costs more CPU than the whole request's handling; only big ones (a snapshot's
# chunks, a whole dict after a reset) are worth it.
COMPRESS_ABOVE = 64 * 1024
SNAPSHOT_END = ("end",)


class StateLocked(RuntimeError):
    """Another process already serves this state directory."""


def _files(directory, kind):
    """{generation: path} of `kind` files ("snapshot" or "journal")."""
    pattern = re.compile(rf"{kind}-(\d+)\.(?:bin|log)$")
    found = {}
    for path in directory.iterdir():
        match = pattern.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def encode(record, dumps):
    payload = dumps(record)
    flags = 0
    if len(payload) > COMPRESS_ABOVE:
        packed = zlib.compress(payload, 1)
        if len(packed) < len(payload) * 3 // 4:
            payload, flags = packed, COMPRESSED
    return HEADER.pack(len(payload), zlib.crc32(payload), flags) + payload


def read_records(path, loads):
    """(records, offset of the first byte that is not a whole record) of one file."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + HEADER.size <= len(data):
        length, crc, flags = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        if flags & COMPRESSED:
            payload = zlib.decompress(payload)
        records.append(loads(payload))
        offset = start + length
    return records, offset


class Journal:
    """The files of one state directory; `dumps`/`loads` turn records into bytes and back."""

    def __init__(self, directory, dumps, loads, fsync=False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dumps, self.loads, self.fsync = dumps, loads, fsync
        self._lock_file = open(self.directory / "LOCK", "a+")  # held while the service runs
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StateLocked(
                f"{self.directory} is in use by another sandbox service (one writer only)"
            ) from None
        self._fd = None
        self.generation = 0
        self.bytes_written = 0  # since the last rotation
        self.records_written = 0
        self.snapshot_bytes = 0  # the size of the newest complete snapshot

    # ------------------------------------------------------------------ loading
    def load(self):
        """(snapshot records or [], journal records) as the files hold them now; then opens
        the journal for appending. A torn tail of the last journal is cut off."""
        snapshots = _files(self.directory, "snapshot")
        snapshot, generation = [], 0
        for candidate in sorted(snapshots, reverse=True):
            records, _ = read_records(snapshots[candidate], self.loads)
            if records and records[-1] == SNAPSHOT_END:
                snapshot, generation = records[1:-1], candidate
                self.snapshot_bytes = snapshots[candidate].stat().st_size
                break
            logger.warning("sandbox state: ignoring incomplete %s", snapshots[candidate].name)
        journals = {g: p for g, p in _files(self.directory, "journal").items() if g >= generation}
        replay = []
        last = max(journals, default=generation)
        for number in sorted(journals):
            records, good = read_records(journals[number], self.loads)
            size = journals[number].stat().st_size
            if good < size:
                if number != last:
                    raise RuntimeError(
                        f"{journals[number]} is damaged at byte {good} of {size}, and a later "
                        "journal exists: refusing to load a state with a hole in it"
                    )
                logger.warning(
                    "sandbox state: %s ends with %d bytes of a record never acknowledged (cut off)",
                    journals[number].name,
                    size - good,
                )
                with open(journals[number], "r+b") as handle:
                    handle.truncate(good)
            replay.extend(records)
        self.generation = last
        self._open(last)
        return snapshot, replay

    def _open(self, generation):
        path = self.directory / f"journal-{generation}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.bytes_written = os.fstat(self._fd).st_size

    # ------------------------------------------------------------------ writing
    def append(self, record):
        """Write one record before the change it describes is acknowledged."""
        data = encode(record, self.dumps)
        written = os.write(self._fd, data)
        while written < len(data):  # (a regular file takes it all at once, in practice)
            written += os.write(self._fd, data[written:])
        if self.fsync:
            os.fsync(self._fd)
        self.bytes_written += len(data)
        self.records_written += 1

    def rotate(self):
        """Start the next journal; returns its generation (the snapshot to write for it)."""
        os.close(self._fd)
        self.generation += 1
        self._open(self.generation)
        return self.generation

    def write_snapshot(self, generation, chunks):
        """Write snapshot <generation> from an iterable of records; then drop older files."""
        final = self.directory / f"snapshot-{generation}.bin"
        temporary = final.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(encode(("snapshot", generation), self.dumps))
                for chunk in chunks:  # a record, or one already encoded (bytes)
                    handle.write(chunk if isinstance(chunk, bytes) else encode(chunk, self.dumps))
                handle.write(encode(SNAPSHOT_END, self.dumps))
                handle.flush()
                os.fsync(handle.fileno())
                size = handle.tell()
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        os.replace(temporary, final)
        self.snapshot_bytes = size
        self._fsync_directory()
        for kind in ("snapshot", "journal"):
            for number, path in _files(self.directory, kind).items():
                if number < generation:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    def _fsync_directory(self):
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def sizes(self):
        """Bytes on disk: {"snapshot": n, "journal": n}."""
        total = {"snapshot": 0, "journal": 0}
        for kind in total:
            for path in _files(self.directory, kind).values():
                with contextlib.suppress(FileNotFoundError):
                    total[kind] += path.stat().st_size
        return total

    @property
    def closed(self):
        return self._fd is None

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()


def pickler_dumps(dispatch):
    """A dumps(obj) with a private dispatch table (C pickler: Python runs only for the
    types in it)."""
    import io

    def dumps(obj):
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = dispatch
        pickler.dump(obj)
        return buffer.getvalue()

    return dumps


def loads(data):
    return pickle.loads(data)  # noqa: S301 (our own files, written by this service)
