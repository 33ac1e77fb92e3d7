# The compiled core's C level: the state of a stream as a plain C struct, its ring of
# PyObject*, the history ring, the intrusive lists of parked async waiters, and the
# critical-section helpers. See _stream_c.pyx for the locking rules these follow.
#
# Two kinds of helpers, told apart by their declaration:
# * `nogil` ones may run with the GIL released: the waits and unlock_core (which only
#   read count/closed and signal), and ring_push / push_nogil, a sender appending the
#   event it took a reference to beforehand;
# * the others remove from the ring, change the history or the waiter lists. They are
#   called only by a thread that holds the GIL (is attached, on a free-threaded build)
#   *and* the stream mutex. Because nothing is ever *removed* from what tp_traverse
#   visits without the GIL, a GC pass (which holds the GIL, and the mutex while it reads)
#   can at most see an append between two of its passes, which is harmless: the appended
#   event's reference was taken, under the GIL, before the collection began. It also
#   lets the history take its own reference inside the critical section.

from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memmove

from fastevents._sync cimport (
    fe_cond_broadcast, fe_cond_signal, fe_cond_t, fe_cond_timedwait, fe_coarse_ns,
    fe_cpu_relax, fe_load_int, fe_load_ssize, fe_mutex_lock, fe_mutex_lock_spin, fe_mutex_t,
    fe_mutex_trylock, fe_mutex_unlock, fe_now_ns, fe_store_i64, fe_store_int,
    fe_store_ssize, FE_HAS_GIL,
)

cdef extern from "Python.h":
    # A reference taken with the GIL held and the stream mutex held (see hist_keep).
    void fe_incref "Py_INCREF"(PyObject *o) noexcept

cdef enum:
    WAIT_SLICE_NS = 50000000   # 50 ms: the latency bound for Ctrl-C / cancel / deadline
    MIN_RING = 8               # first allocation; a ring doubles up to its bound
    SHRINK_ABOVE = 1024        # an emptied ring larger than this is freed
    SPIN_TRIES = 64            # try-locks before waiting for a busy mutex without the GIL
    # Hand-off spinning (see below, "hand-off spinning"):
    SPIN_NS = 50000            # the longest spin before a wait sleeps (ns);
    QUIET_NS = 2000            # the side holding the GIL counts as done with the stream
                               # once it has left the count alone this long;
    SPIN_CREDIT_MAX = 8        # spinning stays on while it pays off (credit > 0),
    SPIN_PROBE = 16            # and without credit is tried again once in this many waits;
    SPIN_PAUSES = 32           # CPU pause instructions between two looks (spin_pause).

# Results of one critical section.
cdef enum:
    R_DONE = 0
    R_CLOSED = 1
    R_WOULD_WAIT = 2           # full (send) / empty (receive)
    R_NOMEM = 3

# -- waiters of parked async tasks -------------------------------------------------------

cdef struct WaitNode:
    WaitNode *prev
    WaitNode *next
    PyObject *owner        # the _CWaiter; the list holds one reference to it
    int parked             # changed only under the stream mutex
    int receiver


cdef inline void list_init(WaitNode *head) noexcept nogil:
    head.prev = head
    head.next = head


cdef inline void list_append(WaitNode *head, WaitNode *n) noexcept:
    n.prev = head.prev
    n.next = head
    head.prev.next = n
    head.prev = n


cdef inline void list_remove(WaitNode *n) noexcept:
    n.prev.next = n.next
    n.next.prev = n.prev
    n.prev = NULL
    n.next = NULL


# -- the core state, a plain C struct so that nogil code can reach all of it -------------

