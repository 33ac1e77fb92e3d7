# The compiled core's C level: the state of a stream as a plain C struct, its ring of
# PyObject*, the intrusive lists of parked asyncio waiters, and the critical-section
# helpers. Everything here is nogil except lock_core (which may release the GIL).
# See _stream_c.pyx for the locking rules these functions follow.

from cpython.object cimport PyObject
from libc.stdint cimport int64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memmove

from fastevents._sync cimport (
    fe_cond_broadcast, fe_cond_signal, fe_cond_t, fe_coarse_ns, fe_cpu_relax,
    fe_mutex_lock, fe_mutex_t, fe_mutex_trylock, fe_mutex_unlock,
)

cdef enum:
    WAIT_SLICE_NS = 50000000   # 50 ms: the latency bound for Ctrl-C / cancel / deadline
    MIN_RING = 8               # first allocation; the ring doubles up to buffer_size
    SHRINK_ABOVE = 1024        # an emptied ring larger than this is freed
    SPIN_TRIES = 64            # try-locks before waiting for a busy mutex without the GIL

# Results of one critical section.
cdef enum:
    R_DONE = 0
    R_CLOSED = 1
    R_WOULD_WAIT = 2           # full (send) / empty (receive)
    R_NOMEM = 3

# -- waiters of parked asyncio tasks -----------------------------------------------------

cdef struct WaitNode:
    WaitNode *prev
    WaitNode *next
    PyObject *owner        # the _CWaiter; the list holds one reference to it
    int parked             # changed only under the stream mutex
    int receiver


cdef inline void list_init(WaitNode *head) noexcept nogil:
    head.prev = head
    head.next = head


cdef inline void list_append(WaitNode *head, WaitNode *n) noexcept nogil:
    n.prev = head.prev
    n.next = head
    head.prev.next = n
    head.prev = n


cdef inline void list_remove(WaitNode *n) noexcept nogil:
    n.prev.next = n.next
    n.next.prev = n.prev
    n.prev = NULL
    n.next = NULL


# -- the core state, a plain C struct so that nogil code can reach all of it -------------

cdef struct Core:
    fe_mutex_t mu
    fe_cond_t not_empty
    fe_cond_t not_full
    PyObject **ring
    Py_ssize_t cap          # slots allocated (grows with use)
    Py_ssize_t head
    Py_ssize_t count
    Py_ssize_t size         # buffer_size: the bound on count
    int closed
    int policy
    Py_ssize_t send_waiting  # threads parked in a sync send / receive
    Py_ssize_t recv_waiting
    WaitNode asend           # parked asyncio senders / receivers (list heads)
    WaitNode arecv
    Py_ssize_t n_asend
    Py_ssize_t n_arecv
    int64_t last_activity    # fe_coarse_ns() of the last send / receive / touch
    int track_activity       # set by the first _touch(): only a manager reads activity
    Core *reg_prev           # every live core, for the fork handlers
    Core *reg_next


cdef inline int ring_push(Core *c, PyObject *ev) noexcept nogil:
    """Append ev (its reference passes to the ring). Mutex held, count < size."""
    cdef Py_ssize_t new_cap, tail_len, idx
    cdef PyObject **grown
    if c.count == c.cap:
        new_cap = c.cap * 2 if c.cap else MIN_RING
        if new_cap > c.size:
            new_cap = c.size
        grown = <PyObject **>realloc(c.ring, new_cap * sizeof(PyObject *))
        if grown == NULL:
            return -1
        if c.head + c.count > c.cap:
            # The ring had wrapped: move the segment [head, cap) to the end of the new room.
            tail_len = c.cap - c.head
            memmove(grown + new_cap - tail_len, grown + c.head, tail_len * sizeof(PyObject *))
            c.head = new_cap - tail_len
        c.ring = grown
        c.cap = new_cap
    idx = c.head + c.count
    if idx >= c.cap:
        idx -= c.cap
    c.ring[idx] = ev
    c.count += 1
    return 0


