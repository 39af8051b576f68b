"""The state of a store in this process (up or down, what waits for it), shared by every
:class:`~actionkit.cache.safe.SafeStore` of that store, and reset in a forked child."""

from __future__ import annotations

import os
import threading
import typing as t
import weakref
from collections import OrderedDict

if t.TYPE_CHECKING:
    from ..stores import Store

# A waiting revalidation: ("tag", tag, False) or ("path", path, layout); or, when too many
# waited, ("clear", "", False): everything is dropped instead.
Revalidation = tuple[str, str, bool]
CLEAR: Revalidation = ("clear", "", False)


class Health:
    """The state of one store in this process, shared by every
    :class:`~actionkit.cache.safe.SafeStore` of it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Whether the store answered its last use; read without the lock on the hot path.
        self.up = True
        #: clock() before which nothing is read from the store (back, settling).
        self.read_after = 0.0
        #: clock() before which nobody tries the store again (down).
        self.retry_at = 0.0
        self.trying = False
        # Each waiting revalidation with the number of its latest request.
        self.pending: OrderedDict[Revalidation, int] = OrderedDict()
        self.requests = 0
        #: The number of the last request made before this process was forked from its parent.
        self.inherited = 0
        self.delivered = 0
        #: The leases taken in the store and not let go yet, by key (how many times: a lease
        #: granted without the store may share the key).
        self.held: dict[str, int] = {}
        #: Leases to let go once the store answers (see :mod:`actionkit.cache.safe`).
        self.leases: set[str] = set()
        self.thread: threading.Thread | None = None

    def after_fork(self) -> None:
        # Another thread may have held the lock at the fork; the deliverer did not follow.
        self.lock = threading.Lock()
        self.trying = False
        self.thread = None
        self.held = {}  # the parent's; it lets them go
        self.leases = set()
        # The parent's waiting revalidations stay (delivered here too before this child reads
        # the store), but are the parent's to wait for at exit (see safe._deliver_at_exit).
        self.inherited = self.requests


_healths: weakref.WeakKeyDictionary[t.Any, Health] = weakref.WeakKeyDictionary()
_healths_lock = threading.Lock()


def health_of(store: Store) -> Health:
    """The shared state of ``store`` (a wrapper's own where the store cannot be a weak key)."""
    with _healths_lock:
        try:
            health = _healths.get(store)
            if health is None:
                health = _healths[store] = Health()
            return health
        except TypeError:  # not hashable or not weakly referenceable
            return Health()


def healths() -> list[tuple[t.Any, Health]]:
    """Every store of this process with its state."""
    with _healths_lock:
        return list(_healths.items())


def _after_fork_in_child() -> None:
    global _healths_lock
    _healths_lock = threading.Lock()
    for health in list(_healths.values()):
        health.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