cdef struct Core:
    # The fields in groups, for hand-off spinning (see below): a spinning waiter polls
    # a few fields while the thread at work writes others on every send and receive; a
    # poll of a cache line that is being written costs the writer a miss (~100 ns
    # across cores here), so what is polled must not share a line with what is written
    # per operation. Group 2 keeps them apart without padding (padding would push the
    # object past pymalloc's 512-byte limit: P7 measured 2 128 B a used stream, not
    # 1 382).
    #
    # 1. Written on every send / receive (under the mutex):
    fe_mutex_t mu
    PyObject **ring
    Py_ssize_t cap          # slots allocated (grows with use)
    Py_ssize_t head
    Py_ssize_t count        # written with fe_store_ssize: len() reads it unlocked
    int64_t last_activity    # fe_coarse_ns() of the last send / receive / touch
    # Sequence numbers need no per-event storage: the ring is FIFO, so the k-th event
    # taken is the k-th accepted one, and its number is k.
    int64_t pushed           # events accepted: last_seq (fe_store_i64, read unlocked)
    int64_t popped           # events received: the next one taken gets popped + 1
    # History: the last hist_max received events, oldest at hist[hist_head]. It holds
    # the received events numbered popped - hist_count + 1 .. popped, in order.
    PyObject **hist
    Py_ssize_t hist_cap
    Py_ssize_t hist_head
    Py_ssize_t hist_count
    # 2. Touched only when a thread sleeps or is woken, and fields fixed after creation
    #    (or changed only when streams are created and freed): 160 bytes on glibc that
    #    keep group 3 off the lines of group 1 and of the condition variables (which a
    #    signal writes: P3's consumer signals its sleeping producers all the time).
    fe_cond_t not_empty
    fe_cond_t not_full
    PyObject *instance_id    # a str made on first read (one reference), or NULL
    PyObject *owner          # the CEventStream (borrowed), for the fork-child pass
    Core *reg_prev           # every live core, for the fork handlers
    Core *reg_next
    Py_ssize_t size         # buffer_size: the bound on count
    Py_ssize_t hist_max
    int policy              # fe_store_int / fe_load_int
    int track_activity      # set by _touch() / the manager hooks (see _stream_c.pyx)
    int spin                 # the CPUs this process may use; hand-off spinning needs 2+
                             # (0: off, see _set_spinning)
    # 3. What a spinner polls, read on every operation and written seldom:
    int closed              # fe_store_int / fe_load_int
    Py_ssize_t send_waiting  # threads parked in a sync send / receive (fe_store_ssize:
    Py_ssize_t recv_waiting  # a spinner on the other side reads them unlocked)
    Py_ssize_t send_spinning # of those, the one spinning before it sleeps (0 or 1)
    Py_ssize_t recv_spinning
    int spin_credit          # see spin_claim (fe_store_int / fe_load_int)
    int spin_probe
    # 4. The rest:
    WaitNode asend           # parked async senders / receivers (list heads)
    WaitNode arecv
    Py_ssize_t n_asend
    Py_ssize_t n_arecv
    int64_t dropped          # refused under DROP / by try_send (fe_add_i64)


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
    fe_store_ssize(&c.count, c.count + 1)
    fe_store_i64(&c.pushed, c.pushed + 1)
    return 0


cdef inline PyObject *ring_pop(Core *c) noexcept:
    """Take the oldest event (its reference passes to the caller). Mutex held, count > 0."""
    cdef PyObject *ev = c.ring[c.head]
    c.head += 1
    if c.head == c.cap:
        c.head = 0
    fe_store_ssize(&c.count, c.count - 1)
    c.popped += 1
    if c.count == 0:
        c.head = 0
        if c.cap > SHRINK_ABOVE:
            # Memory follows use: a burst into a huge buffer does not pin its peak.
            free(c.ring)
            c.ring = NULL
            c.cap = 0
    return ev


cdef inline PyObject *hist_keep(Core *c, PyObject *ev) noexcept:
    """Record a just-taken event in the history (hist_max > 0; GIL and mutex held).

    Returns the evicted entry, whose reference the caller drops after unlocking, or NULL.

    The history takes its own reference here, inside the critical section, before the
    entry is visible to any other thread: so no thread can drop (evict and DECREF) an
    entry whose reference has not been taken yet. An INCREF runs no Python code and
    cannot fail. With the GIL, our thread holds it; on a free-threaded build Py_INCREF
    is atomic, and `ev` is alive (the receiver owns the ring's reference) -- so it is
    safe in both builds. DECREFs, which can run arbitrary code, still happen only after
    unlocking.
    """
    cdef PyObject *old
    cdef PyObject **grown
    cdef Py_ssize_t new_cap
    if c.hist_count < c.hist_max and c.hist_count == c.hist_cap:
        # Grow with use (before it is full the ring never wraps: hist_head is 0).
        new_cap = c.hist_cap * 2 if c.hist_cap else MIN_RING
        if new_cap > c.hist_max:
            new_cap = c.hist_max
        grown = <PyObject **>realloc(c.hist, new_cap * sizeof(PyObject *))
        if grown != NULL:
            c.hist = grown
            c.hist_cap = new_cap
    if c.hist_count < c.hist_cap:
        c.hist[c.hist_head + c.hist_count] = ev
        c.hist_count += 1
        fe_incref(ev)
        return NULL
    if c.hist_count == 0:
        # No room could be allocated: keep nothing. The history stays the contiguous
        # run of the latest received events (empty), so replay stays exact.
        return NULL
    # Full (or out of memory): the newest replaces the oldest.
    old = c.hist[c.hist_head]
    c.hist[c.hist_head] = ev
    c.hist_head += 1
    if c.hist_head == c.hist_cap:
        c.hist_head = 0
    fe_incref(ev)
    return old


