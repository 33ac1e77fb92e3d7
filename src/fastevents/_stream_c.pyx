# cython: language_level=3
"""The compiled stream twin: a ring of PyObject* under a C mutex and two condition variables.

Locking discipline (the reason for most of the shape of this file):

* No thread ever waits for the GIL while it holds a stream mutex: the GIL-holding paths
  try-lock (and spin briefly); if the mutex stays busy they wait, GIL released, until it
  is free, and try again once the GIL is back. So a mutex holder never needs the GIL,
  and a thread holding the GIL may block on a mutex (the fork handlers do).
* Events are taken from the ring, and the history and the waiter lists change, only in
  critical sections entered with the GIL held (attached, on a free-threaded build). A
  receiver's GIL-free wait only reads count/closed and sleeps on a condition variable;
  after it, the thread retakes the GIL, runs PyErr_CheckSignals() *before* taking
  anything (a Ctrl-C leaves the event in the stream), and then takes in a normal
  critical section. A blocked sender may append its event during its GIL-free wait
  (its reference was taken before): that keeps a producer filling the buffer while the
  consumer holds the GIL. So the GC sees a graph that can only grow between its passes
  (tp_traverse below), and the history can take its own reference inside the critical
  section (hist_keep in _core.pxd says why that is safe).
* No DECREF, allocation of Python objects or Python call under the mutex: a sender takes
  the buffer's reference to the event *before* locking; a receiver gets the buffer's
  reference handed over and uses it after unlocking; evicted history entries and
  unlinked waiters are released after unlocking. (An INCREF, which runs no code, is the
  one refcount operation done under it: the history's, see hist_keep.)
* Waits happen with the GIL released, in slices of WAIT_SLICE_NS. Between slices the
  thread retakes the GIL to run signal handlers (Ctrl-C), test the cancel token and the
  deadline.
* Wake-ups cost nothing when nobody waits: the core counts parked sync waiters and keeps
  lists of parked async waiters, and signals only when one exists. Async waiters are
  woken FIFO through their parker (made by _aio), after unlocking.
* Before a thread sleeps in a GIL-free wait it may poll the stream for a few
  microseconds ("hand-off spinning", bounded and adaptive: see _core.pxd), because
  between threads each sleep costs a futex wake plus a GIL hand-off that sleeps again.
  A spinner reads the count without the mutex; every decision is retaken under it.
* An asyncio task that must wait without a timeout parks on a future that its awaitable
  yields itself (_op_park); other waits (timeouts, trio) go through _aio's coroutines.

The C-level state (the Core struct, the rings, the waiter lists, the critical-section
helpers) lives in _core.pxd; the mutex/condvar/atomics shim in _sync.h (_sync.pxd).
This file holds the Python-facing class, the waits, fork safety, GC support and the fast
event validation.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_New
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE, traverseproc, inquiry
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.sequence cimport PySequence_Fast_ITEMS
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport free, malloc

from fastevents._sync cimport (
    fe_add_i64, fe_atfork, fe_coarse_ns, fe_cpu_relax, fe_cond_broadcast, fe_cond_destroy, fe_cond_init,
    fe_cond_signal, fe_load_i64, fe_load_int, fe_load_ssize, fe_mutex_destroy,
    fe_mutex_init, fe_mutex_lock, fe_mutex_t, fe_mutex_trylock, fe_mutex_unlock, fe_now_ns,
    fe_store_int, fe_store_ssize,
)
from fastevents._core cimport (
    Core, R_CLOSED, R_DONE, R_NOMEM, R_WOULD_WAIT, WAIT_SLICE_NS, WaitNode, Wake,
    SPIN_TRIES, activity_now, after_pop, after_push, fe_incref, hist_keep, list_append,
    list_init, list_remove, pop_locked, push_locked, ring_pop, ring_push, unlink_waiters,
    unlock_core, wait_and_push, wait_for_event,
)

import os
import types

from fastevents import _aio
from fastevents._aio import AsyncioParker
from fastevents._args import (
    check_after, check_buffer_size, check_cancel, check_event, check_events,
    check_history, check_max_items, check_policy, check_timeout, refuse_copy,
    stream_error, timeout_error,
)
from fastevents._errors import Cancelled, HistoryLost, StreamClosed, StreamFull
from fastevents._event import Event
from fastevents._types import BackpressurePolicy, EventType

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    bint PyDict_Check(PyObject *o)
    PyTypeObject *Py_TYPE_PTR "Py_TYPE" (PyObject *o)
    PyObject *Py_None
    Py_ssize_t PY_SSIZE_T_MAX
    Py_ssize_t fe_refcnt "Py_REFCNT"(PyObject *o)
    void fe_decref "Py_DECREF"(PyObject *o)
    void fe_set_size "Py_SET_SIZE"(PyObject *o, Py_ssize_t n)

cdef extern from *:
    """
    /* Reading Event slots without holding references is only safe while the GIL keeps
     * every writer out; a free-threaded build validates through Event.validate(). */
    #ifdef Py_GIL_DISABLED
    #define FE_FAST_VALIDATION_BUILD 0
    #else
    #define FE_FAST_VALIDATION_BUILD 1
    #endif
    """
    bint FE_FAST_VALIDATION_BUILD

# GC slots typed without Cython's `except -1`: CPython calls them, not Cython code.
ctypedef int (*fe_visitproc)(PyObject *, void *) noexcept
ctypedef int (*fe_traverseproc)(PyObject *, fe_visitproc, void *) noexcept
ctypedef int (*fe_inquiry)(PyObject *) noexcept

cdef int POLICY_BLOCK = 0
cdef int POLICY_DROP = 1
cdef tuple _POLICIES = (BackpressurePolicy.BLOCK, BackpressurePolicy.DROP)


@cython.final
cdef class _CWaiter:
    """A parked task: its parker (made by _aio) and its node in a waiter list."""
    cdef WaitNode node
    cdef public object parker

    def __cinit__(self):
        self.node.owner = <PyObject *>self
        self.node.prev = NULL
        self.node.next = NULL
        self.node.parked = 0


cdef Wake NO_WAKE            # all zero


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Hand-off spinning (see _core.pxd) needs a second CPU for the thread it waits for:
# a stream keeps the number of usable CPUs (0 = spinning off). FASTEVENTS_SPIN=0 turns
# it off for the process (for machines that always run more threads than CPUs).
cdef int _ncpus = _usable_cpus()
cdef int _spin_default = (_ncpus if _ncpus > 1 and os.environ.get("FASTEVENTS_SPIN", "1") != "0"
                          else 0)


def _set_spinning(bint on):
    """Whether streams created from now on may spin before sleeping (the default: yes
    on a machine with 2+ usable CPUs). For A/B measurements; returns the old setting."""
    global _spin_default
    old = _spin_default >= 2
    _spin_default = _ncpus if on and _ncpus > 1 else 0
    return old


cdef inline void lock_core(Core *c) noexcept:
    """Take the mutex (GIL held), never waiting for the GIL while holding it.

    The uncontended case is one try-lock, inlined; the rest is out of line (_lock_slow)
    so that it does not weigh on every send and receive.
    """
    if not fe_mutex_trylock(&c.mu):
        _lock_slow(c)


cdef void _lock_slow(Core *c) noexcept:
    # Critical sections are a few dozen instructions, so a short spin nearly always wins.
    # Releasing the GIL instead would hand it to another thread, and getting it back can
    # cost a whole switch interval (5 ms): that ping-pong dominated many-producer runs.
    # Spinning with the GIL held is safe: no mutex holder ever needs the GIL.
    #
    # If the mutex stays busy we wait for it with the GIL released, but only until it is
    # free, and take it with a try-lock once the GIL is back: a thread that held the mutex
    # while waiting for the GIL would deadlock the fork handlers (they lock every stream
    # with the GIL held) and anyone spinning here.
    cdef int i
    while True:
        for i in range(SPIN_TRIES):
            fe_cpu_relax()
            if fe_mutex_trylock(&c.mu):
                return
        with nogil:
            fe_mutex_lock(&c.mu)
            fe_mutex_unlock(&c.mu)
        if fe_mutex_trylock(&c.mu):
            return


cdef void drop_chain(WaitNode *chain) noexcept:
    """Drop the list references of a detached chain without waking anyone."""
    cdef WaitNode *nxt
    while chain != NULL:
        nxt = chain.next
        chain.next = NULL
        fe_decref(chain.owner)
        chain = nxt


cdef WaitNode *join_chains(WaitNode *a, WaitNode *b) noexcept:
    cdef WaitNode *n = a
    if a == NULL:
        return b
    while n.next != NULL:
        n = n.next
    n.next = b
    return a


# -- fork safety: every core is on one list, locked around fork() by pthread_atfork -------
# The handlers are plain C registered with pthread_atfork, so they run inside fork()
# itself, where no Python code can run: a GC pass (or another library's at-fork hook)
# that frees a stream can never find the registry mutex held by its own thread.

cdef Core _registry            # list head only; its mutex is unused
cdef fe_mutex_t _registry_mu
_registry.reg_prev = &_registry
_registry.reg_next = &_registry
fe_mutex_init(&_registry_mu)


cdef inline bint registry_trylock() noexcept:
    return fe_mutex_trylock(&_registry_mu)


cdef void _link_core(Core *c) noexcept nogil:
    c.reg_next = &_registry
    c.reg_prev = _registry.reg_prev
    _registry.reg_prev.reg_next = c
    _registry.reg_prev = c


cdef void _unlink_core(Core *c) noexcept nogil:
    c.reg_prev.reg_next = c.reg_next
    c.reg_next.reg_prev = c.reg_prev
    c.reg_prev = NULL
    c.reg_next = NULL


cdef void _atfork_prepare() noexcept nogil:
    # Take every stream's mutex so that none is caught mid-update in the child. This
    # thread may hold the GIL: no mutex holder ever waits for it, so this cannot block
    # for longer than a critical section.
    cdef Core *c
    fe_mutex_lock(&_registry_mu)
    c = _registry.reg_next
    while c != &_registry:
        fe_mutex_lock(&c.mu)
        c = c.reg_next


cdef void _atfork_parent() noexcept nogil:
    cdef Core *c = _registry.reg_next
    while c != &_registry:
        fe_mutex_unlock(&c.mu)
        c = c.reg_next
    fe_mutex_unlock(&_registry_mu)


cdef void _atfork_child() noexcept nogil:
    # The threads that waited in the parent do not exist here: fresh mutexes and
    # condition variables, no sync waiters. Parked async waiters are sifted afterwards
    # by _after_fork_in_child (that needs Python).
    cdef Core *c = _registry.reg_next
    while c != &_registry:
        fe_mutex_init(&c.mu)
        fe_cond_init(&c.not_empty)
        fe_cond_init(&c.not_full)
        c.send_waiting = 0
        c.recv_waiting = 0
        c.send_spinning = 0
        c.recv_spinning = 0
        c = c.reg_next
    fe_mutex_init(&_registry_mu)


if hasattr(os, "fork"):
    if fe_atfork(_atfork_prepare, _atfork_parent, _atfork_child) != 0:
        raise ImportError("fastevents: pthread_atfork failed")


def _after_fork_in_child():
    """In a forked child: drop parked waiters whose task cannot run here (its loop or
    trio run belonged to another thread of the parent); the first wake-up in the child
    would otherwise be spent on a task that never runs."""
    cdef Core *c
    cdef Py_ssize_t n = 0, i = 0, j
    cdef PyObject **owners
    # Count, then allocate with the registry unlocked (an allocation may run the GC,
    # which may free a stream, which takes the registry mutex).
    fe_mutex_lock(&_registry_mu)
    c = _registry.reg_next
    while c != &_registry:
        if c.n_arecv or c.n_asend:
            n += 1
        c = c.reg_next
    fe_mutex_unlock(&_registry_mu)
    if n == 0:
        return
    owners = <PyObject **>malloc(n * sizeof(PyObject *))
    if owners == NULL:
        raise MemoryError()
    fe_mutex_lock(&_registry_mu)
    c = _registry.reg_next
    while c != &_registry and i < n:
        if (c.n_arecv or c.n_asend) and fe_refcnt(c.owner) > 0:
            fe_incref(c.owner)
            owners[i] = c.owner
            i += 1
        c = c.reg_next
    fe_mutex_unlock(&_registry_mu)
    try:
        for j in range(i):
            (<CEventStream>owners[j])._sift_after_fork()
    finally:
        for j in range(i):
            fe_decref(owners[j])
        free(owners)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- fast event validation -----------------------------------------------------------------
# Event keeps `type`, `data` and `_ts` in __slots__; reading the slots at their offsets
# spares three attribute lookups on every send. Anything unusual (a subclass, an unset
# slot, a raw int type) takes the slow path, which calls Event.validate().

cdef PyTypeObject *_EVENT_TYPE = <PyTypeObject *>Event
cdef PyTypeObject *_EVENTTYPE_TYPE = <PyTypeObject *>EventType
cdef Py_ssize_t _OFF_TYPE = -1
cdef Py_ssize_t _OFF_DATA = -1
cdef Py_ssize_t _OFF_TS = -1


cdef Py_ssize_t _slot_offset(str name) except? -2:
    descr = Event.__dict__.get(name)
    if type(descr) is not types.MemberDescriptorType:
        return -1
    return (<PyMemberDescrObject *>descr).d_member.offset


_OFF_TYPE = _slot_offset("type")
_OFF_DATA = _slot_offset("data")
_OFF_TS = _slot_offset("_ts")
cdef bint _FAST_VALIDATION = (FE_FAST_VALIDATION_BUILD and _OFF_TYPE >= 0
                              and _OFF_DATA >= 0 and _OFF_TS >= 0)


cdef inline PyObject *_slot(object obj, Py_ssize_t off) noexcept:
    return (<PyObject **>((<char *><PyObject *>obj) + off))[0]


cdef inline bint fast_valid(object ev) noexcept:
    # Borrowed reads of the slots: safe with the GIL held (no other thread can replace
    # and free a slot's value meanwhile); off on free-threaded builds (see above).
    cdef PyObject *p
    if not _FAST_VALIDATION or Py_TYPE(ev) != _EVENT_TYPE:
        return False
    p = _slot(ev, _OFF_TYPE)
    if p == NULL or Py_TYPE_PTR(p) != _EVENTTYPE_TYPE:
        return False
    p = _slot(ev, _OFF_DATA)
    if p == NULL or not PyDict_Check(p):
        return False
    p = _slot(ev, _OFF_TS)
    return p != NULL and p != Py_None


cdef inline int64_t deadline_after(double timeout) noexcept nogil:
    """The fe_now_ns() deadline for a timeout in seconds; -1 for "wait forever".

    Saturates: a timeout too long for int64 nanoseconds (~292 years) waits forever."""
    cdef int64_t now
    if timeout < 0:
        return -1
    now = fe_now_ns()
    if timeout * 1e9 >= <double>(INT64_MAX - now):
        return -1
    return now + <int64_t>(timeout * 1e9)


cdef inline int64_t next_slice(int64_t deadline) noexcept nogil:
    """How long the next GIL-free wait may be, in ns; 0 once the deadline has passed."""
    cdef int64_t remaining
    if deadline < 0:
        return WAIT_SLICE_NS
    remaining = deadline - fe_now_ns()
    if remaining <= 0:
        return 0
    return remaining if remaining < WAIT_SLICE_NS else WAIT_SLICE_NS


cdef inline double timeout_arg(object timeout) except? -2.0:
    """-1.0 for "wait forever", else seconds >= 0."""
    if timeout is None:
        return -1.0
    t = check_timeout(timeout)
    return -1.0 if t is None else <double>t


cdef object _SSIZE_MAX = PY_SSIZE_T_MAX


cdef inline Py_ssize_t items_arg(object max_items) except -1:
    """max_items, checked, clamped to what a list can hold (receive_many(2**64) works)."""
    n = check_max_items(max_items)
    return PY_SSIZE_T_MAX if n > _SSIZE_MAX else <Py_ssize_t>n


# -- GC support ----------------------------------------------------------------------------
# A task parked on a loop that is closed and dropped without cancelling it makes a cycle
# stream -> waiter -> parker -> future -> task -> coroutine -> stream; an event whose
# data refers to its own stream makes another. The stream therefore takes part in GC:
# tp_traverse visits its parked waiters, its buffered events and its history, and
# tp_clear lets go of them. What they visit only shrinks under the GIL, which the
# collector holds throughout (a free-threaded build stops the world); a blocked sender
# may append without it, which a later pass may see (harmless, see _core.pxd).

cdef fe_traverseproc _base_traverse = NULL
cdef fe_inquiry _base_clear = NULL


cdef int _visit_ring(PyObject **ring, Py_ssize_t cap, Py_ssize_t head, Py_ssize_t count,
                     fe_visitproc visit, void *arg) noexcept:
    cdef Py_ssize_t i, idx
    cdef int r
    for i in range(count):
        idx = head + i
        if idx >= cap:
            idx -= cap
        r = visit(ring[idx], arg)
        if r:
            return r
    return 0


cdef int _visit_waiters(WaitNode *head, fe_visitproc visit, void *arg) noexcept:
    cdef WaitNode *n = head.next
    cdef int r
    while n != head:
        r = visit(n.owner, arg)
        if r:
            return r
        n = n.next
    return 0


cdef int _stream_traverse(PyObject *o, fe_visitproc visit, void *arg) noexcept:
    cdef Core *c = &(<CEventStream>o).core
    cdef int r
    if _base_traverse != NULL:
        r = _base_traverse(o, visit, arg)
        if r:
            return r
    # The mutex, because a blocked sender may append (and grow the ring) without the
    # GIL. Blocking on it with the GIL held is safe: no mutex holder needs the GIL.
    fe_mutex_lock(&c.mu)
    r = _visit_waiters(&c.arecv, visit, arg)
    if not r:
        r = _visit_waiters(&c.asend, visit, arg)
    if not r:
        r = _visit_ring(c.ring, c.cap, c.head, c.count, visit, arg)
    if not r:
        r = _visit_ring(c.hist, c.hist_cap, c.hist_head, c.hist_count, visit, arg)
    fe_mutex_unlock(&c.mu)
    return r


cdef int _stream_clear(PyObject *o) noexcept:
    """Break the cycles of an unreachable stream: release its waiters, events, history."""
    cdef Core *c = &(<CEventStream>o).core
    cdef WaitNode *chain
    cdef PyObject **ring
    cdef PyObject **hist
    cdef Py_ssize_t cap, head, count, hcap, hhead, hcount
    lock_core(c)
    chain = join_chains(unlink_waiters(&c.arecv, &c.n_arecv, c.n_arecv),
                        unlink_waiters(&c.asend, &c.n_asend, c.n_asend))
    ring, cap, head, count = c.ring, c.cap, c.head, c.count
    c.ring = NULL
    c.cap = 0
    c.head = 0
    fe_store_ssize(&c.count, 0)
    hist, hcap, hhead, hcount = c.hist, c.hist_cap, c.hist_head, c.hist_count
    c.hist = NULL
    c.hist_cap = 0
    c.hist_head = 0
    c.hist_count = 0
    fe_mutex_unlock(&c.mu)
    drop_chain(chain)
    _release_ring(ring, cap, head, count)
    _release_ring(hist, hcap, hhead, hcount)
    if _base_clear != NULL:
        return _base_clear(o)
    return 0


cdef void _release_ring(PyObject **ring, Py_ssize_t cap, Py_ssize_t head,
                        Py_ssize_t count) noexcept:
    """DECREF the events of a detached ring and free it (no lock held)."""
    cdef Py_ssize_t i, idx
    for i in range(count):
        idx = head + i
        if idx >= cap:
            idx -= cap
        fe_decref(ring[idx])
    free(ring)



# -- the async fast path: one small awaitable instead of a coroutine ------------------------
# `await stream.asend(ev)` / `areceive()` / `async for` complete without suspending
# whenever the buffer has room / an event: that is the common case, and as `async def`
# methods each call built a coroutine object and its closure (~85 ns, about half of a
# producer-task -> consumer-task hand-off). _AsyncOp is what these methods return
# instead: a freelisted object holding the call's arguments that, like a coroutine, does
# nothing until it is awaited (so an un-awaited or cancelled-before-start call takes or
# sends nothing). On its first step it tries the operation; only when it would have to
# wait does it build _aio's coroutine and delegate to it (send / throw / close are
# forwarded, as `await` would). It implements the Coroutine protocol and is registered
# as a collections.abc.Coroutine, so asyncio.create_task, wait_for, anyio and trio accept
# it as they accept Cython's own coroutines. The step is also installed as the type's
# am_send slot, so an `await` (PyIter_Send) finishes without a StopIteration object.

cdef enum:
    OP_SEND = 0
    OP_RECV = 1
    OP_RECV_ENTRY = 2
    OP_ANEXT = 3
    OPS_NEW = 0
    OPS_DELEGATING = 1
    OPS_DONE = 2
    OPS_PARKED = 3             # asyncio, no timeout: parked on a future we yielded

from asyncio import _get_running_loop

cdef bint _own_park = True


def _set_own_park(bint on):
    """Whether an asyncio wait without a timeout parks on the op's own future (the
    default) or goes through _aio's coroutines, as before issue 14. For A/B
    measurements and tests of both paths; returns the old setting."""
    global _own_park
    old = _own_park
    _own_park = on
    return old

cdef extern from "Python.h":
    # PyIter_Send (3.10+): 0 = returned, 1 = yielded, -1 = error (the PySendResult values).
    int fe_iter_send "PyIter_Send"(PyObject *it, PyObject *arg, PyObject **presult) except? -1
    ctypedef struct FeAsyncMethods "PyAsyncMethods":
        void *am_send
    ctypedef struct FeTypeObject "PyTypeObject":
        FeAsyncMethods *tp_as_async

cdef class CEventStream


@cython.final
@cython.freelist(16)
cdef class _AsyncOp:
    """The awaitable returned by asend / areceive / areceive_entry / __anext__."""
    cdef CEventStream stream
    cdef object event          # asend's event
    cdef object timeout        # as given (checked when the operation starts)
    cdef object inner          # _aio's coroutine, once the operation has to wait
    cdef _CWaiter waiter       # OPS_PARKED: our waiter (its parker holds the future)
    cdef int kind
    cdef int state

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def send(self, value):
        cdef PyObject *res = NULL
        cdef int r = _op_step(<PyObject *>self, <PyObject *>value, &res)
        out = <object>res
        fe_decref(res)
        if r == 1:
            return out
        raise StopIteration(out)

    def throw(self, typ, val=None, tb=None):
        if self.state != OPS_DELEGATING:
            # Not started, parked on our own future (cancelled, say), or finished: as for
            # a coroutine, the exception comes out -- after a parked op left the stream.
            self._leave()
            if isinstance(typ, BaseException):
                raise typ
            if isinstance(val, BaseException):
                raise val
            raise typ() if val is None else typ(val)
        inner = self.inner
        try:
            if val is None and tb is None:
                return inner.throw(typ)
            return inner.throw(typ, val, tb)
        except BaseException:
            self.state = OPS_DONE
            self.inner = None
            raise

    def close(self):
        inner = self.inner
        self._leave()
        self.inner = None
        if inner is not None:
            inner.close()

    def __dealloc__(self):
        # Dropped while parked (driven by hand, say): leave the waiter list, as a
        # coroutine's finalizer closes it -- or a wake-up would go to nobody. (Here, not
        # in __del__: an object reused from the freelist keeps its "finalized" mark, so
        # tp_finalize would not run twice for one slot.) _leave neither stores nor
        # returns self; an exception in it is reported as unraisable.
        if self.waiter is not None:      # parked (only then is there a waiter)
            self._leave()

    cdef int _leave(self) except -1:
        """Finish without a result. A parked op leaves the waiter list; if a waker had
        already taken it off to wake it, that wake-up is handed on (as _aio._wait)."""
        cdef _CWaiter w = self.waiter
        self.state = OPS_DONE
        self.event = None
        self.waiter = None
        if w is not None and not self.stream._unpark_c(w):
            self.stream._pass_wake(self.kind != OP_SEND)
        return 0

    @property
    def __name__(self):
        return ("asend", "areceive", "areceive_entry", "__anext__")[self.kind]

    @property
    def __qualname__(self):
        return "CEventStream." + self.__name__


cdef int _op_step(PyObject *op_p, PyObject *arg, PyObject **result) except -1:
    """One step of an _AsyncOp: 0 = finished (result: its value), 1 = yielded (result: the
    value to pass up); -1 with an exception set. The am_send signature (PySendResult)."""
    cdef _AsyncOp op = <_AsyncOp>op_p
    cdef CEventStream s = op.stream
    cdef int64_t seq = 0
    cdef int r, policy
    cdef double t
    cdef PyObject *res = NULL
    if op.state == OPS_NEW:
        if <object>arg is not None:
            raise TypeError("can't send non-None value to a just-started coroutine")
        op.state = OPS_DONE          # unless it has to wait, below
        if op.kind == OP_SEND:
            event = op.event
            op.event = None
            if not fast_valid(event):
                check_event(event, s.stream_id, "send")
            t = timeout_arg(op.timeout)
            policy = fe_load_int(&s.core.policy)   # read once, when the send starts
            r = s._try_push(event)
            if r == R_DONE:
                return _op_sent(op, result)
            if r == R_CLOSED:
                raise s._error(StreamClosed, "send")
            if policy == POLICY_DROP:
                fe_add_i64(&s.core.dropped, 1)
                raise s._error(StreamFull, "send")
            if t < 0 and _own_park:
                loop = _get_running_loop()
                if loop is not None:
                    op.event = event         # kept for the attempts after wake-ups
                    return _op_park(op, s, loop, result)
            inner = _aio.send_blocking(s, event, None if t < 0 else t, "send")
        else:
            t = timeout_arg(op.timeout) if op.kind != OP_ANEXT else -1.0
            ev = s._try_pop(&seq)
            if ev is not None:
                return _op_received(op, seq, ev, result)
            if t < 0 and _own_park:
                loop = _get_running_loop()
                if loop is not None:
                    return _op_park(op, s, loop, result)
            # areceive's and __anext__'s value is the entry's event (taken below), and
            # __anext__ turns StreamClosed into StopAsyncIteration below: one level less.
            inner = _aio.receive_entry(s, None if t < 0 else t)
        op.inner = inner
        op.state = OPS_DELEGATING
    elif op.state == OPS_PARKED:
        # Resumed by the task, once the future is done: woken (or, driven by hand,
        # early). Leave the list if still on it, then try again, parking anew if need be.
        w = op.waiter
        op.waiter = None
        op.state = OPS_DONE
        s._unpark_c(w)
        # One attempt without a waiter first: after a wake-up it nearly always succeeds,
        # and a waiter costs a future.
        if op.kind == OP_SEND:
            r = s._try_push(op.event)
            if r == R_DONE:
                return _op_sent(op, result)
            if r == R_CLOSED:
                op.event = None
                raise s._error(StreamClosed, "send")
        else:
            ev = s._try_pop(&seq)
            if ev is not None:
                return _op_received(op, seq, ev, result)
        return _op_park(op, s, w.parker.loop, result)
    elif op.state == OPS_DONE:
        raise RuntimeError("cannot reuse already awaited coroutine")
    try:
        r = fe_iter_send(<PyObject *>op.inner, arg, &res)
    except StreamClosed:
        op.state = OPS_DONE
        op.inner = None
        if op.kind == OP_ANEXT:
            raise StopAsyncIteration from None   # closed and drained: the loop ends
        raise
    except BaseException:
        op.state = OPS_DONE
        op.inner = None
        raise
    if r == 0:
        op.state = OPS_DONE
        op.inner = None
        if op.kind == OP_RECV or op.kind == OP_ANEXT:
            ev = (<tuple>res)[1]
            fe_decref(res)
            fe_incref(<PyObject *>ev)
            res = <PyObject *>ev
    result[0] = res
    return r


cdef int _op_park(_AsyncOp op, CEventStream s, object loop, PyObject **result) except -1:
    """The common wait of an asyncio task without a timeout, with no coroutine of its
    own: park a waiter whose parker holds a future of the loop, and yield that future
    to the task as `await future` does. The task resumes the op when it is done (see
    OPS_PARKED); a cancellation is thrown in (see _AsyncOp.throw). Everything else --
    timeouts, trio -- waits in _aio's coroutines. Finishes (0) if it need not wait."""
    cdef PyObject *ev = NULL
    cdef int64_t seq = 0
    cdef int r
    cdef _CWaiter w = _CWaiter.__new__(_CWaiter)
    parker = AsyncioParker(loop)
    w.parker = parker
    op.state = OPS_DONE              # unless parked below
    if op.kind == OP_SEND:
        if s._send_or_park_c(w, op.event, "send") == R_DONE:
            return _op_sent(op, result)
    else:
        r = s._recv_or_park_c(w, &ev, &seq)
        if r == R_DONE:
            got = <object>ev
            fe_decref(ev)                 # the new reference is now `got`'s
            return _op_received(op, seq, got, result)
        if r == R_CLOSED:
            if op.kind == OP_ANEXT:
                raise StopAsyncIteration
            raise s._error(StreamClosed, "receive")
    op.waiter = w
    op.state = OPS_PARKED
    fut = parker.fut
    fut._asyncio_future_blocking = True
    fe_incref(<PyObject *>fut)
    result[0] = <PyObject *>fut
    return 1


