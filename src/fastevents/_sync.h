/* Portable mutex / condition variable / clocks for the compiled core.
 *
 * Modeled on CPython's Python/condvar.h: pthreads with CLOCK_MONOTONIC timed waits on
 * POSIX (so a wall-clock jump can neither stretch nor cut a wait), SRWLOCK +
 * CONDITION_VARIABLE on Windows. Nothing here touches Python objects, so every function
 * may be called with the GIL released.
 */
#ifndef FASTEVENTS_SYNC_H
#define FASTEVENTS_SYNC_H

#include <stdint.h>

/* A hint to the CPU inside a spin loop (lets the other hyper-thread run). */
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#define fe_cpu_relax() _mm_pause()
#elif defined(_MSC_VER) && defined(_M_ARM64)
#include <intrin.h>
#define fe_cpu_relax() __yield()
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define fe_cpu_relax() __builtin_ia32_pause()
#elif defined(__GNUC__) && (defined(__aarch64__) || defined(__arm__))
#define fe_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define fe_cpu_relax() ((void)0)
#endif

/* Fork handlers registered in C, so that no Python code (a GC pass, another library's
 * os.register_at_fork hook) ever runs while they hold the stream mutexes. */
#ifdef _WIN32
#define fe_atfork(prepare, parent, child) 0 /* no fork() on Windows */
#else
#include <pthread.h>
#define fe_atfork(prepare, parent, child) pthread_atfork((prepare), (parent), (child))
#endif

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

typedef SRWLOCK fe_mutex_t;
typedef CONDITION_VARIABLE fe_cond_t;

static inline void fe_mutex_init(fe_mutex_t *m) { InitializeSRWLock(m); }
static inline void fe_mutex_destroy(fe_mutex_t *m) { (void)m; }
static inline void fe_mutex_lock(fe_mutex_t *m) { AcquireSRWLockExclusive(m); }
/* 1 when the lock was taken, 0 when it is held elsewhere. */
static inline int fe_mutex_trylock(fe_mutex_t *m) { return TryAcquireSRWLockExclusive(m) != 0; }
static inline void fe_mutex_unlock(fe_mutex_t *m) { ReleaseSRWLockExclusive(m); }

static inline void fe_cond_init(fe_cond_t *c) { InitializeConditionVariable(c); }
static inline void fe_cond_destroy(fe_cond_t *c) { (void)c; }
static inline void fe_cond_signal(fe_cond_t *c) { WakeConditionVariable(c); }
static inline void fe_cond_broadcast(fe_cond_t *c) { WakeAllConditionVariable(c); }
/* Wait at most timeout_ns (mutex held on entry and on return). A spurious or early
 * return is harmless: callers re-check their state after every wait. */
static inline void fe_cond_timedwait(fe_cond_t *c, fe_mutex_t *m, int64_t timeout_ns) {
    DWORD ms = timeout_ns <= 0 ? 0 : (DWORD)((timeout_ns + 999999) / 1000000);
    SleepConditionVariableSRW(c, m, ms, 0);
}
static inline int64_t fe_now_ns(void) {
    /* The frequency is fixed at boot and cheap to read: read it every time rather than
     * caching it in a static that two threads may write at once (a data race under
     * free-threading). Split like CPython's _PyTime_MulDiv: exact, and no overflow. */
    LARGE_INTEGER freq, t;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (t.QuadPart / freq.QuadPart) * 1000000000
           + (t.QuadPart % freq.QuadPart) * 1000000000 / freq.QuadPart;
}
/* Cheap clock for activity stamps, read on every send and receive. */
static inline int64_t fe_coarse_ns(void) { return (int64_t)GetTickCount64() * 1000000; }

#else /* POSIX */
#include <pthread.h>
#include <time.h>

typedef pthread_mutex_t fe_mutex_t;
typedef pthread_cond_t fe_cond_t;

static inline void fe_mutex_init(fe_mutex_t *m) { pthread_mutex_init(m, NULL); }
static inline void fe_mutex_destroy(fe_mutex_t *m) { pthread_mutex_destroy(m); }
static inline void fe_mutex_lock(fe_mutex_t *m) { pthread_mutex_lock(m); }
static inline int fe_mutex_trylock(fe_mutex_t *m) { return pthread_mutex_trylock(m) == 0; }
static inline void fe_mutex_unlock(fe_mutex_t *m) { pthread_mutex_unlock(m); }