cdef inline WaitNode *unlink_waiters(WaitNode *head, Py_ssize_t *n_parked,
                                     Py_ssize_t n) noexcept:
    """Take up to n parked waiters off a list (mutex held) into a detached chain, in
    the order they parked (FIFO).

    The list's references pass to the caller, who wakes them after unlocking.
    """
    cdef WaitNode *chain = NULL
    cdef WaitNode *tail = NULL
    cdef WaitNode *w
    while n > 0 and head.next != head:
        w = head.next
        list_remove(w)
        w.parked = 0
        if tail == NULL:
            chain = w
        else:
            tail.next = w
        tail = w
        n_parked[0] -= 1
        n -= 1
    return chain


cdef struct Wake:
    # Who to wake after a critical section: decided under the mutex, done after unlocking
    # it, so that a woken thread does not run straight into the mutex we still hold.
    fe_cond_t *cond          # sync waiters: signal (sig == 1) or broadcast (sig == 2)
    int sig
    WaitNode *chain          # async waiters taken off their list (see _wake)


cdef inline void after_push(Core *c, Py_ssize_t n, Wake *w) noexcept:
    """Plan the wake-ups of receivers after n events were added (mutex held).

    A spinning receiver polls the count and needs no signal: only sleepers get one."""
    if c.recv_waiting > c.recv_spinning:
        w.cond = &c.not_empty
        w.sig = 1 if n == 1 else 2
    if c.n_arecv:
        w.chain = unlink_waiters(&c.arecv, &c.n_arecv, n)


cdef inline void after_pop(Core *c, Py_ssize_t n, Wake *w) noexcept:
    """Plan the wake-ups of senders after n events were taken (mutex held; a
    spinning sender needs no signal)."""
    if c.send_waiting > c.send_spinning:
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


cdef inline int push_locked(Core *c, PyObject *ev, Wake *woken) noexcept:
    if c.closed:
        return R_CLOSED
    if c.count >= c.size:
        return R_WOULD_WAIT
    if ring_push(c, ev) < 0:
        return R_NOMEM
    after_push(c, 1, woken)
    return R_DONE


cdef inline int push_nogil(Core *c, PyObject *ev, Wake *woken,
                           bint *async_pending) noexcept nogil:
    """push_locked for a sender without the GIL (woken in its wait): async receivers are
    not unlinked here, as the waiter lists change only under the GIL; async_pending
    tells the caller to hand one a wake-up once it has the GIL back."""
    if c.closed:
        return R_CLOSED
    if c.count >= c.size:
        return R_WOULD_WAIT
    if ring_push(c, ev) < 0:
        return R_NOMEM
    if c.recv_waiting > c.recv_spinning:
        woken.cond = &c.not_empty
        woken.sig = 1
    async_pending[0] = c.n_arecv != 0
    return R_DONE


cdef inline int pop_locked(Core *c, PyObject **out, PyObject **evicted,
                           Wake *woken) noexcept:
    """Take the next event into out[0] and record it in the history; an entry the
    history evicted goes to evicted[0] (DECREF it after unlocking)."""
    if c.count == 0:
        return R_CLOSED if c.closed else R_WOULD_WAIT
    out[0] = ring_pop(c)
    if c.hist_max:
        evicted[0] = hist_keep(c, out[0])
    after_pop(c, 1, woken)
    return R_DONE


