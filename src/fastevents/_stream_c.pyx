# cython: language_level=3
"""The compiled stream twin: a ring of PyObject* under a C mutex and two condition variables.

Locking discipline (the reason for most of the shape of this file):

* The GIL is never held while *blocking* on the mutex: we try-lock, and only if that fails
  release the GIL and lock. So a thread holding the mutex never needs the GIL to finish.
* Nothing touches a refcount or takes the GIL while holding the mutex. A sender takes the
  buffer's reference to the event *before* locking; a receiver gets the buffer's reference
  handed over and only uses it after unlocking. Parked asyncio waiters are linked into
  intrusive C lists whose reference is likewise taken before / dropped after the lock.
* Waits happen with the GIL released, in slices of WAIT_SLICE_NS. Between slices the
  thread retakes the GIL to run signal handlers (Ctrl-C), test the cancel token and the
  deadline.
* Wake-ups cost nothing when nobody waits: the core counts parked sync waiters and keeps
  lists of parked async waiters, and signals only when one exists.

The C-level state (the Core struct, the ring, the waiter lists, the critical-section
helpers) lives in _core.pxd; the mutex/condvar shim in _sync.h, declared in _sync.pxd.
This file holds the Python-facing class, the waits that release the GIL, fork safety
and the fast event validation.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from fastevents._sync cimport (
    fe_cond_broadcast, fe_cond_init, fe_cond_t, fe_cond_timedwait, fe_coarse_ns,
    fe_mutex_init, fe_mutex_lock, fe_mutex_t, fe_mutex_trylock, fe_mutex_unlock, fe_now_ns,
)
from fastevents._core cimport (
    Core, R_CLOSED, R_DONE, R_NOMEM, R_WOULD_WAIT, WAIT_SLICE_NS, WaitNode, Wake,
    activity_now, after_pop, after_push, list_append, list_init, list_remove, lock_core,
    pop_locked, push_locked, ring_pop, ring_push, unlink_waiters, unlock_core,
)

import os
import types
from asyncio import _get_running_loop

from fastevents import _aio
from fastevents._args import (
    check_buffer_size, check_cancel, check_event, check_events, check_max_items,
    check_policy, check_timeout, stream_error, timeout_error,
)
from fastevents._errors import Cancelled, StreamClosed, StreamFull
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

cdef int POLICY_BLOCK = 0
cdef int POLICY_DROP = 1
cdef tuple _POLICIES = (BackpressurePolicy.BLOCK, BackpressurePolicy.DROP)


@cython.final
cdef class _CWaiter:
    """A parked task: its loop, the future it awaits, and its node in a waiter list."""
    cdef WaitNode node
    cdef public object loop
    cdef public object fut

    def __cinit__(self):
        self.node.owner = <PyObject *>self
        self.node.prev = NULL
        self.node.next = NULL
        self.node.parked = 0


cdef Wake NO_WAKE            # all zero


cdef bint wake_one(_CWaiter w) noexcept:
    """Wake a parked task (GIL held, mutex not held); mirrors _aio.wake in C calls.

    noexcept: a failure to wake is reported as unraisable, never raised from a send or
    receive that has already succeeded. False: the waiter's loop is closed.
    """
    fut = w.fut
    if _get_running_loop() is w.loop:
        # Same thread as the waiter's loop: no need for the self-pipe round trip.
        if not fut.done():
            fut.set_result(None)
        return True
    try:
        w.loop.call_soon_threadsafe(_aio.resolve, fut)
    except RuntimeError:
        return False
    return True


cdef void drop_chain(WaitNode *chain) noexcept:
    """Drop the list references of a detached chain without waking anyone."""
    cdef WaitNode *nxt
    while chain != NULL:
        nxt = chain.next
        chain.next = NULL
        Py_DECREF(<object>chain.owner)
        chain = nxt


# -- fork safety: every core is on one list, locked around fork() -------------------------

cdef Core _registry            # list head only; its mutex is unused
cdef fe_mutex_t _registry_mu
_registry.reg_prev = &_registry
_registry.reg_next = &_registry
fe_mutex_init(&_registry_mu)


cdef inline void registry_lock() noexcept:
    if not fe_mutex_trylock(&_registry_mu):
        with nogil:
            fe_mutex_lock(&_registry_mu)


def _fork_before():
    # Take every stream's mutex so that none is caught mid-update in the child. This is
    # the one place that holds mutexes while retaking the GIL: it cannot deadlock,
    # because no thread ever blocks on a stream mutex while it holds the GIL.
    cdef Core *c
    with nogil:
        fe_mutex_lock(&_registry_mu)
        c = _registry.reg_next
        while c != &_registry:
            fe_mutex_lock(&c.mu)
            c = c.reg_next


def _fork_after_in_parent():
    cdef Core *c = _registry.reg_next
    while c != &_registry:
        fe_mutex_unlock(&c.mu)
        c = c.reg_next
    fe_mutex_unlock(&_registry_mu)


def _fork_after_in_child():
    # The threads that waited in the parent do not exist here: fresh condition variables,
    # no sync waiters. Parked asyncio waiters stay (their loop may be this thread's).
    cdef Core *c = _registry.reg_next
    while c != &_registry:
        fe_mutex_unlock(&c.mu)
        fe_cond_init(&c.not_empty)
        fe_cond_init(&c.not_full)
        c.send_waiting = 0
        c.recv_waiting = 0
        c = c.reg_next
    fe_mutex_unlock(&_registry_mu)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_fork_before, after_in_parent=_fork_after_in_parent,
                        after_in_child=_fork_after_in_child)


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
cdef bint _FAST_VALIDATION = _OFF_TYPE >= 0 and _OFF_DATA >= 0 and _OFF_TS >= 0


cdef inline PyObject *_slot(object obj, Py_ssize_t off) noexcept:
    return (<PyObject **>((<char *><PyObject *>obj) + off))[0]


cdef inline bint fast_valid(object ev) noexcept:
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
    """The fe_now_ns() deadline for a timeout in seconds; -1 for "wait forever"."""
    return fe_now_ns() + <int64_t>(timeout * 1e9) if timeout >= 0 else -1


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


# -- the stream ----------------------------------------------------------------------------

@cython.final
# no_gc: the only Python attribute is the str stream_id, so the stream saves the 16-byte GC
# header (P7). The ring's events are not traversed: a cycle through a buffered event
# whose data refers back to its own stream is not collected; close and drain such a
# stream (or do not put a stream inside an event).
@cython.no_gc
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
        registry_lock()
        c.reg_next = &_registry
        c.reg_prev = _registry.reg_prev
        _registry.reg_prev.reg_next = c
        _registry.reg_prev = c
        fe_mutex_unlock(&_registry_mu)

    def __init__(self, buffer_size=100, policy=BackpressurePolicy.BLOCK, *, stream_id=None):
        if stream_id is not None and not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str or None, not {type(stream_id).__name__}")
        size = check_buffer_size(buffer_size)
        pol = check_policy(policy)
        self.core.size = size
        self.core.policy = <int>pol
        self.stream_id = stream_id

    def __dealloc__(self):
        cdef Core *c = &self.core
        registry_lock()
        c.reg_prev.reg_next = c.reg_next
        c.reg_next.reg_prev = c.reg_prev
        fe_mutex_unlock(&_registry_mu)
        # Nobody else can reach this stream now: no locking needed.
        while c.count:
            Py_DECREF(<object>ring_pop(c))
        free(c.ring)
        c.ring = NULL
        # Parked waiters keep their stream alive, so these lists are empty unless their
        # tasks were garbage-collected while parked.
        drop_chain(unlink_waiters(&c.arecv, &c.n_arecv, c.n_arecv))
        drop_chain(unlink_waiters(&c.asend, &c.n_asend, c.n_asend))

    # -- properties ----------------------------------------------------------------------

    @property
    def buffer_size(self):
        return self.core.size

    @property
    def closed(self):
        return bool(self.core.closed)

    @property
    def policy(self):
        return _POLICIES[self.core.policy]

    @policy.setter
    def policy(self, value):
        self.core.policy = <int>check_policy(value)

    def set_backpressure_policy(self, policy):
        self.core.policy = <int>check_policy(policy)

    def __len__(self):
        return self.core.count

    def __repr__(self):
        state = "closed" if self.core.closed else "open"
        return (f"<CEventStream id={self.stream_id!r} {state} {self.core.count}/"
                f"{self.core.size} policy={_POLICIES[self.core.policy].name}>")

    # -- errors ----------------------------------------------------------------------------

    def _error(self, cls, op, detail=None):
        return stream_error(cls, self.stream_id, op, self.core.size, detail)

    def _timeout_error(self, op):
        return timeout_error(self.stream_id, op)

    cdef void _wake(self, WaitNode *chain) noexcept:
        """Wake the tasks of a detached chain (GIL held, mutex not held), dropping the
        list's references; a wake-up that a closed loop cannot take is handed on."""
        cdef WaitNode *nxt
        cdef _CWaiter w
        while chain != NULL:
            nxt = chain.next
            chain.next = NULL
            w = <_CWaiter>chain.owner
            Py_DECREF(w)          # the list's reference; `w` holds its own
            if not wake_one(w):
                self._pass_wake(w.node.receiver)
            chain = nxt

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
        if r == R_WOULD_WAIT and policy == POLICY_BLOCK:
            r = self._send_wait(ev, timeout, cancel, op)
            if r == R_DONE:
                return 0
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
        while True:
            try:
                if cancel is not None and cancel.is_set():
                    raise self._error(Cancelled, op)
            except BaseException:
                Py_DECREF(<object>ev)
                raise
            slice_ns = next_slice(deadline)
            if slice_ns == 0:
                return R_WOULD_WAIT
            with nogil:
                fe_mutex_lock(&c.mu)
                r = push_locked(c, ev, &woken)
                if r == R_WOULD_WAIT:
                    c.send_waiting += 1
                    fe_cond_timedwait(&c.not_full, &c.mu, slice_ns)
                    c.send_waiting -= 1
                    r = push_locked(c, ev, &woken)
                if r == R_DONE:
                    c.last_activity = activity_now(c)
                unlock_core(c, &woken)
            if r != R_WOULD_WAIT:
                if woken.chain != NULL:
                    self._wake(woken.chain)
                return r
            try:
                PyErr_CheckSignals()   # declared `except -1`: raises, e.g. KeyboardInterrupt
            except BaseException:
                Py_DECREF(<object>ev)  # the ring's reference: this event never went in
                raise

    def send(self, event, *, timeout=None, cancel=None):
        """Send an event; under BLOCK wait for room (see the README for every rule)."""
        if not fast_valid(event):
            check_event(event, self.stream_id, "send")
        cdef double t = timeout_arg(timeout)
        if cancel is not None:
            check_cancel(cancel)
        self._send(event, t, cancel, "send", self.core.policy)

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
        return r == R_DONE

    def send_many(self, events, *, timeout=None):
        """Validate every event, then enqueue them in order; returns the count enqueued."""
        cdef list batch = check_events(events, self.stream_id, "send_many")
        cdef double t = timeout_arg(timeout)
        cdef int policy = self.core.policy
        cdef Py_ssize_t n = len(batch), sent = 0
        cdef int64_t deadline = deadline_after(t)
        cdef double remaining
        try:
            while True:
                sent += self._push_some(batch, sent, "send_many")
                if sent >= n or policy == POLICY_DROP:
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
        """Push as many of batch[start:] as fit, under one lock; returns how many."""
        cdef Core *c = &self.core
        cdef Py_ssize_t n = len(batch), i, pushed = 0
        cdef Wake woken = NO_WAKE
        cdef int r = R_DONE
        cdef int64_t now = activity_now(c)
        for i in range(start, n):
            Py_INCREF(batch[i])       # the ring's references, taken before locking
        lock_core(c)
        if c.closed:
            r = R_CLOSED
        else:
            i = start
            while i < n and c.count < c.size:
                if ring_push(c, <PyObject *>(<list>batch)[i]) < 0:
                    r = R_NOMEM
                    break
                i += 1
            pushed = i - start
            if pushed:
                c.last_activity = now
                after_push(c, pushed, &woken)
        unlock_core(c, &woken)
        for i in range(start + pushed, n):
            Py_DECREF(batch[i])       # not enqueued: give the references back
        if woken.chain != NULL:
            self._wake(woken.chain)
        if r == R_CLOSED:
            raise self._error(StreamClosed, op)
        if r == R_NOMEM and pushed == 0:
            raise MemoryError()
        return pushed

    # -- receiving -----------------------------------------------------------------------

    cdef object _receive(self, double timeout, object cancel, str op):
        """The next event, waiting for one; None when closed and drained."""
        cdef Core *c = &self.core
        cdef PyObject *ev = NULL
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        lock_core(c)
        r = pop_locked(c, &ev, &woken)
        if r == R_DONE:
            c.last_activity = now
        unlock_core(c, &woken)
        if r == R_WOULD_WAIT:
            r = self._receive_wait(&ev, &woken, timeout, cancel, op)
        if r == R_CLOSED:
            return None
        # The ring's reference is now ours: hand it to the caller without a net INCREF.
        result = <object>ev
        Py_DECREF(result)
        if woken.chain != NULL:
            self._wake(woken.chain)
        return result

    cdef int _receive_wait(self, PyObject **ev, Wake *woken, double timeout,
                           object cancel, str op) except -1:
        cdef Core *c = &self.core
        cdef int64_t deadline = deadline_after(timeout), slice_ns
        cdef int r = R_WOULD_WAIT
        while True:
            if cancel is not None and cancel.is_set():
                raise self._error(Cancelled, op)
            slice_ns = next_slice(deadline)
            if slice_ns == 0:
                raise timeout_error(self.stream_id, op)
            with nogil:
                fe_mutex_lock(&c.mu)
                r = pop_locked(c, ev, woken)
                if r == R_WOULD_WAIT:
                    c.recv_waiting += 1
                    fe_cond_timedwait(&c.not_empty, &c.mu, slice_ns)
                    c.recv_waiting -= 1
                    r = pop_locked(c, ev, woken)
                if r == R_DONE:
                    c.last_activity = activity_now(c)
                unlock_core(c, woken)
            if r != R_WOULD_WAIT:
                return r
            PyErr_CheckSignals()

    def receive(self, *, timeout=None, cancel=None):
        """The next event, waiting for one; StreamClosed once closed and drained."""
        cdef double t = timeout_arg(timeout)
        if cancel is not None:
            check_cancel(cancel)
        ev = self._receive(t, cancel, "receive")
        if ev is None:
            raise self._error(StreamClosed, "receive")
        return ev

    def try_receive(self):
        """The next event if one is buffered, else None."""
        return self._try_pop()

    cdef object _try_pop(self):
        cdef Core *c = &self.core
        cdef PyObject *ev = NULL
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        lock_core(c)
        r = pop_locked(c, &ev, &woken)
        if r == R_DONE:
            c.last_activity = now
        unlock_core(c, &woken)
        if r != R_DONE:
            return None
        result = <object>ev
        Py_DECREF(result)
        if woken.chain != NULL:
            self._wake(woken.chain)
        return result

    def receive_many(self, max_items, *, timeout=None):
        """Wait for one event, then return up to max_items buffered ([] once drained)."""
        cdef Py_ssize_t n = check_max_items(max_items)
        cdef double t = timeout_arg(timeout)
        cdef list batch = self._pop_some(n)
        if batch:
            return batch
        first = self._receive(t, None, "receive_many")
        if first is None:
            return []
        if n == 1:
            return [first]
        batch = self._pop_some(n - 1)
        batch.insert(0, first)
        return batch

    cdef list _pop_some(self, Py_ssize_t n):
        """Up to n buffered events, under one lock."""
        cdef Core *c = &self.core
        cdef Py_ssize_t k = 0, i
        cdef PyObject **taken = NULL
        cdef Wake woken = NO_WAKE
        cdef int64_t now = activity_now(c)
        if c.count == 0:       # racy peek, only to skip the work; checked again under lock
            return []
        lock_core(c)
        k = c.count if c.count < n else n
        if k:
            taken = <PyObject **>malloc(k * sizeof(PyObject *))
            if taken == NULL:
                k = 0
            for i in range(k):
                taken[i] = ring_pop(c)
            if k:
                c.last_activity = now
                after_pop(c, k, &woken)
        unlock_core(c, &woken)
        cdef list out = PyList_New(k)
        for i in range(k):
            PyList_SET_ITEM(out, i, <object>taken[i])   # steals the ring's reference
        free(taken)
        if woken.chain != NULL:
            self._wake(woken.chain)
        return out

    def __iter__(self):
        return self

    def __next__(self):
        ev = self._receive(-1.0, None, "receive")
        if ev is None:
            raise StopIteration
        return ev

    def close(self):
        """Close: blocked senders get StreamClosed, receivers drain what is buffered."""
        cdef Core *c = &self.core
        cdef WaitNode *receivers = NULL
        cdef WaitNode *senders = NULL
        cdef int was_closed
        lock_core(c)
        was_closed = c.closed
        if not was_closed:
            c.closed = 1
            receivers = unlink_waiters(&c.arecv, &c.n_arecv, c.n_arecv)
            senders = unlink_waiters(&c.asend, &c.n_asend, c.n_asend)
        fe_mutex_unlock(&c.mu)
        if was_closed:
            raise self._error(StreamClosed, "close")
        fe_cond_broadcast(&c.not_empty)
        fe_cond_broadcast(&c.not_full)
        self._wake(receivers)
        self._wake(senders)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.core.closed:
            try:
                self.close()
            except StreamClosed:   # closed by another thread meanwhile
                pass

    # -- asyncio: fast paths here, waiting in _aio -----------------------------------------

    async def asend(self, event, *, timeout=None):
        """Send from a task; suspends only when it must wait for room."""
        if not fast_valid(event):
            check_event(event, self.stream_id, "send")
        cdef double t = timeout_arg(timeout)
        cdef int policy = self.core.policy   # read once, when the send starts
        cdef int r = self._try_push(event)
        if r == R_DONE:
            return
        if r == R_CLOSED:
            raise self._error(StreamClosed, "send")
        if policy == POLICY_DROP:
            raise self._error(StreamFull, "send")
        await _aio.send_blocking(self, event, None if t < 0 else t, "send")

    async def areceive(self, *, timeout=None):
        """Receive from a task; suspends only when the stream is empty."""
        cdef double t = timeout_arg(timeout)
        ev = self._try_pop()
        if ev is not None:
            return ev
        return await _aio.receive(self, None if t < 0 else t)

    async def asend_many(self, events, *, timeout=None):
        batch = check_events(events, self.stream_id, "send_many")
        cdef double t = timeout_arg(timeout)
        return await _aio.send_many(self, batch, None if t < 0 else t)

    async def areceive_many(self, max_items, *, timeout=None):
        cdef Py_ssize_t n = check_max_items(max_items)
        cdef double t = timeout_arg(timeout)
        cdef list batch = self._pop_some(n)
        if batch:
            return batch
        return await _aio.receive_many(self, n, None if t < 0 else t)

    def __aiter__(self):
        return self

    async def __anext__(self):
        ev = self._try_pop()
        if ev is not None:
            return ev
        try:
            return await _aio.receive(self, None)
        except StreamClosed:
            raise StopAsyncIteration from None

    # -- primitives for _aio (see its docstring) -------------------------------------------

    def _new_waiter(self, loop):
        cdef _CWaiter w = _CWaiter.__new__(_CWaiter)
        w.loop = loop
        w.fut = loop.create_future()
        return w

    def _recv_or_park(self, _CWaiter w):
        cdef Core *c = &self.core
        cdef PyObject *ev = NULL
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
        if w is not None:
            Py_INCREF(w)           # the waiter list's reference, taken before locking
        lock_core(c)
        r = pop_locked(c, &ev, &woken)
        if r == R_DONE:
            c.last_activity = now
        elif r == R_WOULD_WAIT and w is not None:
            w.node.parked = 1
            w.node.receiver = 1
            list_append(&c.arecv, &w.node)
            c.n_arecv += 1
        unlock_core(c, &woken)
        if w is not None and (r != R_WOULD_WAIT):
            Py_DECREF(w)
        if r == R_DONE:
            result = <object>ev
            Py_DECREF(result)
            if woken.chain != NULL:
                self._wake(woken.chain)
            return (_aio.GOT, result)
        if r == R_CLOSED:
            return (_aio.CLOSED, None)
        return (_aio.EMPTY if w is None else _aio.PARKED, None)

    def _send_or_park(self, _CWaiter w, event, str op):
        cdef Core *c = &self.core
        cdef Wake woken = NO_WAKE
        cdef int r
        cdef int64_t now = activity_now(c)
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
            return _aio.SENT
        if r == R_CLOSED:
            raise self._error(StreamClosed, op)
        if r == R_NOMEM:
            raise MemoryError()
        return _aio.FULL if w is None else _aio.PARKED

    def _unpark(self, _CWaiter w not None):
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

    # -- manager hooks -----------------------------------------------------------------

    def _touch(self):
        """Record activity now, and from now on at every send and receive."""
        self.core.track_activity = 1
        self.core.last_activity = fe_coarse_ns()

    def _idle_seconds(self):
        cdef Core *c = &self.core
        cdef int64_t last
        cdef bint waiting
        lock_core(c)
        waiting = c.send_waiting or c.recv_waiting or c.n_asend or c.n_arecv
        last = c.last_activity
        fe_mutex_unlock(&c.mu)
        if waiting:
            return 0.0
        return max(0.0, (fe_coarse_ns() - last) / 1e9)
