"""Deprecated: the fakes' machinery moved (this module goes in the next release).

The `handle()` contract, FakeResponse, TransportFault and FaultPlan are in
fakes.contract; RequestsAdapter and mounted() in fakes.transport; FakeServer in
fakes.server.
"""

from conventions.deprecation import warn_moved
from fakes.contract import FAULT_KINDS, FakeResponse, FaultPlan, TransportFault
from fakes.server import FREEZE_EVERY, FakeApp, FakeServer
from fakes.transport import RequestsAdapter, mounted, requests_send_patched

__all__ = [
    "FAULT_KINDS",
    "FREEZE_EVERY",
    "FakeApp",
    "FakeResponse",
    "FakeServer",
    "FaultPlan",
    "RequestsAdapter",
    "TransportFault",
    "mounted",
    "requests_send_patched",
]

warn_moved("backend.fakes", "fakes.contract, fakes.transport and fakes.server")