cdef inline int wait_and_push(Core *c, PyObject *ev, int64_t slice_ns, Wake *woken,
                              bint *async_pending) noexcept nogil:
    """A blocked sender's GIL-free step: push ev if there is room, else wait at most one
    slice for room and try again. Pushing here (the event's reference was taken before)
    keeps a producer filling the buffer while the consumer holds the GIL. Before it
    sleeps it may spin (see "hand-off spinning" below)."""
    cdef int r
    cdef int spun = 0
    cdef int claimed = 0
    fe_mutex_lock_spin(&c.mu)
    r = push_nogil(c, ev, woken, async_pending)
    if r == R_WOULD_WAIT:
        fe_store_ssize(&c.send_waiting, c.send_waiting + 1)
        spun = spin_first(c, 0, &c.send_spinning, slice_ns, &claimed)
        if claimed:
            r = push_nogil(c, ev, woken, async_pending)
        if r == R_WOULD_WAIT:
            spun = 0
            fe_cond_timedwait(&c.not_full, &c.mu, slice_ns)
            r = push_nogil(c, ev, woken, async_pending)
        fe_store_ssize(&c.send_waiting, c.send_waiting - 1)
    if r == R_DONE:
        c.last_activity = activity_now(c)
    unlock_core(c, woken)
    spin_after(c, claimed, spun, &c.recv_waiting)
    return r


cdef inline int64_t activity_now(Core *c) noexcept nogil:
    # The clock is read only for streams whose activity someone tracks (a StreamManager
    # switches it on with _touch()): two reads would add ~13 ns to every send + receive.
    return fe_coarse_ns() if fe_load_int(&c.track_activity) else 0


cdef inline void wait_for_event(Core *c, int64_t slice_ns) noexcept nogil:
    """A receiver's GIL-free step: wait at most one slice until an event is buffered or
    the stream is closed. Reads and waits only: the caller retakes the GIL, checks for
    signals, and only then takes, in a normal critical section (a Ctrl-C must leave the
    event in the stream). Before it sleeps it may spin (see below)."""
    cdef int spun = 0
    cdef int claimed = 0
    fe_mutex_lock_spin(&c.mu)
    if c.count == 0 and not c.closed:
        fe_store_ssize(&c.recv_waiting, c.recv_waiting + 1)
        spun = spin_first(c, 1, &c.recv_spinning, slice_ns, &claimed)
        if c.count == 0 and not c.closed:
            spun = 0
            fe_cond_timedwait(&c.not_empty, &c.mu, slice_ns)
        fe_store_ssize(&c.recv_waiting, c.recv_waiting - 1)
    fe_mutex_unlock(&c.mu)
    spin_after(c, claimed, spun, &c.send_waiting)


# -- hand-off spinning -------------------------------------------------------------------
#
# Where threads hand events to each other through a small buffer, each time it fills or
# empties one side sleeps and the other must wake it: a futex wake, then a GIL hand-off
# that puts the woken thread to sleep again on the GIL's own condition variable. On the
# 2-CPU VM of the README that is two sleeps of a few microseconds per buffer-full, most
# of the cost of a bounded hand-off (P2 at buffer 10: ~4.5 us/event sleeping, ~0.3
# spinning). So a waiter that found the stream full (empty) first polls it with the GIL
# released, and once the other side made room (pushed), goes on polling until that side
# lets go of the GIL (starts waiting itself, or leaves the stream alone), so that taking
# the GIL back does not sleep either.
#
# Bounds (the issue-14 rule: no busy loop that burns a CPU while the other side idles):
# one spinner per side per stream; at most SPIN_NS per wait, then the normal sleep;
# never on a one-CPU machine; only while it pays off: a spin that ends in a sleep halves
# the stream's credit, and with none left a wait spins only once in SPIN_PROBE (a
# consumer waiting on an idle producer spends ~3 us of CPU per wait, not 50). The price:
# where more threads are runnable than there are CPUs, a spinner takes CPU time from
# the thread it waits for (beside a CPU-bound process on the 2-CPU VM: P2 ~180 ns/event
# spinning against ~115 sleeping; quiet, 115-125 against 115-500). A spinner counts
# as a waiter (StreamInfo, the other side's exit test) but needs no condition-variable
# signal: it sees the count change itself.


cdef inline bint spin_claim(Core *c, Py_ssize_t *spinning) noexcept nogil:
    """May this waiter spin before it sleeps? (mutex held)"""
    if c.spin < 2 or spinning[0]:
        return False
    if fe_load_int(&c.spin_credit) <= 0:
        c.spin_probe += 1
        if c.spin_probe < SPIN_PROBE:
            return False
        c.spin_probe = 0
    fe_store_ssize(spinning, 1)
    return True