cdef inline PyObject *ring_pop(Core *c) noexcept nogil:
    """Take the oldest event (its reference passes to the caller). Mutex held, count > 0."""
    cdef PyObject *ev = c.ring[c.head]
    c.head += 1
    if c.head == c.cap:
        c.head = 0
    c.count -= 1
    if c.count == 0:
        c.head = 0
        if c.cap > SHRINK_ABOVE:
            # Memory follows use: a burst into a huge buffer does not pin its peak.
            free(c.ring)
            c.ring = NULL
            c.cap = 0
    return ev


cdef inline WaitNode *unlink_waiters(WaitNode *head, Py_ssize_t *n_parked,
                                     Py_ssize_t n) noexcept nogil:
    """Take up to n parked waiters off a list (mutex held) into a detached chain.

    The list's references pass to the caller, who wakes them after unlocking.
    """
    cdef WaitNode *chain = NULL
    cdef WaitNode *w
    while n > 0 and head.next != head:
        w = head.next
        list_remove(w)
        w.parked = 0
        w.next = chain
        chain = w
        n_parked[0] -= 1
        n -= 1
    return chain


cdef struct Wake:
    # Who to wake after a critical section: decided under the mutex, done after unlocking
    # it, so that a woken thread does not run straight into the mutex we still hold.
    fe_cond_t *cond          # sync waiters: signal (sig == 1) or broadcast (sig == 2)
    int sig
    WaitNode *chain          # async waiters taken off their list (see wake())



cdef inline void after_push(Core *c, Py_ssize_t n, Wake *w) noexcept nogil:
    """Plan the wake-ups of receivers after n events were added (mutex held)."""
    if c.recv_waiting:
        w.cond = &c.not_empty
        w.sig = 1 if n == 1 else 2
    if c.n_arecv:
        w.chain = unlink_waiters(&c.arecv, &c.n_arecv, n)


cdef inline void after_pop(Core *c, Py_ssize_t n, Wake *w) noexcept nogil:
    """Plan the wake-ups of senders after n events were taken (mutex held)."""
    if c.send_waiting:
        w.cond = &c.not_full
        w.sig = 1 if n == 1 else 2
    if c.n_asend:
        w.chain = unlink_waiters(&c.asend, &c.n_asend, n)


cdef inline void unlock_core(Core *c, Wake *w) noexcept nogil:
    """Release the mutex, then signal the sync waiters planned under it."""
    fe_mutex_unlock(&c.mu)
    if w.sig:
        if w.sig == 1:
            fe_cond_signal(w.cond)
        else:
            fe_cond_broadcast(w.cond)
        w.sig = 0


cdef inline int push_locked(Core *c, PyObject *ev, Wake *woken) noexcept nogil:
    if c.closed:
        return R_CLOSED
    if c.count >= c.size:
        return R_WOULD_WAIT
    if ring_push(c, ev) < 0:
        return R_NOMEM
    after_push(c, 1, woken)
    return R_DONE


cdef inline int pop_locked(Core *c, PyObject **out, Wake *woken) noexcept nogil:
    if c.count == 0:
        return R_CLOSED if c.closed else R_WOULD_WAIT
    out[0] = ring_pop(c)
    after_pop(c, 1, woken)
    return R_DONE


cdef inline int64_t activity_now(Core *c) noexcept nogil:
    # The clock is read only for streams whose activity someone tracks (a StreamManager
    # switches it on with _touch()): two reads would add ~13 ns to every send + receive.
    return fe_coarse_ns() if c.track_activity else 0


cdef inline void lock_core(Core *c) noexcept:
    """Take the mutex (GIL held); if it stays busy, wait for it with the GIL released.

    Critical sections are a few dozen instructions, so a short spin nearly always wins.
    Releasing the GIL instead would hand it to another thread, and getting it back can
    cost a whole switch interval (5 ms): that ping-pong dominated many-producer runs.
    Spinning with the GIL held is safe: no mutex holder ever needs the GIL.
    """
    cdef int i
    if fe_mutex_trylock(&c.mu):
        return
    for i in range(SPIN_TRIES):
        fe_cpu_relax()
        if fe_mutex_trylock(&c.mu):
            return
    with nogil:
        fe_mutex_lock(&c.mu)