static inline void fe_cond_init(fe_cond_t *c) {
#if defined(__APPLE__)
    /* macOS has no pthread_condattr_setclock; fe_cond_timedwait uses a relative wait. */
    pthread_cond_init(c, NULL);
#else
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
#endif
}
static inline void fe_cond_destroy(fe_cond_t *c) { pthread_cond_destroy(c); }
static inline void fe_cond_signal(fe_cond_t *c) { pthread_cond_signal(c); }
static inline void fe_cond_broadcast(fe_cond_t *c) { pthread_cond_broadcast(c); }

static inline void fe_cond_timedwait(fe_cond_t *c, fe_mutex_t *m, int64_t timeout_ns) {
    struct timespec ts;
    if (timeout_ns < 0) timeout_ns = 0;
#if defined(__APPLE__)
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    pthread_cond_timedwait_relative_np(c, m, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec += (long)(timeout_ns % 1000000000);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(c, m, &ts);
#endif
}
static inline int64_t fe_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static inline int64_t fe_coarse_ns(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* a few ns, millisecond resolution */
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
#endif /* _WIN32 */

/* 1 when a GIL serializes Python threads (then a hand-off spinner waits, after its
 * spin, until the other side releases the GIL: see _core.pxd); 0 on a free-threaded
 * build, where there is nothing to wait for. Python.h is included before this. */
#ifdef Py_GIL_DISABLED
#define FE_HAS_GIL 0
#else
#define FE_HAS_GIL 1
#endif

/* Take a mutex without the GIL, spinning on try-locks first. Every critical section
 * is a few dozen instructions, so the holder nearly always lets go within the spin:
 * a plain lock would instead sleep in the kernel and make the holder pay a futex wake
 * on unlock -- measured at ~4 such syscalls per 100-event hand-off before this. */
static inline void fe_mutex_lock_spin(fe_mutex_t *m) {
    int i;
    for (i = 0; i < 256; i++) {
        if (fe_mutex_trylock(m)) return;
        fe_cpu_relax();
    }
    fe_mutex_lock(m);
}

/* Relaxed atomic loads and stores for the few Core fields that are read without the
 * mutex (len(), closed, policy, last_seq, a racy peek before taking the lock) and for
 * the dropped counter. Every write of such a field goes through these too, so that on a
 * free-threaded build the unlocked reads are not data races; with the GIL, or on x86,
 * they compile to plain moves. Relaxed is enough: nothing is inferred from these reads
 * about other memory, and every decision that matters is taken again under the mutex.
 * (Py_ssize_t comes from Python.h, which Cython includes before this header.) */
#if defined(__GNUC__) || defined(__clang__)
static inline Py_ssize_t fe_load_ssize(const Py_ssize_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void fe_store_ssize(Py_ssize_t *p, Py_ssize_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline int fe_load_int(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void fe_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline int64_t fe_load_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void fe_store_i64(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void fe_add_i64(int64_t *p, int64_t v) { (void)__atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
#elif defined(_WIN32)
/* MSVC: aligned, word-sized volatile accesses are single-copy atomic on x86, x64, ARM64. */
static inline Py_ssize_t fe_load_ssize(const Py_ssize_t *p) { return *(const volatile Py_ssize_t *)p; }
static inline void fe_store_ssize(Py_ssize_t *p, Py_ssize_t v) { *(volatile Py_ssize_t *)p = v; }
static inline int fe_load_int(const int *p) { return *(const volatile int *)p; }
static inline void fe_store_int(int *p, int v) { *(volatile int *)p = v; }
static inline int64_t fe_load_i64(const int64_t *p) { return *(const volatile int64_t *)p; }
static inline void fe_store_i64(int64_t *p, int64_t v) { *(volatile int64_t *)p = v; }
static inline void fe_add_i64(int64_t *p, int64_t v) { (void)InterlockedExchangeAdd64((volatile LONG64 *)p, v); }
#else
#error "fastevents: no atomics for this compiler"
#endif


#endif /* FASTEVENTS_SYNC_H */
