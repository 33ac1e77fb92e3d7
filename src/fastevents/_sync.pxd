# Declarations of the portable mutex / condition variable shim in _sync.h.
from libc.stdint cimport int64_t

cdef extern from "_sync.h" nogil:
    ctypedef struct fe_mutex_t:
        pass
    ctypedef struct fe_cond_t:
        pass
    void fe_mutex_init(fe_mutex_t *m)
    void fe_mutex_destroy(fe_mutex_t *m)
    void fe_mutex_lock(fe_mutex_t *m)
    void fe_mutex_lock_spin(fe_mutex_t *m)
    bint fe_mutex_trylock(fe_mutex_t *m)
    void fe_mutex_unlock(fe_mutex_t *m)
    void fe_cond_init(fe_cond_t *c)
    void fe_cond_destroy(fe_cond_t *c)
    void fe_cond_signal(fe_cond_t *c)
    void fe_cond_broadcast(fe_cond_t *c)
    void fe_cond_timedwait(fe_cond_t *c, fe_mutex_t *m, int64_t timeout_ns)
    int64_t fe_now_ns()
    int64_t fe_coarse_ns()
    void fe_cpu_relax()
    int FE_HAS_GIL
    # Relaxed atomics for Core fields read without the mutex (see _sync.h).
    Py_ssize_t fe_load_ssize(const Py_ssize_t *p)
    void fe_store_ssize(Py_ssize_t *p, Py_ssize_t v)
    int fe_load_int(const int *p)
    void fe_store_int(int *p, int v)
    int64_t fe_load_i64(const int64_t *p)
    void fe_store_i64(int64_t *p, int64_t v)
    void fe_add_i64(int64_t *p, int64_t v)
    int fe_atfork(void (*prepare)() noexcept nogil, void (*parent)() noexcept nogil,
                  void (*child)() noexcept nogil)