cdef inline int spin_first(Core *c, int event, Py_ssize_t *spinning, int64_t slice_ns,
                           int *claimed) noexcept nogil:
    """Before a waiter sleeps (mutex held, the waiter already counted): spin if it may
    (claimed[0] says whether it did), unlocking for the spin and locking again after.
    1 when the spin saw an event (event=1) / room (event=0) / close; the caller decides
    again under the mutex either way."""
    cdef int spun
    claimed[0] = spin_claim(c, spinning)
    if not claimed[0]:
        return 0
    fe_mutex_unlock(&c.mu)
    spun = spin_for(c, event, slice_ns)
    fe_mutex_lock_spin(&c.mu)
    fe_store_ssize(spinning, 0)
    return spun


cdef inline void spin_after(Core *c, int claimed, int spun,
                            Py_ssize_t *other_waiting) noexcept nogil:
    """After the wait (mutex released): if the spin paid off (spun: it did not end in a
    sleep), wait for the other side to let go of the GIL; then book the outcome."""
    if spun and FE_HAS_GIL:
        spin_while_busy(c, other_waiting)
    if claimed:
        spin_account(c, spun)


cdef inline void spin_account(Core *c, int paid) noexcept nogil:
    """After a spin (no mutex: the credit is a heuristic, read and written relaxed)."""
    cdef int credit = fe_load_int(&c.spin_credit)
    if paid:
        if credit < SPIN_CREDIT_MAX:
            credit += 1
    else:
        credit >>= 1
    fe_store_int(&c.spin_credit, credit)


cdef inline void spin_pause(int pauses) noexcept nogil:
    """Between two looks at the stream. Each look pulls the cache line that the thread
    at work writes on every send and receive away from it (~100 ns a miss across cores
    here): so look every ~0.3 us, not after every pause instruction.

    No sched_yield here, though it was measured: beside a CPU-bound process it made P2
    faster (107 ns/event against 187), but P3 (four producers) then stalled now and then
    for seconds (up to 20 us/event over a 100 000-event run, against ~300 without it),
    and on a quiet machine it slowed P3 from ~170 to ~330 ns/event."""
    cdef int i
    for i in range(pauses):
        fe_cpu_relax()


cdef inline int spin_for(Core *c, int event, int64_t slice_ns) noexcept nogil:
    """Poll (no mutex, no GIL) until an event is buffered (event=1) or there is room
    (event=0), or the stream is closed: 1; or the spin budget is spent: 0."""
    cdef int64_t end = fe_now_ns() + (SPIN_NS if SPIN_NS < slice_ns else slice_ns)
    while True:
        if fe_load_int(&c.closed):
            return 1
        if event:
            if fe_load_ssize(&c.count) > 0:
                return 1
        elif fe_load_ssize(&c.count) < fe_load_ssize(&c.size):
            return 1
        if fe_now_ns() >= end:
            return 0
        spin_pause(SPIN_PAUSES)


cdef inline void spin_while_busy(Core *c, Py_ssize_t *other_waiting) noexcept nogil:
    """After a spin that paid off, the other side holds the GIL and works the stream.
    Poll until it starts waiting itself (so it is releasing the GIL), leaves the count
    alone for QUIET_NS (busy elsewhere: stop spending CPU on it), or SPIN_NS passed.
    Its waiting count has a cache line of its own, so it is looked at often (~80 ns);
    the count, on the worker's hot line, only every 32nd look."""
    cdef Py_ssize_t w0 = fe_load_ssize(other_waiting)
    cdef Py_ssize_t last = fe_load_ssize(&c.count), n
    cdef int64_t now = fe_now_ns()
    cdef int64_t end = now + SPIN_NS, changed = now
    cdef unsigned int k = 0
    while True:
        spin_pause(SPIN_PAUSES // 4)
        if fe_load_ssize(other_waiting) != w0 or fe_load_int(&c.closed):
            return
        k += 1
        if k % 32:
            continue
        now = fe_now_ns()
        n = fe_load_ssize(&c.count)
        if n != last:
            last = n
            changed = now
        elif now - changed >= QUIET_NS:
            return
        if now >= end:
            return
