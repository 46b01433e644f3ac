/* fq_cond: one condition of an in-process queue (not empty, not full, all tasks done).
 *
 * A PyThread lock used as a binary semaphore plus a waiter count, both changed only with the
 * GIL held. The lock is held while no wake is pending; fq_cond_signal releases it once, and only
 * when somebody waits, so a put that nobody waits for makes no system call. A woken waiter
 * re-checks its condition (wakes may be spurious or stolen) and, if the condition still holds
 * for others, signals again ("baton passing"): that is also how a shutdown wakes everybody.
 *
 * Invariant: `signaled` is 1 exactly when the lock has been released and no waiter has taken it
 * yet, so the lock is never released twice (a POSIX-semaphore lock would count up).
 *
 * Waits release the GIL, run to a monotonic deadline, and are interruptible: on EINTR the
 * waiter takes the GIL back and runs the signal handlers, so Ctrl-C raises KeyboardInterrupt.
 *
 * Event loops wait differently (fastq/_aio.py): a loop with coroutines waiting on the condition
 * registers a file descriptor (an eventfd, or a pipe's write end) that it watches; every signal
 * writes to each registered one, so a put wakes a loop without running Python code (SimpleQueue's
 * put stays reentrant). A full pipe or eventfd already holds a wake, so a failed write is ignored.
 * The list is changed with the GIL held, and only while no signal iterates it.
 */
#ifndef FASTQ_WAIT_H
#define FASTQ_WAIT_H

#include <Python.h>
#include <pythread.h>
#include <math.h>
#include <errno.h>
#ifndef _WIN32
#include <unistd.h>
#endif

typedef struct {
    int fd;
    int refs;  /* registrations of this fd: it is written to while any remain */
} fq_watch;

typedef struct {
    PyThread_type_lock sem;
    int waiters;
    int signaled;
    int nwatch;
    fq_watch *watch;  /* the event loops' fds (fastq/_aio.py), nwatch of them */
} fq_cond;

#if PY_VERSION_HEX >= 0x030D0000
typedef PyTime_t fq_time_t;
static inline fq_time_t fq_monotonic_ns(void)
{
    PyTime_t t = 0;
    (void)PyTime_MonotonicRaw(&t);
    return t;
}
#else
typedef _PyTime_t fq_time_t;
static inline fq_time_t fq_monotonic_ns(void) { return _PyTime_GetMonotonicClock(); }
#endif

#define FQ_NO_DEADLINE ((fq_time_t)-1)

static int fq_cond_init(fq_cond *c)
{
    c->waiters = 0;
    c->signaled = 0;
    c->nwatch = 0;
    c->watch = NULL;
    c->sem = PyThread_allocate_lock();
    if (c->sem == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyThread_acquire_lock(c->sem, WAIT_LOCK);
    return 0;
}

static void fq_cond_fini(fq_cond *c)
{
    if (c->sem != NULL) {
        if (!c->signaled)
            PyThread_release_lock(c->sem);
        PyThread_free_lock(c->sem);
        c->sem = NULL;
    }
    PyMem_Free(c->watch);
    c->watch = NULL;
    c->nwatch = 0;
}

static void fq_cond_notify_watchers(fq_cond *c)
{
    static const unsigned char one[8] = {1, 0, 0, 0, 0, 0, 0, 0};  /* an eventfd adds 1 */
    int saved = errno;
    for (int i = 0; i < c->nwatch; i++) {
#ifndef _WIN32  /* (Windows' loops have no add_reader: fastq/_aio.py does not register there) */
        ssize_t n = write(c->watch[i].fd, one, sizeof one);
        (void)n;
#endif
    }
    errno = saved;
}

static inline void fq_cond_signal(fq_cond *c)
{
    if (c->waiters > 0 && !c->signaled) {
        c->signaled = 1;
        PyThread_release_lock(c->sem);
    }
    if (c->nwatch)
        fq_cond_notify_watchers(c);
}

/* Add `delta` (+1 or -1) registrations of `fd`: it is written to on every signal while it has
 * any. Returns -1 with MemoryError set when the list cannot grow. */
static int fq_cond_watch(fq_cond *c, int fd, int delta)
{
    for (int i = 0; i < c->nwatch; i++) {
        if (c->watch[i].fd == fd) {
            c->watch[i].refs += delta;
            if (c->watch[i].refs <= 0)
                c->watch[i] = c->watch[--c->nwatch];
            return 0;
        }
    }
    if (delta <= 0)
        return 0;
    fq_watch *grown = PyMem_Realloc(c->watch, sizeof(fq_watch) * (size_t)(c->nwatch + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->watch = grown;
    c->watch[c->nwatch].fd = fd;
    c->watch[c->nwatch].refs = delta;
    c->nwatch++;
    return 0;
}

/* A deadline `timeout` seconds from now; FQ_NO_DEADLINE for None or one too far to matter. */
static inline fq_time_t fq_deadline(double timeout)
{
    if (!(timeout < 1e9))  /* also NaN: wait without limit */
        return FQ_NO_DEADLINE;
    return fq_monotonic_ns() + (fq_time_t)(timeout * 1e9);
}

/* Wait for a signal on c until `deadline` (FQ_NO_DEADLINE: no limit). Call with the GIL held.
 * Returns 1 when woken (re-check: maybe spurious), 0 once the deadline has passed, and -1 with
 * an exception set when a signal handler raised (Ctrl-C). */
static int fq_cond_wait(fq_cond *c, fq_time_t deadline)
{
    PY_TIMEOUT_T us = -1;
    if (deadline != FQ_NO_DEADLINE) {
        fq_time_t left = deadline - fq_monotonic_ns();
        if (left <= 0)
            return 0;
        us = (PY_TIMEOUT_T)((left + 999) / 1000);
        if (us > PY_TIMEOUT_MAX)
            us = PY_TIMEOUT_MAX;
    }
    PyLockStatus st;
    c->waiters++;
    Py_BEGIN_ALLOW_THREADS
    st = PyThread_acquire_lock_timed(c->sem, us, 1);
    Py_END_ALLOW_THREADS
    c->waiters--;
    if (st == PY_LOCK_ACQUIRED) {
        c->signaled = 0;
        return 1;
    }
    if (st == PY_LOCK_INTR)
        return PyErr_CheckSignals() < 0 ? -1 : 1;
    return 0;
}

#endif /* FASTQ_WAIT_H */