cdef inline int _op_sent(_AsyncOp op, PyObject **result) except -1:
    """Finish an asend: its value is None."""
    op.event = None
    fe_incref(Py_None)
    result[0] = Py_None
    return 0


cdef inline int _op_received(_AsyncOp op, int64_t seq, object ev,
                             PyObject **result) except -1:
    """Finish a receive: (seq, ev) for areceive_entry, else ev."""
    out = (seq, ev) if op.kind == OP_RECV_ENTRY else ev
    fe_incref(<PyObject *>out)
    result[0] = <PyObject *>out
    return 0


(<FeTypeObject *>_AsyncOp).tp_as_async.am_send = <void *>_op_step
import collections.abc
collections.abc.Coroutine.register(_AsyncOp)


cdef inline _AsyncOp new_op(CEventStream s, int kind, object event, object timeout):
    cdef _AsyncOp op = _AsyncOp.__new__(_AsyncOp)
    op.stream = s
    op.kind = kind
    op.event = event
    op.timeout = timeout
    return op


# -- the stream ----------------------------------------------------------------------------

@cython.final
cdef class CEventStream:
    """A bounded, thread-safe event stream with sync and async APIs (compiled core)."""

    cdef Core core
    cdef readonly object stream_id
    cdef object __weakref__

    def __cinit__(self):
        cdef Core *c = &self.core
        fe_mutex_init(&c.mu)
        fe_cond_init(&c.not_empty)
        fe_cond_init(&c.not_full)
        list_init(&c.asend)
        list_init(&c.arecv)
        c.last_activity = fe_coarse_ns()
        c.size = 100
        c.spin = _spin_default
        c.spin_credit = 2
        c.owner = <PyObject *>self
        # The registry is linked with the GIL released when its mutex is busy, so that
        # this thread never waits for the GIL while holding it.
        if registry_trylock():
            _link_core(c)
            fe_mutex_unlock(&_registry_mu)
        else:
            with nogil:
                fe_mutex_lock(&_registry_mu)
                _link_core(c)
                fe_mutex_unlock(&_registry_mu)

    def __init__(self, buffer_size=100, policy=BackpressurePolicy.BLOCK, *, stream_id=None,
                 history=0):
        if stream_id is not None and not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str or None, not {type(stream_id).__name__}")
        cdef Py_ssize_t size = check_buffer_size(buffer_size)
        cdef int pol = <int>check_policy(policy)
        cdef Py_ssize_t hist = check_history(history)
        cdef Core *c = &self.core
        lock_core(c)
        fe_store_ssize(&c.size, size)
        fe_store_int(&c.policy, pol)
        if c.pushed == 0:
            # A second __init__ may not change the history of a stream in use: the
            # receive paths size their buffers by it before locking.
            fe_store_ssize(&c.hist_max, hist)
        fe_mutex_unlock(&c.mu)
        self.stream_id = stream_id

    def __dealloc__(self):
        cdef Core *c = &self.core
        if registry_trylock():
            _unlink_core(c)
            fe_mutex_unlock(&_registry_mu)
        else:
            with nogil:
                fe_mutex_lock(&_registry_mu)
                _unlink_core(c)
                fe_mutex_unlock(&_registry_mu)
        # Nobody else can reach this stream now: no locking needed.
        _release_ring(c.ring, c.cap, c.head, c.count)
        c.ring = NULL
        c.count = 0
        _release_ring(c.hist, c.hist_cap, c.hist_head, c.hist_count)
        c.hist = NULL
        c.hist_count = 0
        # Parked waiters keep their stream alive, so these lists are empty unless their
        # tasks were garbage-collected while parked.
        drop_chain(unlink_waiters(&c.arecv, &c.n_arecv, c.n_arecv))
        drop_chain(unlink_waiters(&c.asend, &c.n_asend, c.n_asend))
        if c.instance_id != NULL:
            fe_decref(c.instance_id)
            c.instance_id = NULL
        fe_cond_destroy(&c.not_empty)
        fe_cond_destroy(&c.not_full)
        fe_mutex_destroy(&c.mu)

    # -- properties ----------------------------------------------------------------------

    @property
    def buffer_size(self):
        """The most events the stream holds accepted and not yet received."""
        return fe_load_ssize(&self.core.size)

    @property
    def closed(self):
        """True once close() was called (buffered events stay receivable)."""
        return bool(fe_load_int(&self.core.closed))

    @property
    def policy(self):
        """What a send into a full stream does: BLOCK (wait) or DROP (raise)."""
        return _POLICIES[fe_load_int(&self.core.policy)]

    @policy.setter
    def policy(self, value):
        fe_store_int(&self.core.policy, <int>check_policy(value))

    def set_backpressure_policy(self, policy):
        """Set policy (the Go package's spelling)."""
        fe_store_int(&self.core.policy, <int>check_policy(policy))

    @property
    def last_seq(self):
        """The sequence number of the last accepted event (0 before any)."""
        return fe_load_i64(&self.core.pushed)

    @property
    def history(self):
        """How many of the most recently received events are kept for replay()."""
        return fe_load_ssize(&self.core.hist_max)

    @property
    def dropped(self):
        """How many events were refused because the stream was full, without waiting."""
        return fe_load_i64(&self.core.dropped)

    @property
    def instance_id(self):
        """An opaque token naming this stream instance (random, made on first read)."""
        cdef Core *c = &self.core
        cdef PyObject *p
        lock_core(c)
        p = c.instance_id
        if p != NULL:
            fe_incref(p)       # under the mutex: another reader's reference is not ours
        fe_mutex_unlock(&c.mu)
        if p != NULL:
            result = <object>p
            fe_decref(p)
            return result
        made = os.urandom(8).hex()
        lock_core(c)
        if c.instance_id == NULL:
            fe_incref(<PyObject *>made)      # the core's reference
            c.instance_id = <PyObject *>made
        p = c.instance_id
        fe_incref(p)
        fe_mutex_unlock(&c.mu)
        result = <object>p     # another thread may have won the race: use its id
        fe_decref(p)
        return result

    def __len__(self):
        return fe_load_ssize(&self.core.count)

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return (f"<CEventStream id={self.stream_id!r} {state} {len(self)}/"
                f"{self.buffer_size} policy={self.policy.name}>")

    # -- copying: refused, like the pure twin -------------------------------------------

    def __copy__(self):
        raise refuse_copy(self)

    def __deepcopy__(self, memo):
        raise refuse_copy(self)

    def __reduce__(self):
        raise refuse_copy(self)

    def __reduce_ex__(self, protocol):
        raise refuse_copy(self)

    # -- errors ----------------------------------------------------------------------------

    def _error(self, cls, op, detail=None):
        return stream_error(cls, self.stream_id, op, fe_load_ssize(&self.core.size), detail)

    def _timeout_error(self, op):
        return timeout_error(self.stream_id, op)

    cdef int _wake(self, WaitNode *chain) except -1:
        """Wake the tasks of a detached chain, FIFO (GIL held, mutex not held), dropping
        the list's references. A wake-up that a waiter cannot take (its parker says so,
        or raised) is handed on; every waiter is woken even if one raises, and the first
        exception goes to _aio.raise_after_waking at the end: a Ctrl-C is re-delivered
        as a new SIGINT rather than raised, as the caller's own operation has taken
        effect (an event taken must not be lost with the exception)."""
        cdef WaitNode *nxt
        cdef _CWaiter w
        first = None
        while chain != NULL:
            nxt = chain.next
            chain.next = NULL
            w = <_CWaiter>chain.owner
            fe_decref(chain.owner)      # the list's reference; `w` holds its own
            chain = nxt
            try:
                parker = w.parker
                if type(parker) is AsyncioParker and _get_running_loop() is parker.loop:
                    # AsyncioParker.wake()'s same-loop case, without its frame.
                    fut = parker.fut
                    if not fut.done():
                        fut.set_result(None)
                    taken = True
                else:
                    taken = parker.wake()
            except BaseException as exc:
                taken = False
                if first is None:
                    first = exc
            if not taken:
                try:
                    self._pass_wake(w.node.receiver)
                except BaseException as exc:
                    if first is None:
                        first = exc
        if first is not None:
            _aio.raise_after_waking(first)
        return 0

    cdef int _check_signals(self, bint receiver) except -1:
        """Run signal handlers after a GIL-free wait, before acting on its outcome.

        If one raises (Ctrl-C), this thread takes nothing: the event stays in the
        stream. It may have been the one sync waiter a sender signalled, so the signal
        is passed on to another waiting thread."""
        cdef Core *c = &self.core
        try:
            PyErr_CheckSignals()
        except BaseException:
            if receiver:
                if fe_load_ssize(&c.count):
                    fe_cond_signal(&c.not_empty)
            elif fe_load_ssize(&c.count) < fe_load_ssize(&c.size):
                fe_cond_signal(&c.not_full)
            raise
        return 0

    # -- sending -----------------------------------------------------------------------

    cdef int _send(self, object event, double timeout, object cancel, str op,
                   int policy) except -1:
        """Enqueue one validated event, waiting under BLOCK; raises on failure."""
        cdef Core *c = &self.core
        cdef PyObject *ev = <PyObject *>event
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        Py_INCREF(event)                      # the ring's reference, taken before locking
        lock_core(c)
        r = push_locked(c, ev, &woken)
        if r == R_DONE:
            c.last_activity = now
        unlock_core(c, &woken)
        if r == R_DONE:
            if woken.chain != NULL:
                self._wake(woken.chain)
            return 0
        if r == R_WOULD_WAIT:
            if policy == POLICY_BLOCK:
                r = self._send_wait(ev, timeout, cancel, op)
                if r == R_DONE:
                    return 0
            else:
                fe_add_i64(&c.dropped, 1)
        Py_DECREF(event)
        if r == R_CLOSED:
            raise self._error(StreamClosed, op)
        if r == R_NOMEM:
            raise MemoryError()
        if policy == POLICY_DROP:
            raise self._error(StreamFull, op)
        raise timeout_error(self.stream_id, op)

    cdef int _send_wait(self, PyObject *ev, double timeout, object cancel,
                        str op) except -1:
        """Wait for room and push ev. Returns R_DONE / R_CLOSED / R_NOMEM / R_WOULD_WAIT
        (deadline passed); on an exception (signal, cancel) the caller's ref is dropped."""
        cdef Core *c = &self.core
        cdef Wake woken = NO_WAKE
        cdef int64_t deadline = deadline_after(timeout), slice_ns
        cdef int r = R_WOULD_WAIT
        cdef bint async_pending
        while True:
            try:
                if cancel is not None and cancel.is_set():
                    raise self._error(Cancelled, op)
                slice_ns = next_slice(deadline)
                if slice_ns == 0:
                    return R_WOULD_WAIT
            except BaseException:
                Py_DECREF(<object>ev)
                raise
            async_pending = False
            with nogil:
                r = wait_and_push(c, ev, slice_ns, &woken, &async_pending)
            if r != R_WOULD_WAIT:
                if async_pending:
                    self._pass_wake(True)   # the event is in: nothing to release
                return r
            try:
                self._check_signals(False)   # Ctrl-C: this event does not go in
            except BaseException:
                Py_DECREF(<object>ev)
                raise

    def send(self, event, *, timeout=None, cancel=None):
        """Send an event; under BLOCK wait for room (see the README for every rule)."""
        if not fast_valid(event):
            check_event(event, self.stream_id, "send")
        cdef double t = timeout_arg(timeout)
        if cancel is not None:
            check_cancel(cancel)
        self._send(event, t, cancel, "send", fe_load_int(&self.core.policy))

    cdef int _try_push(self, object event) except -1:
        """One attempt to enqueue a validated event: R_DONE / R_CLOSED / R_WOULD_WAIT."""
        cdef Core *c = &self.core
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        Py_INCREF(event)              # the ring's reference, taken before locking
        lock_core(c)
        r = push_locked(c, <PyObject *>event, &woken)
        if r == R_DONE:
            c.last_activity = now
        unlock_core(c, &woken)
        if r == R_DONE:
            if woken.chain != NULL:
                self._wake(woken.chain)
            return r
        Py_DECREF(event)
        if r == R_NOMEM:
            raise MemoryError()
        return r

    def try_send(self, event):
        """Send without waiting: False when the buffer is full (any policy)."""
        if not fast_valid(event):
            check_event(event, self.stream_id, "try_send")
        cdef int r = self._try_push(event)
        if r == R_CLOSED:
            raise self._error(StreamClosed, "try_send")
        if r == R_WOULD_WAIT:
            fe_add_i64(&self.core.dropped, 1)
            return False
        return True

    def send_many(self, events, *, timeout=None):
        """Validate every event, then enqueue them in order; returns the count enqueued."""
        cdef list batch = check_events(events, self.stream_id, "send_many")
        cdef double t = timeout_arg(timeout)
        cdef int policy = fe_load_int(&self.core.policy)
        cdef Py_ssize_t n = len(batch), sent = 0
        cdef int64_t deadline = deadline_after(t)
        cdef double remaining
        try:
            while True:
                sent += self._push_some(batch, sent, "send_many")
                if sent >= n:
                    break
                if policy == POLICY_DROP:
                    fe_add_i64(&self.core.dropped, n - sent)
                    break
                # Full: wait for room for the next event (it is pushed by the wait).
                remaining = -1.0
                if deadline >= 0:
                    remaining = max(0.0, (deadline - fe_now_ns()) / 1e9)
                self._send(batch[sent], remaining, None, "send_many", POLICY_BLOCK)
                sent += 1
        except (StreamClosed, TimeoutError) as exc:
            exc.sent = sent
            raise
        return sent

    def _send_some(self, list batch not None, Py_ssize_t start, str op):
        return self._push_some(batch, start, op)

    cdef Py_ssize_t _push_some(self, list batch, Py_ssize_t start, str op) except -1:
        """Push as many of batch[start:] as fit, under one lock; returns how many.

        batch is a private list (check_events made it), so its item array is stable:
        the pointers are read under the mutex without touching a refcount."""
        cdef Core *c = &self.core
        cdef Py_ssize_t n = len(batch), i, pushed = 0
        cdef PyObject **items = PySequence_Fast_ITEMS(batch)
        cdef Wake woken = NO_WAKE
        cdef int r = R_DONE
        cdef int64_t now = activity_now(c)
        for i in range(start, n):
            fe_incref(items[i])       # the ring's references, taken before locking
        lock_core(c)
        if c.closed:
            r = R_CLOSED
        else:
            i = start
            while i < n and c.count < c.size:
                if ring_push(c, items[i]) < 0:
                    r = R_NOMEM
                    break
                i += 1
            pushed = i - start
            if pushed:
                c.last_activity = now
                after_push(c, pushed, &woken)
        unlock_core(c, &woken)
        for i in range(start + pushed, n):
            fe_decref(items[i])       # not enqueued: give the references back
        if woken.chain != NULL:
            self._wake(woken.chain)
        if r == R_CLOSED:
            raise self._error(StreamClosed, op)
        if r == R_NOMEM and pushed == 0:
            raise MemoryError()
        return pushed

    def _count_dropped(self, Py_ssize_t n):
        fe_add_i64(&self.core.dropped, n)

    # -- receiving -----------------------------------------------------------------------

    cdef inline int _take(self, PyObject **ev, int64_t *seq, Wake *woken) noexcept:
        """One attempt to take the next event (GIL held): R_DONE (ev and seq set; the
        ring's reference is the caller's), R_CLOSED (closed and drained), R_WOULD_WAIT.
        Wake-ups are left in woken for the caller, once it owns the event."""
        cdef Core *c = &self.core
        cdef PyObject *evicted = NULL
        cdef int64_t now = activity_now(c)
        cdef int r
        lock_core(c)
        r = pop_locked(c, ev, &evicted, woken)
        if r == R_DONE:
            seq[0] = c.popped
            c.last_activity = now
        unlock_core(c, woken)
        if evicted != NULL:
            fe_decref(evicted)
        return r

    cdef object _receive(self, double timeout, object cancel, str op, int64_t *seq):
        """The next event, waiting for one; None when closed and drained."""
        cdef PyObject *ev = NULL
        cdef Wake woken = NO_WAKE
        cdef int r = self._take(&ev, seq, &woken)
        if r == R_WOULD_WAIT:
            r = self._receive_wait(&ev, seq, &woken, timeout, cancel, op)
        if r == R_CLOSED:
            return None
        # The ring's reference is now ours: hand it to the caller without a net INCREF.
        result = <object>ev
        fe_decref(ev)
        if woken.chain != NULL:
            self._wake(woken.chain)
        return result

    cdef int _receive_wait(self, PyObject **ev, int64_t *seq, Wake *woken, double timeout,
                           object cancel, str op) except -1:
        cdef Core *c = &self.core
        cdef int64_t deadline = deadline_after(timeout), slice_ns
        cdef int r
        while True:
            if cancel is not None and cancel.is_set():
                raise self._error(Cancelled, op)
            slice_ns = next_slice(deadline)
            if slice_ns == 0:
                raise timeout_error(self.stream_id, op)
            with nogil:
                wait_for_event(c, slice_ns)
            # Signals first: a Ctrl-C that arrived while we waited must leave the event
            # that woke us in the stream (it is taken only below).
            self._check_signals(True)
            r = self._take(ev, seq, woken)
            if r != R_WOULD_WAIT:
                return r

    # receive and receive_entry repeat their few lines on purpose: sharing them through a
    # cdef helper measured ~2 ns slower per P1 send + receive (44.5 -> 46.5 ns).
    def receive(self, *, timeout=None, cancel=None):
        """The next event, waiting for one; StreamClosed once closed and drained."""
        cdef double t = timeout_arg(timeout)
        cdef int64_t seq = 0
        if cancel is not None:
            check_cancel(cancel)
        ev = self._receive(t, cancel, "receive", &seq)
        if ev is None:
            raise self._error(StreamClosed, "receive")
        return ev

    def receive_entry(self, *, timeout=None, cancel=None):
        """Like receive(), with the event's sequence number: (seq, event)."""
        cdef double t = timeout_arg(timeout)
        cdef int64_t seq = 0
        if cancel is not None:
            check_cancel(cancel)
        ev = self._receive(t, cancel, "receive", &seq)
        if ev is None:
            raise self._error(StreamClosed, "receive")
        return (seq, ev)

    def try_receive(self):
        """The next event if one is buffered, else None."""
        cdef int64_t seq = 0
        return self._try_pop(&seq)

    def try_receive_entry(self):
        """Like try_receive(), with the event's sequence number: (seq, event) or None."""
        cdef int64_t seq = 0
        ev = self._try_pop(&seq)
        if ev is None:
            return None
        return (seq, ev)

    cdef object _try_pop(self, int64_t *seq):
        cdef PyObject *ev = NULL
        cdef Wake woken = NO_WAKE
        if self._take(&ev, seq, &woken) != R_DONE:
            return None
        result = <object>ev
        fe_decref(ev)
        if woken.chain != NULL:
            self._wake(woken.chain)
        return result

    def receive_many(self, max_items, *, timeout=None):
        """Wait for one event, then return up to max_items buffered ([] once drained)."""
        cdef Py_ssize_t n = items_arg(max_items)
        cdef double t = timeout_arg(timeout)
        cdef Core *c = &self.core
        cdef int64_t deadline, slice_ns
        batch = self._take_many(n)
        if batch is not None:
            return batch
        deadline = deadline_after(t)
        while True:
            slice_ns = next_slice(deadline)
            if slice_ns == 0:
                raise timeout_error(self.stream_id, "receive_many")
            with nogil:
                wait_for_event(c, slice_ns)
            self._check_signals(True)
            batch = self._take_many(n)
            if batch is not None:
                return batch

    cdef object _take_many(self, Py_ssize_t n):
        """Up to n buffered events, taken in one critical section: a list; [] when
        closed and drained; None when empty (the caller may wait).

        The list is allocated before anything is taken, so a MemoryError leaves every
        event in the stream."""
        cdef Core *c = &self.core
        cdef Py_ssize_t m, k, i, nev = 0
        cdef PyObject **items
        cdef PyObject **evicted = NULL
        cdef PyObject *ev
        cdef PyObject *old
        cdef Wake woken = NO_WAKE
        cdef int64_t now = activity_now(c)
        cdef int closed
        m = fe_load_ssize(&c.count)     # a peek, to size the list; re-checked below
        if m == 0:
            lock_core(c)
            m = c.count
            closed = c.closed
            fe_mutex_unlock(&c.mu)
            if m == 0:
                return [] if closed else None
        if m > n:
            m = n
        cdef list out = PyList_New(m)
        items = PySequence_Fast_ITEMS(out)
        if fe_load_ssize(&c.hist_max):
            evicted = <PyObject **>malloc(m * sizeof(PyObject *))
            if evicted == NULL:
                raise MemoryError()
        lock_core(c)
        k = c.count if c.count < m else m
        for i in range(k):
            ev = ring_pop(c)
            items[i] = ev            # the ring's reference passes to the list
            if c.hist_max:
                old = hist_keep(c, ev)
                if old != NULL:
                    evicted[nev] = old
                    nev += 1
        if k:
            c.last_activity = now
            after_pop(c, k, &woken)
        closed = c.closed
        unlock_core(c, &woken)
        if k < m:
            fe_set_size(<PyObject *>out, k)   # the slots past k were never filled
        for i in range(nev):
            fe_decref(evicted[i])
        free(evicted)
        if k == 0:
            return [] if closed else None
        if woken.chain != NULL:
            self._wake(woken.chain)
        return out

    def replay(self, after):
        """Kept, already-received events numbered above after, as (seq, event), oldest
        first; HistoryLost when one of them is no longer kept."""
        cdef Core *c = &self.core
        cdef int64_t a, popped = 0, first_kept = 0, want = 0
        cdef Py_ssize_t m, i, idx, count = 0
        cdef PyObject **taken = NULL
        a_obj = check_after(after)
        a = INT64_MAX if a_obj > INT64_MAX else <int64_t>a_obj
        m = 0
        while True:
            if m:
                taken = <PyObject **>malloc(m * sizeof(PyObject *))
                if taken == NULL:
                    raise MemoryError()
            lock_core(c)
            popped = c.popped
            count = c.hist_count
            first_kept = popped - count + 1
            want = popped - a if a < popped else 0
            if want > count:
                fe_mutex_unlock(&c.mu)      # some of them fell out of the history
                free(taken)
                raise HistoryLost(
                    f"events {a_obj + 1}..{first_kept - 1} are no longer kept"
                    f" (history={c.hist_max})",
                    stream_id=self.stream_id, op="replay",
                    oldest=first_kept if count else None)
            if want <= m:
                for i in range(want):
                    idx = c.hist_head + count - want + i
                    if idx >= c.hist_cap:
                        idx -= c.hist_cap
                    taken[i] = c.hist[idx]
                    fe_incref(taken[i])   # our reference, before an eviction can drop it
                fe_mutex_unlock(&c.mu)
                break
            fe_mutex_unlock(&c.mu)
            free(taken)
            taken = NULL
            m = want                         # more than we made room for: again
        out = []
        try:
            for i in range(want):
                out.append((popped - want + 1 + i, <object>taken[i]))
        finally:
            for i in range(want):
                fe_decref(taken[i])
            free(taken)
        return out

    def entries(self, after=None):
        """replay(after) (when given), then receive_entry() until closed and drained."""
        if after is not None:
            after = check_after(after)
        return _aio.iter_entries(self, after)

    def aentries(self, after=None):
        """entries() for async for."""
        if after is not None:
            after = check_after(after)
        return _aio.aentries(self, after)

    def __iter__(self):
        return self

    def __next__(self):
        cdef int64_t seq = 0
        ev = self._receive(-1.0, None, "receive", &seq)
        if ev is None:
            raise StopIteration
        return ev

    def close(self):
        """Close: blocked senders get StreamClosed, receivers drain what is buffered."""
        cdef Core *c = &self.core
        cdef WaitNode *chain = NULL
        cdef int was_closed
        lock_core(c)
        was_closed = c.closed
        if not was_closed:
            fe_store_int(&c.closed, 1)
            chain = join_chains(unlink_waiters(&c.arecv, &c.n_arecv, c.n_arecv),
                                unlink_waiters(&c.asend, &c.n_asend, c.n_asend))
        fe_mutex_unlock(&c.mu)
        if was_closed:
            raise self._error(StreamClosed, "close")
        fe_cond_broadcast(&c.not_empty)
        fe_cond_broadcast(&c.not_full)
        self._wake(chain)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not fe_load_int(&self.core.closed):
            try:
                self.close()
            except StreamClosed:   # closed by another thread meanwhile
                pass

    # -- async: fast paths here, waiting in _aio -------------------------------------------

    def asend(self, event, *, timeout=None):
        """Send from a task; suspends only when it must wait for room."""
        return new_op(self, OP_SEND, event, timeout)

    def areceive(self, *, timeout=None):
        """Receive from a task; suspends only when the stream is empty."""
        return new_op(self, OP_RECV, None, timeout)

    def areceive_entry(self, *, timeout=None):
        """receive_entry() from a task."""
        return new_op(self, OP_RECV_ENTRY, None, timeout)

    async def asend_many(self, events, *, timeout=None):
        """send_many() from a task."""
        batch = check_events(events, self.stream_id, "send_many")
        cdef double t = timeout_arg(timeout)
        return await _aio.send_many(self, batch, None if t < 0 else t)

    async def areceive_many(self, max_items, *, timeout=None):
        """receive_many() from a task."""
        cdef Py_ssize_t n = items_arg(max_items)
        cdef double t = timeout_arg(timeout)
        batch = self._take_many(n)
        if batch is not None:
            return batch
        return await _aio.receive_many(self, n, None if t < 0 else t)

    def __aiter__(self):
        return self

    def __anext__(self):
        return new_op(self, OP_ANEXT, None, None)

    # -- primitives for _aio (see its docstring) -------------------------------------------

    def _new_waiter(self, parker):
        cdef _CWaiter w = _CWaiter.__new__(_CWaiter)
        w.parker = parker
        return w

    def _recv_or_park(self, _CWaiter w):
        cdef PyObject *ev = NULL
        cdef int64_t seq = 0
        cdef int r = self._recv_or_park_c(w, &ev, &seq)
        if r == R_DONE:
            result = <object>ev
            fe_decref(ev)
            return (_aio.GOT, seq, result)
        if r == R_CLOSED:
            return (_aio.CLOSED, 0, None)
        return (_aio.EMPTY if w is None else _aio.PARKED, 0, None)

    cdef int _recv_or_park_c(self, _CWaiter w, PyObject **out, int64_t *seq) except -1:
        """_recv_or_park's critical section: R_DONE (out[0]: a new reference, seq set),
        R_CLOSED, or R_WOULD_WAIT (w parked, unless None)."""
        cdef Core *c = &self.core
        cdef PyObject *evicted = NULL
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        if w is not None:
            if w.node.parked:
                raise RuntimeError("waiter is already parked")
            Py_INCREF(w)           # the waiter list's reference, taken before locking
        lock_core(c)
        r = pop_locked(c, out, &evicted, &woken)
        if r == R_DONE:
            seq[0] = c.popped
            c.last_activity = now
        elif r == R_WOULD_WAIT and w is not None:
            w.node.parked = 1
            w.node.receiver = 1
            list_append(&c.arecv, &w.node)
            c.n_arecv += 1
        unlock_core(c, &woken)
        if evicted != NULL:
            fe_decref(evicted)
        if w is not None and r != R_WOULD_WAIT:
            Py_DECREF(w)
        if r == R_DONE and woken.chain != NULL:
            try:
                self._wake(woken.chain)
            except BaseException:
                fe_decref(out[0])    # the caller gets nothing: raise as before
                raise
        return r

    def _send_or_park(self, _CWaiter w, event, str op):
        cdef int r = self._send_or_park_c(w, event, op)
        if r == R_DONE:
            return _aio.SENT
        return _aio.FULL if w is None else _aio.PARKED

    cdef int _send_or_park_c(self, _CWaiter w, object event, str op) except -1:
        """_send_or_park's critical section: R_DONE or R_WOULD_WAIT (w parked, unless
        None); raises StreamClosed / MemoryError."""
        cdef Core *c = &self.core
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        if w is not None and w.node.parked:
            raise RuntimeError("waiter is already parked")
        Py_INCREF(event)
        if w is not None:
            Py_INCREF(w)
        lock_core(c)
        r = push_locked(c, <PyObject *>event, &woken)
        if r == R_DONE:
            c.last_activity = now
        elif r == R_WOULD_WAIT and w is not None:
            w.node.parked = 1
            w.node.receiver = 0
            list_append(&c.asend, &w.node)
            c.n_asend += 1
        unlock_core(c, &woken)
        if r != R_DONE:
            Py_DECREF(event)
        if w is not None and r != R_WOULD_WAIT:
            Py_DECREF(w)
        if r == R_DONE:
            if woken.chain != NULL:
                self._wake(woken.chain)
            return r
        if r == R_CLOSED:
            raise self._error(StreamClosed, op)
        if r == R_NOMEM:
            raise MemoryError()
        return r

    def _unpark(self, _CWaiter w not None):
        return self._unpark_c(w)

    cdef bint _unpark_c(self, _CWaiter w) except -1:
        cdef Core *c = &self.core
        cdef bint was_parked
        lock_core(c)
        was_parked = w.node.parked
        if was_parked:
            list_remove(&w.node)
            w.node.parked = 0
            if w.node.receiver:
                c.n_arecv -= 1
            else:
                c.n_asend -= 1
        fe_mutex_unlock(&c.mu)
        if was_parked:
            Py_DECREF(w)           # the list's reference
        return was_parked

    def _pass_wake(self, bint receivers):
        cdef Core *c = &self.core
        cdef Wake woken = NO_WAKE
        lock_core(c)
        if receivers:
            if c.count or c.closed:
                after_push(c, 1, &woken)
        elif c.count < c.size or c.closed:
            after_pop(c, 1, &woken)
        unlock_core(c, &woken)
        if woken.chain != NULL:
            self._wake(woken.chain)

    cdef int _sift_after_fork(self) except -1:
        """In a forked child: unlink the parked waiters whose parker cannot run here
        (drop them), keep the others in their order."""
        cdef Core *c = &self.core
        cdef WaitNode *chains[2]
        cdef WaitNode *node
        cdef WaitNode *nxt
        cdef WaitNode *keep
        cdef WaitNode *tail
        cdef WaitNode *heads[2]
        cdef Py_ssize_t *counts[2]
        cdef Py_ssize_t kept
        cdef int k
        heads[0] = &c.arecv
        heads[1] = &c.asend
        counts[0] = &c.n_arecv
        counts[1] = &c.n_asend
        first = None
        lock_core(c)
        chains[0] = unlink_waiters(heads[0], counts[0], counts[0][0])
        chains[1] = unlink_waiters(heads[1], counts[1], counts[1][0])
        fe_mutex_unlock(&c.mu)
        for k in range(2):
            node = chains[k]
            keep = NULL
            tail = NULL
            kept = 0
            while node != NULL:
                nxt = node.next
                node.next = NULL
                try:
                    alive = bool((<_CWaiter>node.owner).parker.alive_after_fork())
                except Exception:              # as the pure twin: cannot tell, drop it
                    alive = False
                except BaseException as exc:   # e.g. Ctrl-C: keep it, finish, re-raise
                    alive = True
                    if first is None:
                        first = exc
                if alive:
                    if tail == NULL:
                        keep = node
                    else:
                        tail.next = node
                    tail = node
                    kept += 1
                else:
                    fe_decref(node.owner)   # the list's reference: dropped
                node = nxt
            if keep != NULL:
                # Back to the front of the list, in their order, still holding the
                # list's references.
                lock_core(c)
                node = keep
                tail = heads[k].next        # anything parked meanwhile goes after
                while node != NULL:
                    nxt = node.next
                    node.parked = 1
                    node.prev = tail.prev
                    node.next = tail
                    tail.prev.next = node
                    tail.prev = node
                    node = nxt
                counts[k][0] += kept
                fe_mutex_unlock(&c.mu)
        if c.n_arecv or c.n_asend:
            # A wake-up may have been in flight to a task that is gone: give one to a
            # surviving waiter of each kind (a spurious wake-up is harmless).
            self._pass_wake(True)
            self._pass_wake(False)
        if first is not None:
            raise first
        return 0

    # -- manager hooks -----------------------------------------------------------------

    def _touch(self):
        """Record activity now, and from now on at every send and receive."""
        cdef Core *c = &self.core
        lock_core(c)
        fe_store_int(&c.track_activity, 1)
        c.last_activity = fe_coarse_ns()
        fe_mutex_unlock(&c.mu)

    # Activity is stamped only on streams someone asks about (reading the clock at every
    # send and receive would cost the hot path ~13 ns): _touch() or the first of these
    # hooks switches it on; before that, the stamp is the stream's creation.

    def _idle_seconds(self):
        """0.0 while anyone waits, else seconds since the last real operation."""
        cdef Core *c = &self.core
        cdef int64_t last
        cdef bint waiting
        lock_core(c)
        fe_store_int(&c.track_activity, 1)
        waiting = c.send_waiting or c.recv_waiting or c.n_asend or c.n_arecv
        last = c.last_activity
        fe_mutex_unlock(&c.mu)
        if waiting:
            return 0.0
        return max(0.0, (fe_coarse_ns() - last) / 1e9)

    def _waiting(self):
        """(senders, receivers) waiting now, sync and async together."""
        cdef Core *c = &self.core
        cdef Py_ssize_t senders, receivers
        lock_core(c)
        senders = c.send_waiting + c.n_asend
        receivers = c.recv_waiting + c.n_arecv
        fe_mutex_unlock(&c.mu)
        return (senders, receivers)

    def _last_activity_age(self):
        """Seconds since the last real operation (waiters do not count)."""
        cdef Core *c = &self.core
        cdef int64_t last
        lock_core(c)
        fe_store_int(&c.track_activity, 1)
        last = c.last_activity
        fe_mutex_unlock(&c.mu)
        return max(0.0, (fe_coarse_ns() - last) / 1e9)


_base_traverse = <fe_traverseproc>(<PyTypeObject *>CEventStream).tp_traverse
_base_clear = <fe_inquiry>(<PyTypeObject *>CEventStream).tp_clear
(<PyTypeObject *>CEventStream).tp_traverse = <traverseproc>_stream_traverse
(<PyTypeObject *>CEventStream).tp_clear = <inquiry>_stream_clear
