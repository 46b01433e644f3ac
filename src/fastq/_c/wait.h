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
 */
#ifndef FASTQ_WAIT_H
#define FASTQ_WAIT_H

#include <Python.h>
#include <pythread.h>
#include <math.h>

typedef struct {
    PyThread_type_lock sem;
    int waiters;
    int signaled;
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
}

static inline void fq_cond_signal(fq_cond *c)
{
    if (c->waiters > 0 && !c->signaled) {
        c->signaled = 1;
        PyThread_release_lock(c->sem);
    }
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
