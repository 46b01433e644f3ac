/* Process identity, liveness and futex waits for the shared-memory ring (Linux).
 *
 * ident = pid (22 bits) | start time << 22 (38 bits, clock ticks since boot, /proc/<pid>/stat
 * field 22): it names one process for its whole life, since a reused pid has another start time.
 * A participant is dead when kill(pid, 0) fails with ESRCH, when its start time differs, or when
 * it is a zombie (state Z or X) with no thread left: a killed child its parent has not reaped yet
 * must count as dead, or a parent blocked on the zombie's record would never reap it; but a
 * process whose main thread exited while others run also shows Z, and is alive.
 * shmq.h adds a check of its own (fq_dead): a live process that no longer maps the segment (it
 * called exec, or let go of the queue) holds nothing in it either.
 *
 * The process's own ident is computed once and recomputed in a fork child by a pthread_atfork
 * handler (which also covers forks made from C). A process that cannot read its own start time
 * (forked at the fd limit) gets FQ_START_UNKNOWN: others then judge it by pid and mapping alone,
 * rather than by a start time of 0 that would make it look dead and let it be robbed.
 */
#ifndef FASTQ_PROC_H
#define FASTQ_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#define FQ_PID_BITS 22
#define FQ_PID_MASK ((UINT64_C(1) << FQ_PID_BITS) - 1)
#define FQ_START_MASK ((UINT64_C(1) << 38) - 1)
#define FQ_START_UNKNOWN FQ_START_MASK

/* Read the start of /proc/<pid>/<file> into buf, NUL-terminated: 0, or -1 if unreadable. */
static int fq_proc_read(uint32_t pid, const char *file, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/%s", (unsigned)pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* Read state (field 3) and start time (field 22) of /proc/<pid>/stat. 0, or -1 if unreadable. */
static int fq_proc_stat(uint32_t pid, char *state, uint64_t *start)
{
    char buf[1024];
    if (fq_proc_read(pid, "stat", buf, sizeof buf) < 0)
        return -1;
    char *p = strrchr(buf, ')');  /* the command name may hold spaces and parentheses */
    if (p == NULL || p[1] != ' ')
        return -1;
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

static uint64_t fq_self_ident_value;

static void fq_compute_self_ident(void)
{
    uint32_t pid = (uint32_t)getpid();
    char state;
    uint64_t start = 0;
    if (fq_proc_stat(pid, &state, &start) < 0 || (start & FQ_START_MASK) == FQ_START_UNKNOWN)
        start = FQ_START_UNKNOWN;
    fq_self_ident_value = ((start & FQ_START_MASK) << FQ_PID_BITS) | (pid & FQ_PID_MASK);
}

static int fq_ident_setup(void)
{
    fq_compute_self_ident();
    if ((getpid() & ~FQ_PID_MASK) != 0)
        return -1;  /* pid_max above 2^22: identities would not fit */
    return pthread_atfork(NULL, NULL, fq_compute_self_ident);
}

static inline uint64_t fq_self_ident(void) { return fq_self_ident_value; }

static inline uint32_t fq_ident_pid(uint64_t ident) { return (uint32_t)(ident & FQ_PID_MASK); }

static inline int fq_ident_valid(uint64_t ident)
{
    return ident != 0 && (ident >> 60) == 0 && fq_ident_pid(ident) != 0;
}

/* Threads still running in a process: the "Threads:" line of /proc/<pid>/status (a zombie leader
 * counts itself), or -1 if unreadable. */
static int fq_proc_threads(uint32_t pid)
{
    char buf[2048];
    if (fq_proc_read(pid, "status", buf, sizeof buf) < 0)
        return -1;
    char *p = strstr(buf, "\nThreads:");
    return p == NULL ? -1 : atoi(p + 9);
}

/* 1 when the process named by ident is certainly gone (or a zombie), else 0. */
static int fq_ident_dead(uint64_t ident)
{
    uint32_t pid = fq_ident_pid(ident);
    if (pid == 0)
        return 1;
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return 1;
    char state;
    uint64_t start;
    if (fq_proc_stat(pid, &state, &start) < 0)
        return 0;  /* cannot tell: presume alive */
    if ((state == 'Z' || state == 'X') && fq_proc_threads(pid) <= 1)
        return 1;  /* a zombie; a leader whose other threads run is alive */
    uint64_t known = (ident >> FQ_PID_BITS) & FQ_START_MASK;
    if (known == FQ_START_UNKNOWN)
        return 0;  /* it could not read its own start time: fq_dead's mapping check decides */
    return ((start & FQ_START_MASK) << FQ_PID_BITS | pid) != ident;
}

/* 0 if process pid maps the file (dev, ino), 1 if it certainly does not, -1 if unreadable or
 * empty (a zombie leader's maps are empty while its other threads run). */
static int fq_proc_unmapped(uint32_t pid, uint64_t dev_major, uint64_t dev_minor, uint64_t ino)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%u/maps", (unsigned)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t have = 0;
    int result = -1;  /* until a line is read */
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n < 0) {
            result = -1;
            break;
        }
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL || (n == 0 && *line)) {
            if (nl)
                *nl = '\0';
            /* start-end perms offset major:minor inode [path] */
            unsigned long long maj, mnr, in;
            result = 1;
            if (sscanf(line, "%*s %*s %*s %llx:%llx %llu", &maj, &mnr, &in) == 3 && in == ino &&
                maj == dev_major && mnr == dev_minor) {
                result = 0;
                goto out;
            }
            if (!nl)
                break;
            line = nl + 1;
        }
        if (n == 0)
            break;
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0;  /* a line longer than the buffer: not a mapping of ours */
    }
out:
    close(fd);
    return result;
}

/* The inode of this process's pid namespace, 0 if unknown. */
static uint64_t fq_pidns(void)
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) < 0)
        return 0;
    return (uint64_t)st.st_ino;
}

static inline int64_t fq_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Shared (not FUTEX_PRIVATE) futexes: the key is the memory object, so they work across
 * processes that map the same segment, forked or spawned. */
static inline void fq_futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Sleep while *word == expected, at most timeout_ns. Returns when woken, on timeout, on a
 * signal, or at once if the word has changed. */
static inline void fq_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static inline void fq_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* FASTQ_PROC_H */
