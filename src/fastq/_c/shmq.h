/* fq_shmq: the shared-memory ring behind ProcessQueue (design: docs/design/SHM-QUEUE.md).
 *
 * One segment: a 4 KiB header, then an arena of `cap` bytes (a power of two). Cursors are
 * absolute 64-bit byte positions that only grow (no ABA); a record lives at (cursor & (cap-1)),
 * 64-byte aligned, never crossing the arena's end (a PAD record fills the rest of a lap).
 *
 *   free <= head <= tail <= free + cap
 *   [free, head): claimed or skipped records, not yet released for reuse
 *   [head, tail): records waiting for a consumer (WRITING while their producer copies)
 *
 * Who writes what:
 *   producers, under the reserve lock (rlock = owner ident): a record header, then tail
 *     (release), then next_seq. The payload is copied after unlocking, then the state is CAS'd
 *     WRITING|ident -> READY|lap. The lock owner is named in the lock word, and `undo` holds
 *     {tail, next_seq} as they were when the lock was last free, so a thief can repair next_seq.
 *     The undo record takes two stores, so whoever rewrites it (unlock, a PAD, a thief) first
 *     sets FQ_LOCK_FLUX in the lock word: a thief that finds the bit knows next_seq is already
 *     right and only the undo record needs rewriting.
 *   consumers, lock-free: CAS state READY|lap -> READING|ident, CAS head forward, copy out,
 *     CAS READING|ident -> DONE|lap, then walk `free` forward over DONE/PAD/ABANDONED records.
 *
 * What a SIGKILL leaves behind, and who repairs it:
 *   - a producer holding the lock: the next producer that waits a whole slice finds the owner
 *     dead, steals the lock with a CAS on its exact value and repairs next_seq from undo;
 *   - a producer that died copying: its WRITING record reaches head; a consumer that has seen
 *     it there for a slice finds the owner dead and marks it ABANDONED (the message is lost);
 *   - a consumer that died reading: its READING record stops `free`; a producer that finds the
 *     ring full, or a consumer releasing a record (once a slice), checks the reader, and marks a
 *     dead one's record DONE (the message is lost) and unlinks the spill segment it names;
 *   - a waiter that died asleep: its marks in *_waiters stay until a sweep of the participant
 *     table (fq_slot_sweep) finds its slot's owner dead and takes them back; a kill between the
 *     two increments of a mark leaves an overcount (spurious wakes), never an undercount.
 *   - a process whose backlog (items put() accepted, not yet in the ring) died with it: the
 *     sweep drops its slot's pending count, so join() does not wait for items that are gone.
 *
 * Liveness (fq_dead): the owner's pid is gone, its start time differs, it is a zombie, or it no
 * longer maps this segment (it called exec, or let go of the queue).
 *
 * Crash points: built with FASTQ_CRASHPOINTS (tests only: tools/sanitize), fq_cp() before every
 * store or CAS to the segment counts, and an armed process stops dead (SIGKILL, or SIGSTOP) at
 * its Nth point; tests/test_crashpoints.py enumerates them.
 *
 * Counts are derived: items = next_seq - seq(record at head), unfinished = next_seq - dones.
 * Every value read from the segment is loaded once into a local and validated before use;
 * anything no correct participant could have written gives FQ_CORRUPT.
 *
 * No function here touches Python: the Cython face calls them without the GIL and loops,
 * re-taking the GIL between slices to run signal handlers and check deadlines.
 */
#ifndef FASTQ_SHMQ_H
#define FASTQ_SHMQ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "proc.h"

#define FQ_SHM_MAGIC UINT64_C(0x4D48535154534146) /* "FASTQSHM" little-endian */
#define FQ_SHM_VERSION 3
#define FQ_SHM_HEADER 8192
#define FQ_REC_HDR 32
#define FQ_SLICE_NS INT64_C(20000000) /* bounds crash recovery, shutdown and Ctrl-C latency */
#define FQ_MAX_NBUFS 4096
#define FQ_SLOTS 256          /* participants: IterableQueue producers and member handles */
#define FQ_MAX_PRODUCERS 128 /* of them producers, so members always find room beside them */
#define FQ_ROLE_PRODUCER UINT64_C(1) /* IterableQueue's producers */
#define FQ_ROLE_MEMBER UINT64_C(2)   /* a process's handle: its sleepers and its backlog */
#define FQ_ROLE_SWEEP UINT64_C(3)    /* a dead owner's slot being cleared by the ident named */
#define FQ_LOCK_FLUX (UINT64_C(1) << 60) /* in rlock: the undo record is being rewritten */
#define FQ_SHUT_GRACEFUL 1
#define FQ_SHUT_IMMEDIATE 2
#define FQ_POOL 16                         /* pooled spill segments per queue */
#define FQ_POOL_IDLE_NS INT64_C(2000000000) /* a pooled segment unused this long is removed */

enum { FQ_OK = 0, FQ_AGAIN = 1, FQ_SHUT = 2, FQ_CORRUPT = 3, FQ_LOCKED = 4, FQ_TOOBIG = 5 };
enum { FQ_WRITING = 1, FQ_READY = 2, FQ_READING = 3, FQ_DONE = 4, FQ_PAD = 5, FQ_ABANDONED = 6 };
enum { FQ_KIND_PICKLE = 0, FQ_KIND_BYTES = 1, FQ_KIND_BYTEARRAY = 2, FQ_KIND_SPILL = 3 };
enum { FQ_POOL_EMPTY = 0, FQ_POOL_FREE = 1, FQ_POOL_TAKEN = 2, FQ_POOL_FULL = 3, FQ_POOL_HELD = 4 };

#define FQ_LOW60 ((UINT64_C(1) << 60) - 1)
#define FQ_LINE _Alignas(64)

/* A pooled spill segment (see "spill pool" below). */
typedef struct {
    _Atomic uint64_t state;   /* FQ_POOL_* << 60 | ident (TAKEN) or record cursor (FULL) */
    _Atomic uint64_t gen;     /* the segment's generation: a new segment, a new name */
    _Atomic uint64_t size;    /* its bytes; 0 while none is made */
    _Atomic int64_t used_at;  /* when it was last handed back (monotonic ns) */
} fq_pool_entry;

typedef struct {
    FQ_LINE uint64_t magic;
    uint32_t version, header_size;
    uint64_t cap, maxsize, pidns, flags;
    FQ_LINE _Atomic uint64_t tail;        /* producers' line */
    _Atomic uint64_t next_seq;
    _Atomic uint64_t rlock;
    _Atomic uint64_t undo_tail, undo_seq;
    FQ_LINE _Atomic uint64_t head;        /* consumers' line */
    FQ_LINE _Atomic uint64_t free;        /* release line */
    _Atomic uint64_t dones;
    FQ_LINE _Atomic uint32_t ne_seq, ne_waiters;
    FQ_LINE _Atomic uint32_t nf_seq, nf_waiters;
    FQ_LINE _Atomic uint32_t jd_seq, jd_waiters;
    FQ_LINE _Atomic uint32_t lk_seq, lk_waiters;
    FQ_LINE _Atomic uint32_t shutdown;
    _Atomic uint32_t endpoints_closed;    /* IterableQueue: no producer will register any more */
    _Atomic int64_t sweep_at;             /* when a process last swept sleepers' marks (monotonic ns) */
    FQ_LINE _Atomic uint64_t slots[FQ_SLOTS]; /* participants: role << 60 | ident, 0 = free */
    _Atomic uint64_t slot_pending[FQ_SLOTS];  /* MEMBER: items in its backlog */
    _Atomic uint64_t slot_waits[FQ_SLOTS];    /* MEMBER: its sleepers, 16 bits per futex word */
    FQ_LINE uint64_t pool_key;            /* random: the pool's segment names (fq_pool_name) */
    _Atomic int64_t pool_trim_at;         /* when a process last looked for idle pool segments */
    fq_pool_entry pool[FQ_POOL];
} fq_shm_header;

_Static_assert(sizeof(fq_shm_header) <= FQ_SHM_HEADER, "header fits its pages");

typedef struct {
    _Atomic uint64_t state;
    uint64_t seq;  /* record number; a PAD carries the next record's */
    uint64_t pos;  /* its own cursor */
    uint32_t size; /* whole record, a multiple of 64 */
    uint32_t len;  /* payload bytes */
} fq_rec;

typedef struct {
    char *base;
    size_t map_size;
    fq_shm_header *hdr;
    char *arena;
    uint64_t cap;
    unsigned lap_shift;
    /* this handle's view, for waits and dead-writer detection. The threads of this process that
     * share the handle read and write it outside the GIL (waits, patient reserves, shutdown's
     * discard), so it is atomic; none of it is on a fast path. */
    _Atomic uint64_t seen_cursor;
    _Atomic int64_t seen_since;
    _Atomic uint64_t full_free, full_head;
    _Atomic int64_t last_reader_check;
    _Atomic int64_t last_pending_check;  /* fq_pending's liveness checks, once a slice per handle */
    _Atomic int64_t spin_ns;  /* the adaptive spin before a consumer sleeps; -1: never (one CPU) */
    _Atomic int spin_skips;
    _Atomic int member;       /* this process's MEMBER slot for this handle, -1: none */
    uint64_t dev_major, dev_minor, ino;  /* the segment's file, for fq_dead's mapping check */
} fq_shmq;

/* ---- crash points (test builds only) ---- */
#ifdef FASTQ_CRASHPOINTS
#include <signal.h>
static _Atomic long fq_cp_countdown;  /* > 0: stop dead when it reaches 0 */
static _Atomic long fq_cp_passed;     /* points passed, for enumeration */
static _Atomic long fq_cp_waits;      /* futex waits entered: progress is counted, not timed */
static _Atomic int fq_cp_signal = SIGKILL;
static inline void fq_cp(void)
{
    atomic_fetch_add(&fq_cp_passed, 1);
    if (atomic_load(&fq_cp_countdown) > 0 && atomic_fetch_sub(&fq_cp_countdown, 1) == 1)
        kill(getpid(), fq_cp_signal);
}
#define FQ_CP_WAIT() atomic_fetch_add(&fq_cp_waits, 1)
#else
#define fq_cp() ((void)0)
#define FQ_CP_WAIT() ((void)0)
#endif

/* Arm the crash points: stop dead with signal sig at the nth point from now (0: disarm). Returns
 * the points passed since the previous call (*waits: futex waits entered), or -1 in a build
 * without crash points. */
static long fq_cp_arm(long n, int sig, long *waits)
{
#ifdef FASTQ_CRASHPOINTS
    fq_cp_signal = sig;
    atomic_store(&fq_cp_countdown, n);
    *waits = atomic_exchange(&fq_cp_waits, 0);
    return atomic_exchange(&fq_cp_passed, 0);
#else
    (void)n, (void)sig;
    *waits = 0;
    return -1;
#endif
}

typedef struct {     /* a reserved record, being written */
    fq_rec *rec;
    char *payload;
    uint64_t pos;
} fq_wslot;

typedef struct {     /* a READY record found at head */
    fq_rec *rec;
    const char *payload;
    uint64_t pos, state;
    uint32_t size, len;
} fq_rslot;

typedef struct {     /* a parsed, validated payload */
    uint32_t nbufs, kind;
    uint64_t main_len;
    const char *main;
    const char *lens;  /* nbufs little u64s, possibly unaligned: read with fq_buf_len */
} fq_payload;

static inline uint64_t fq_st(uint64_t kind, uint64_t v) { return (kind << 60) | (v & FQ_LOW60); }
static inline uint64_t fq_lap(const fq_shmq *q, uint64_t pos) { return pos >> q->lap_shift; }
/* The record at a cursor. Masked to the arena and to 64 bytes, so even a scribbled cursor can
 * only point inside the arena (validation then rejects what it finds there). */
static inline fq_rec *fq_rec_at(const fq_shmq *q, uint64_t pos)
{
    return (fq_rec *)(q->arena + (pos & (q->cap - 1) & ~UINT64_C(63)));
}
static inline uint64_t fq_align64(uint64_t n) { return (n + 63) & ~UINT64_C(63); }

/* 1 when the participant named by ident can hold nothing in this segment any more: its process
 * is gone (fq_ident_dead), or lives on without mapping the segment (after exec, or once it let
 * go of the queue; a mapping it cannot read counts as held). */
static int fq_dead(const fq_shmq *q, uint64_t ident)
{
    if (fq_ident_dead(ident))
        return 1;
    /* A wrong "unmapped" would rob a live process, so it must be seen twice, a moment apart (a
     * maps file read in pieces while the process maps and unmaps other things is not a snapshot). */
    uint32_t pid = fq_ident_pid(ident);
    if (fq_proc_unmapped(pid, q->dev_major, q->dev_minor, q->ino) != 1)
        return 0;
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
    return fq_proc_unmapped(pid, q->dev_major, q->dev_minor, q->ino) == 1 || fq_ident_dead(ident);
}

/* ---- payload layout: u32 nbufs, u32 kind, u64 main_len, u64 buf_len[nbufs], main bytes, then
 * each out-of-band buffer at an offset o with (FQ_REC_HDR + o) % 64 == 0 ---- */

static inline uint64_t fq_buf_start(uint64_t o) { return fq_align64(o + FQ_REC_HDR) - FQ_REC_HDR; }

/* Payload bytes for these parts, or UINT64_MAX on overflow. */
static uint64_t fq_payload_len(uint32_t nbufs, uint64_t main_len, const uint64_t *buf_lens)
{
    uint64_t o = 16 + 8 * (uint64_t)nbufs;
    if (main_len > UINT32_MAX)
        return UINT64_MAX;
    o += main_len;
    for (uint32_t i = 0; i < nbufs; i++) {
        if (buf_lens[i] > UINT32_MAX)
            return UINT64_MAX;
        o = fq_buf_start(o) + buf_lens[i];
    }
    return o;
}

static inline uint64_t fq_buf_len(const fq_payload *p, uint32_t i)
{
    uint64_t v;
    memcpy(&v, p->lens + 8 * (size_t)i, 8);
    return v;
}

/* Write the payload header; returns where the main bytes go. */
static char *fq_payload_write_header(char *payload, uint32_t nbufs, uint32_t kind, uint64_t main_len,
                                     const uint64_t *buf_lens)
{
    memcpy(payload, &nbufs, 4);
    memcpy(payload + 4, &kind, 4);
    memcpy(payload + 8, &main_len, 8);
    memcpy(payload + 16, buf_lens, 8 * (size_t)nbufs);
    return payload + 16 + 8 * (size_t)nbufs;
}

/* Check every length against `len` (overflow included). FQ_OK or FQ_CORRUPT. */
static int fq_payload_parse(const char *payload, uint64_t len, fq_payload *p)
{
    if (len < 16)
        return FQ_CORRUPT;
    memcpy(&p->nbufs, payload, 4);
    memcpy(&p->kind, payload + 4, 4);
    memcpy(&p->main_len, payload + 8, 8);
    if (p->kind > FQ_KIND_SPILL || p->nbufs > FQ_MAX_NBUFS)
        return FQ_CORRUPT;
    if ((p->kind != FQ_KIND_PICKLE) && p->nbufs != 0)
        return FQ_CORRUPT;
    uint64_t o = 16 + 8 * (uint64_t)p->nbufs;
    if (o > len || p->main_len > len - o)
        return FQ_CORRUPT;
    p->lens = payload + 16;
    p->main = payload + o;
    o += p->main_len;
    for (uint32_t i = 0; i < p->nbufs; i++) {
        uint64_t b = fq_buf_len(p, i);
        o = fq_buf_start(o);
        if (o > len || b > len - o)
            return FQ_CORRUPT;
        o += b;
    }
    return FQ_OK;
}

/* ---- spill segments: named segments for items too large for the ring ----
 * The ring record (kind SPILL) carries the segment's name, in one of two forms of 31 bytes:
 * - one-off: "/fastq-" and 24 hex digits (96 random bits). The consumer copies and unlinks it;
 *   whoever abandons or discards the record unlinks it too.
 * - pooled: "/fastq-p", the queue's pool key (16 hex digits), the pool entry (1 hex digit) and the
 *   segment's generation (6 hex digits). It belongs to the queue's pool (below), which alone
 *   removes it: a record that is abandoned or discarded leaves it alone. */

#define FQ_SPILL_NAME_LEN 31

static int fq_hex_ok(const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int fq_spill_name_ok(const char *name, uint64_t len)
{
    if (len != FQ_SPILL_NAME_LEN || memcmp(name, "/fastq-", 7) != 0)
        return 0;
    return name[7] == 'p' ? fq_hex_ok(name + 8, 23) : fq_hex_ok(name + 7, 24);
}

static inline int fq_spill_pooled(const char *name) { return name[7] == 'p'; }

/* Unlink a one-off spill segment; a pooled name is left to the pool. */
static void fq_spill_unlink(const char *name, uint64_t len)
{
    char buf[FQ_SPILL_NAME_LEN + 1];
    if (!fq_spill_name_ok(name, len) || fq_spill_pooled(name))
        return;
    fq_cp();
    memcpy(buf, name, FQ_SPILL_NAME_LEN);
    buf[FQ_SPILL_NAME_LEN] = '\0';
    shm_unlink(buf);
}

/* A record that will never be read: unlink its spill segment, if it names one. */
static void fq_forget_payload(const char *payload, uint64_t len)
{
    fq_payload p;
    if (fq_payload_parse(payload, len, &p) == FQ_OK && p.kind == FQ_KIND_SPILL)
        fq_spill_unlink(p.main, p.main_len);
}

/* Copy out the spill name a dead participant's record holds, before the record is given up (once
 * it is ABANDONED or DONE the slot may be reused under us): 1 if it names one. */
static int fq_spill_name_of(const char *payload, uint64_t len, char name[FQ_SPILL_NAME_LEN])
{
    fq_payload p;
    if (fq_payload_parse(payload, len, &p) != FQ_OK || p.kind != FQ_KIND_SPILL ||
        !fq_spill_name_ok(p.main, p.main_len))
        return 0;
    memcpy(name, p.main, FQ_SPILL_NAME_LEN);
    return 1;
}

/* Create and map a spill segment of `size` bytes (mode 0600, O_EXCL). 0 or -errno. */
static int fq_spill_create(const char *name, uint64_t size, char **out)
{
    fq_cp();
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int err = posix_fallocate(fd, 0, (off_t)size);  /* a full /dev/shm fails here, not with SIGBUS */
    void *p = MAP_FAILED;
    if (err == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            err = errno;
    }
    close(fd);
    if (err) {
        shm_unlink(name);
        return -err;
    }
    *out = p;
    return 0;
}

/* Map a spill segment read-only: 0, -errno, FQ_AGAIN (no such segment) or FQ_CORRUPT. The
 * consumer does this before it claims the record, so that a failure (EMFILE, ENOMEM) leaves the
 * item queued; it unlinks the name once the claim is won. A segment that is missing while its
 * record is still READY is inconsistent (only the claimant unlinks it, and a producer publishes
 * the name only after filling the segment): the caller tells that from a lost race. */
static int fq_spill_open(const char *name, uint64_t name_len, int writable, char **out, uint64_t *size)
{
    char buf[FQ_SPILL_NAME_LEN + 1];
    if (!fq_spill_name_ok(name, name_len))
        return FQ_CORRUPT;
    memcpy(buf, name, FQ_SPILL_NAME_LEN);
    buf[FQ_SPILL_NAME_LEN] = '\0';
    int fd = shm_open(buf, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? FQ_AGAIN : -errno;
    struct stat st;
    void *p = MAP_FAILED;
    int err = 0, corrupt = 0;
    if (fstat(fd, &st) < 0)
        err = errno;
    else if (st.st_size <= 0)
        corrupt = 1;
    else if ((p = mmap(NULL, (size_t)st.st_size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0)) ==
             MAP_FAILED)
        err = errno;
    close(fd);
    if (corrupt)
        return FQ_CORRUPT;
    if (err)
        return -err;
    *out = p;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- the spill pool: segments reused from item to item ----
 * A one-off segment costs its creation (the kernel zeroes every page), a page fault per 4 KiB in
 * the writer and again in the reader, and its removal: for a 64 MiB item, three times what the two
 * copies cost. So a spilled item goes, when it can, to one of FQ_POOL segments the queue keeps,
 * which every process maps once and keeps mapped (_shm.pyx caches the mappings per handle).
 * An entry's state (FQ_POOL_* << 60):
 *   EMPTY        no segment;
 *   FREE         a segment nobody uses;
 *   TAKEN|ident  a writer fills it (or makes it); another takes it over only once ident is dead;
 *   FULL|pos     it holds the item of the record at cursor pos: that record's reader hands it back
 *                (FREE) after its copy; once `free` has passed pos the record is finished, so an
 *                entry still FULL (its reader died before handing it back, or the record was
 *                abandoned or discarded) is taken over as it stands;
 *   HELD|ident   a reader's zero-copy views of the item (get(copy=False)) still live: it lets go
 *                when they die (FREE, or the segment removed if it forked meanwhile: a child may
 *                map it still); once ident is dead, a writer takes it over with a new segment.
 * The writer takes an entry before it reserves its record and fills it (FULL) before it publishes,
 * so a READY record's segment is never reused under it. Only the pool removes a pooled segment:
 * a writer replacing one too small (or left by a dead writer), an idle one (fq_pool_trim), and the
 * last holder (fq_pool_discard). */

static inline void fq_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, int n);

static void fq_pool_name(const fq_shmq *q, int i, uint64_t gen, char name[FQ_SPILL_NAME_LEN + 1])
{
    snprintf(name, FQ_SPILL_NAME_LEN + 1, "/fastq-p%016llx%01x%06llx", (unsigned long long)q->hdr->pool_key,
             (unsigned)i, (unsigned long long)(gen & 0xffffff));
}

/* The entry a pooled name of this queue names, and its generation (*gen); -1 if it is not one. */
static int fq_pool_parse(const fq_shmq *q, const char *name, uint64_t len, uint64_t *gen)
{
    char mine[FQ_SPILL_NAME_LEN + 1];
    if (!fq_spill_name_ok(name, len) || !fq_spill_pooled(name))
        return -1;
    int i = name[24] <= '9' ? name[24] - '0' : name[24] - 'a' + 10;
    if (i >= FQ_POOL)
        return -1;
    uint64_t g = 0;
    for (int k = 25; k < FQ_SPILL_NAME_LEN; k++)
        g = g << 4 | (uint64_t)(name[k] <= '9' ? name[k] - '0' : name[k] - 'a' + 10);
    fq_pool_name(q, i, g, mine);
    if (memcmp(mine, name, FQ_SPILL_NAME_LEN) != 0)
        return -1;  /* another queue's key */
    *gen = g;
    return i;
}

static void fq_pool_unlink(const fq_shmq *q, int i, uint64_t gen)
{
    char name[FQ_SPILL_NAME_LEN + 1];
    fq_pool_name(q, i, gen, name);
    fq_cp();
    shm_unlink(name);
}

/* Take an entry for a payload of len bytes: its index, or -1 (none to be had: the item waits for
 * one, or goes to a one-off segment; *queued then counts the entries whose items are still queued,
 * which readers will hand back). *gen is its segment's generation; *make is 1 when the caller must
 * make a new segment (fq_pool_make): there is none, or it is too small, or a dead writer left it. */
static int fq_pool_take(fq_shmq *q, uint64_t me, uint64_t len, uint64_t *gen, int *make, int *queued)
{
    fq_shm_header *h = q->hdr;
    *queued = 0;
    /* best first: a FREE one that fits, a finished FULL one that fits, an EMPTY one, one to remake */
    for (int pass = 0; pass < 4; pass++) {
        uint64_t freed = atomic_load(&h->free);
        for (int i = 0; i < FQ_POOL; i++) {
            fq_pool_entry *e = &h->pool[i];
            uint64_t st = atomic_load(&e->state), kind = st >> 60, v = st & FQ_LOW60;
            uint64_t size = atomic_load(&e->size);
            int finished = kind == FQ_POOL_FULL && v < (freed & FQ_LOW60);
            if (pass == 3 && kind == FQ_POOL_FULL && !finished)
                (*queued)++;
            int fits = size >= len && size / 4 <= len + (UINT64_C(1) << 20);  /* not 4x too big */
            int ok;
            switch (pass) {
            case 0: ok = kind == FQ_POOL_FREE && fits; break;
            case 1: ok = finished && fits; break;
            case 2: ok = kind == FQ_POOL_EMPTY; break;
            default:  /* remade, never reused: a dead holder's fork child may still map its segment */
                ok = kind == FQ_POOL_FREE || finished ||
                     ((kind == FQ_POOL_TAKEN || kind == FQ_POOL_HELD) && v != me && fq_ident_valid(v) &&
                      fq_dead(q, v));
            }
            if (!ok)
                continue;
            fq_cp();
            if (atomic_compare_exchange_strong(&e->state, &st, fq_st(FQ_POOL_TAKEN, me))) {
                *gen = atomic_load(&e->gen);
                *make = !(pass <= 1);
                return i;
            }
        }
    }
    return -1;
}

/* Make a new segment of at least len bytes for entry i (TAKEN by the caller), removing the old
 * one: 0 with *gen set and the new segment mapped at *out (*size bytes), or -errno (the entry is
 * then EMPTY again, its old segment gone). */
static int fq_pool_make(fq_shmq *q, int i, uint64_t len, uint64_t *gen, char **out, uint64_t *size)
{
    fq_pool_entry *e = &q->hdr->pool[i];
    uint64_t g = atomic_load(&e->gen);
    fq_pool_unlink(q, i, g);  /* ENOENT when there is none */
    atomic_store(&e->size, 0);
    fq_cp();
    atomic_store(&e->gen, g + 1);  /* before the segment exists: a taker after our death unlinks it */
    /* room to grow: items of a stream vary a little in size (pickle framing) */
    uint64_t want = len + len / 8;
    want = (want + (UINT64_C(1) << 16) - 1) & ~((UINT64_C(1) << 16) - 1);
    char name[FQ_SPILL_NAME_LEN + 1];
    fq_pool_name(q, i, g + 1, name);
    int rc = fq_spill_create(name, want, out);
    if (rc < 0) {
        fq_cp();
        atomic_store(&e->state, fq_st(FQ_POOL_EMPTY, 0));
        return rc;
    }
    atomic_store(&e->size, want);
    *gen = g + 1;
    *size = want;
    return 0;
}

/* Give entry i back unused (the put failed before publishing), as FREE or (no segment) EMPTY. */
static void fq_pool_put_back(fq_shmq *q, int i, uint64_t me)
{
    fq_pool_entry *e = &q->hdr->pool[i];
    uint64_t st = fq_st(FQ_POOL_TAKEN, me);
    atomic_store(&e->used_at, fq_now_ns());
    fq_cp();
    atomic_compare_exchange_strong(&e->state, &st,
                                   fq_st(atomic_load(&e->size) ? FQ_POOL_FREE : FQ_POOL_EMPTY, 0));
}

/* The writer's item is in entry i, for the record at cursor pos: FQ_OK, or FQ_AGAIN if the entry
 * was taken from it (judged dead: its record is abandoned too). */
static int fq_pool_fill(fq_shmq *q, int i, uint64_t me, uint64_t pos)
{
    uint64_t st = fq_st(FQ_POOL_TAKEN, me);
    fq_cp();
    return atomic_compare_exchange_strong(&q->hdr->pool[i].state, &st, fq_st(FQ_POOL_FULL, pos)) ? FQ_OK
                                                                                                : FQ_AGAIN;
}

/* The reader of the record at cursor pos is done with entry i's item. */
static void fq_pool_hand_back(fq_shmq *q, int i, uint64_t pos)
{
    fq_pool_entry *e = &q->hdr->pool[i];
    uint64_t st = fq_st(FQ_POOL_FULL, pos);
    atomic_store(&e->used_at, fq_now_ns());
    fq_cp();
    if (atomic_compare_exchange_strong(&e->state, &st, fq_st(FQ_POOL_FREE, 0)))
        fq_wake(&q->hdr->nf_seq, &q->hdr->nf_waiters, INT32_MAX);  /* a feeder may wait for a segment */
}

/* The reader of the record at cursor pos keeps entry i's segment for zero-copy views, before it
 * releases the record: FULL|pos -> HELD|me. FQ_OK, or FQ_AGAIN (robbed: judged dead). */
static int fq_pool_hold(fq_shmq *q, int i, uint64_t pos, uint64_t me)
{
    uint64_t st = fq_st(FQ_POOL_FULL, pos);
    fq_cp();
    return atomic_compare_exchange_strong(&q->hdr->pool[i].state, &st, fq_st(FQ_POOL_HELD, me)) ? FQ_OK : FQ_AGAIN;
}

/* The views of entry i's item are gone: HELD|me -> FREE; or, with retire (the holder forked while
 * they lived: a child may map the segment still), the segment removed and the entry EMPTY. */
static void fq_pool_let_go(fq_shmq *q, int i, uint64_t me, int retire)
{
    fq_pool_entry *e = &q->hdr->pool[i];
    uint64_t st = fq_st(FQ_POOL_HELD, me);
    atomic_store(&e->used_at, fq_now_ns());
    fq_cp();
    if (!atomic_compare_exchange_strong(&e->state, &st, fq_st(retire ? FQ_POOL_TAKEN : FQ_POOL_FREE, retire ? me : 0)))
        return;
    if (!retire) {
        fq_wake(&q->hdr->nf_seq, &q->hdr->nf_waiters, INT32_MAX);
        return;
    }
    fq_pool_unlink(q, i, atomic_load(&e->gen));
    atomic_store(&e->size, 0);
    fq_cp();
    atomic_store(&e->state, fq_st(FQ_POOL_EMPTY, 0));
}

/* Remove the segments nobody has used for FQ_POOL_IDLE_NS (at most once a second per queue,
 * whoever calls): a burst of large items does not hold /dev/shm for good. With force (/dev/shm is
 * short of room for a new segment), remove every one nobody uses now, idle or not. Returns how
 * many it removed. */
static int fq_pool_trim(fq_shmq *q, uint64_t me, int force)
{
    fq_shm_header *h = q->hdr;
    int64_t now = fq_now_ns(), at = atomic_load(&h->pool_trim_at);
    int removed = 0;
    if (!force && (now - at < INT64_C(1000000000) || !atomic_compare_exchange_strong(&h->pool_trim_at, &at, now)))
        return 0;
    uint64_t freed = atomic_load(&h->free);
    for (int i = 0; i < FQ_POOL; i++) {
        fq_pool_entry *e = &h->pool[i];
        uint64_t st = atomic_load(&e->state), kind = st >> 60;
        int unused = kind == FQ_POOL_FREE || (force && kind == FQ_POOL_FULL && (st & FQ_LOW60) < (freed & FQ_LOW60));
        if (!unused || (!force && now - atomic_load(&e->used_at) < FQ_POOL_IDLE_NS))
            continue;
        fq_cp();
        if (!atomic_compare_exchange_strong(&e->state, &st, fq_st(FQ_POOL_TAKEN, me)))
            continue;
        fq_pool_unlink(q, i, atomic_load(&e->gen));
        atomic_store(&e->size, 0);
        fq_cp();
        atomic_store(&e->state, fq_st(FQ_POOL_EMPTY, 0));
        removed++;
    }
    return removed;
}

/* Entry i's segment generation as its name carries it; UINT64_MAX when it has none. */
static uint64_t fq_pool_gen(const fq_shmq *q, int i)
{
    const fq_pool_entry *e = &q->hdr->pool[i];
    if (atomic_load(&e->state) >> 60 == FQ_POOL_EMPTY)
        return UINT64_MAX;
    return atomic_load(&e->gen) & 0xffffff;
}

/* Tests: where the pool lives in the header. */
static size_t fq_pool_layout(size_t *trim_at, size_t *entry_size)
{
    *trim_at = offsetof(fq_shm_header, pool_trim_at);
    *entry_size = sizeof(fq_pool_entry);
    return offsetof(fq_shm_header, pool);
}

/* The last holder's: remove every pooled segment. */
static void fq_pool_discard(fq_shmq *q)
{
    for (int i = 0; i < FQ_POOL; i++) {
        fq_pool_entry *e = &q->hdr->pool[i];
        if (atomic_load(&e->state) >> 60 != FQ_POOL_EMPTY || atomic_load(&e->gen) != 0)
            fq_pool_unlink(q, i, atomic_load(&e->gen));
    }
}

/* ---- waking ---- */

static inline void fq_wake(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, int n)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(waiters, memory_order_relaxed)) {
        atomic_fetch_add(seq, 1);
        fq_futex_wake(seq, n);
    }
}

static void fq_wake_everyone(fq_shmq *q)
{
    fq_shm_header *h = q->hdr;
    _Atomic uint32_t *words[] = {&h->ne_seq, &h->nf_seq, &h->jd_seq, &h->lk_seq};
    for (int i = 0; i < 4; i++) {
        atomic_fetch_add(words[i], 1);
        fq_futex_wake(words[i], INT32_MAX);
    }
}

/* ---- releasing space ---- */

/* fq_advance_free's check_dead 2 (the release path): look at a reader at most once a slice per
 * handle, so that a killed reader's record, and the spill segment it names, do not wait for a
 * producer to find the ring full (the queue may be dropped before that happens). */
static inline int fq_reader_check_due(fq_shmq *q, int check_dead)
{
    if (check_dead != 2)
        return check_dead;
    int64_t now = fq_now_ns();
    if (now - q->last_reader_check < FQ_SLICE_NS)
        return 0;
    q->last_reader_check = now;
    return 1;
}

/* Walk `free` over released records. With check_dead (1: now, 2: if fq_reader_check_due), a
 * READING record whose reader is dead is first marked DONE (its message is lost), counted done,
 * and the spill segment it names unlinked. Never passes a live reader. */
static void fq_advance_free(fq_shmq *q, int check_dead)
{
    fq_shm_header *h = q->hdr;
    for (;;) {
        uint64_t f0 = atomic_load_explicit(&h->free, memory_order_acquire);
        uint64_t hd = atomic_load_explicit(&h->head, memory_order_acquire);
        uint64_t f = f0;
        while (f < hd) {
            fq_rec *r = fq_rec_at(q, f);
            uint64_t st = atomic_load_explicit(&r->state, memory_order_acquire);
            uint64_t pos = r->pos;
            uint32_t size = r->size;
            if (pos != f || size < 64 || size % 64 || (f & (q->cap - 1)) + size > q->cap || size > hd - f)
                break;  /* inconsistent: leave it to a consumer to report */
            uint64_t kind = st >> 60, v = st & FQ_LOW60;
            if ((kind == FQ_DONE || kind == FQ_PAD || kind == FQ_ABANDONED) && v == fq_lap(q, f)) {
                f += size;
                continue;
            }
            if (kind == FQ_READING && check_dead && fq_ident_valid(v) && fq_reader_check_due(q, check_dead) &&
                fq_dead(q, v)) {
                /* a reader killed before it opened (and unlinked) a spill segment leaves it */
                char name[FQ_SPILL_NAME_LEN];
                uint32_t len = r->len;
                int spill = len <= size - FQ_REC_HDR && fq_spill_name_of((const char *)r + FQ_REC_HDR, len, name);
                fq_cp();
                if (atomic_compare_exchange_strong(&r->state, &st, fq_st(FQ_DONE, fq_lap(q, f)))) {
                    if (spill)
                        fq_spill_unlink(name, FQ_SPILL_NAME_LEN);
                    fq_cp();
                    atomic_fetch_add(&h->dones, 1);
                    fq_wake(&h->jd_seq, &h->jd_waiters, INT32_MAX);
                }
                continue;
            }
            break;
        }
        if (f == f0)
            return;
        fq_cp();
        if (atomic_compare_exchange_strong(&h->free, &f0, f))
            return;
    }
}

/* ---- the reserve lock ---- */

static int fq_try_lock(fq_shm_header *h, uint64_t me)
{
    uint64_t zero = 0;
    if (atomic_load_explicit(&h->rlock, memory_order_relaxed) != 0)
        return 0;  /* test before test-and-set: no cache-line ping-pong while it is held */
    fq_cp();
    return atomic_compare_exchange_strong_explicit(&h->rlock, &zero, me, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Rewrite the undo record to {tail, next_seq}, under FQ_LOCK_FLUX (the lock word is ours), and
 * leave the lock word as `after`: 0 unlocks, `me` keeps the lock. */
static void fq_set_undo(fq_shm_header *h, uint64_t me, uint64_t after)
{
    fq_cp();
    atomic_store_explicit(&h->rlock, me | FQ_LOCK_FLUX, memory_order_relaxed);
    fq_cp();
    atomic_store_explicit(&h->undo_tail, atomic_load_explicit(&h->tail, memory_order_relaxed),
                          memory_order_release);
    fq_cp();
    atomic_store_explicit(&h->undo_seq, atomic_load_explicit(&h->next_seq, memory_order_relaxed),
                          memory_order_release);
    fq_cp();
    atomic_store_explicit(&h->rlock, after, memory_order_release);
}

/* ---- the participant table's sleeper marks (see fq_slot_sweep) ---- */

enum { FQ_W_NE = 0, FQ_W_NF = 1, FQ_W_JD = 2, FQ_W_LK = 3 };

static inline _Atomic uint32_t *fq_waiters_word(fq_shm_header *h, int word)
{
    switch (word) {
    case FQ_W_NE: return &h->ne_waiters;
    case FQ_W_NF: return &h->nf_waiters;
    case FQ_W_JD: return &h->jd_waiters;
    default: return &h->lk_waiters;
    }
}

/* Mark (up) or unmark a sleeper: the shared count first and the slot's after, and the other way
 * round when unmarking, so that a kill between the two leaves an overcount, never an under. */
static inline void fq_mark(fq_shmq *q, int word, int up)
{
    fq_shm_header *h = q->hdr;
    int i = atomic_load_explicit(&q->member, memory_order_relaxed);
    uint64_t unit = UINT64_C(1) << (16 * word);
    if (up) {
        fq_cp();
        atomic_fetch_add(fq_waiters_word(h, word), 1);
        if (i >= 0) {
            fq_cp();
            atomic_fetch_add(&h->slot_waits[i], unit);
        }
    } else {
        if (i >= 0) {
            fq_cp();
            atomic_fetch_sub(&h->slot_waits[i], unit);
        }
        fq_cp();
        atomic_fetch_sub(fq_waiters_word(h, word), 1);
    }
}

static void fq_unlock(fq_shmq *q, uint64_t me)
{
    fq_shm_header *h = q->hdr;
    fq_set_undo(h, me, 0);
    fq_wake(&h->lk_seq, &h->lk_waiters, 1);
}

/* Steal the lock if its owner is dead: FQ_OK (it is ours, next_seq repaired) or FQ_LOCKED.
 * Without FLUX the undo record is whole and the repair is idempotent (a thief killed before it
 * rewrites the record leaves the same repair to the next one); with FLUX next_seq is right
 * already, and the bit stays until the record is rewritten. */
static int fq_steal(fq_shmq *q, uint64_t me)
{
    fq_shm_header *h = q->hdr;
    uint64_t owner = atomic_load(&h->rlock);
    uint64_t flux = owner & FQ_LOCK_FLUX;
    if (owner == 0 || (owner & FQ_LOW60) == me || !fq_dead(q, owner & FQ_LOW60))
        return FQ_LOCKED;
    fq_cp();
    if (!atomic_compare_exchange_strong(&h->rlock, &owner, me | flux))
        return FQ_LOCKED;
    if (!flux) {
        uint64_t tail0 = atomic_load(&h->undo_tail), seq0 = atomic_load(&h->undo_seq);
        fq_cp();
        atomic_store(&h->next_seq, atomic_load(&h->tail) != tail0 ? seq0 + 1 : seq0);
    }
    fq_set_undo(h, me, me);
    return FQ_OK;
}

/* Take the reserve lock: FQ_OK or FQ_LOCKED. With no patience (the GIL held) it only spins a
 * little; with patience (without the GIL) it also sleeps, up to patience_ns, and once it has
 * waited a whole slice steals a dead owner's lock, repairing next_seq from undo. A live owner
 * that is stopped (SIGSTOP) holds it as long as it is stopped: the caller's timeout decides. */
static int fq_lock(fq_shmq *q, uint64_t me, int64_t patience_ns)
{
    fq_shm_header *h = q->hdr;
    for (int i = 0; i < 1000; i++) {
        if (fq_try_lock(h, me))
            return FQ_OK;
        fq_cpu_relax();
    }
    if (patience_ns <= 0)
        return FQ_LOCKED;
    int64_t start = fq_now_ns();
    int64_t until = patience_ns < FQ_SLICE_NS ? patience_ns : FQ_SLICE_NS;
    for (;;) {
        /* sleep until woken, or to the end of the patience or the slice (then steal): a dead
         * owner costs one wait, not a poll, so crash points pass the same number of times */
        int64_t left = until - (fq_now_ns() - start);
        uint32_t seq = atomic_load(&h->lk_seq);
        fq_mark(q, FQ_W_LK, 1);
        if (atomic_load(&h->rlock) != 0 && left > 0) {
            FQ_CP_WAIT();
            fq_futex_wait(&h->lk_seq, seq, left);
        }
        fq_mark(q, FQ_W_LK, 0);
        if (fq_try_lock(h, me))
            return FQ_OK;
        int64_t waited = fq_now_ns() - start;
        if (waited < FQ_SLICE_NS) {
            if (waited < patience_ns)
                continue;
            if (atomic_load(&h->rlock) == 0)  /* out of patience: pass on a wake we may have taken */
                fq_wake(&h->lk_seq, &h->lk_waiters, 1);
            return FQ_LOCKED;
        }
        return fq_steal(q, me);
    }
}

/* Take back a dead owner's lock and release it at once, repairing next_seq: consumers and
 * join() call this too, since counts read while a dead process holds the lock can be one short
 * (its record reserved, next_seq not yet moved). */
static void fq_reclaim_lock(fq_shmq *q)
{
    if (atomic_load(&q->hdr->rlock) != 0 && fq_steal(q, fq_self_ident()) == FQ_OK)
        fq_unlock(q, fq_self_ident());
}

/* Messages between head and tail; call under the reserve lock for an exact answer. */
static int fq_items(fq_shmq *q, uint64_t *items)
{
    fq_shm_header *h = q->hdr;
    uint64_t hd = atomic_load_explicit(&h->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
    uint64_t ns = atomic_load_explicit(&h->next_seq, memory_order_acquire);
    for (;;) {
        *items = 0;
        if (hd == t)
            return FQ_OK;
        if (hd > t || t - hd > q->cap)
            return FQ_CORRUPT;
        fq_rec *r = fq_rec_at(q, hd);
        uint64_t seq = r->seq;
        if (r->pos == hd && seq <= ns) {
            *items = ns - seq;
            return FQ_OK;
        }
        uint64_t moved = atomic_load_explicit(&h->head, memory_order_acquire);
        if (moved == hd)
            return FQ_CORRUPT;
        hd = moved;  /* it moved under us: read again */
        t = atomic_load_explicit(&h->tail, memory_order_acquire);
        ns = atomic_load_explicit(&h->next_seq, memory_order_acquire);
    }
}

/* ---- put ---- */

/* Reserve a record for `len` payload bytes: FQ_OK (fill w->payload, then fq_publish), FQ_AGAIN
 * (full: wait with fq_wait_not_full), FQ_SHUT, FQ_LOCKED (wait: call again), FQ_TOOBIG, or
 * FQ_CORRUPT. `accepted`: the item was accepted before a graceful shutdown (a backlog's), so
 * only an immediate one refuses it. */
static int fq_reserve(fq_shmq *q, uint64_t me, uint64_t len, fq_wslot *w, int64_t patience_ns, int accepted)
{
    fq_shm_header *h = q->hdr;
    uint64_t cap = q->cap, size = fq_align64(FQ_REC_HDR + len);
    if (len > UINT32_MAX || size > cap)
        return FQ_TOOBIG;
    int rc = fq_lock(q, me, patience_ns);
    if (rc != FQ_OK)
        return rc;
    for (;;) {
        uint32_t shut = atomic_load(&h->shutdown);
        if (shut == FQ_SHUT_IMMEDIATE || (shut && !accepted)) {
            rc = FQ_SHUT;
            break;
        }
        if (h->maxsize) {
            uint64_t items;
            if ((rc = fq_items(q, &items)) != FQ_OK)
                break;
            if (items >= h->maxsize) {
                q->full_free = atomic_load(&h->free);
                q->full_head = atomic_load(&h->head);
                rc = FQ_AGAIN;
                break;
            }
        }
        uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
        uint64_t off = tail & (cap - 1);
        uint64_t need = off + size > cap ? cap - off + size : size;
        uint64_t fr = atomic_load_explicit(&h->free, memory_order_acquire);
        if (fr > tail || tail - fr > cap || tail % 64) {
            rc = FQ_CORRUPT;
            break;
        }
        if (tail + need - fr > cap) {
            int64_t now = fq_now_ns();
            int check_dead = now - q->last_reader_check >= FQ_SLICE_NS;
            if (check_dead)
                q->last_reader_check = now;
            fq_advance_free(q, check_dead);
            fr = atomic_load_explicit(&h->free, memory_order_acquire);
            if (tail + need - fr > cap) {
                q->full_free = fr;
                q->full_head = atomic_load(&h->head);
                rc = FQ_AGAIN;
                break;
            }
        }
        uint64_t seq = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
        fq_rec *r = fq_rec_at(q, tail);
        fq_cp();
        r->seq = seq;
        fq_cp();
        r->pos = tail;
        if (off + size > cap) {  /* pad to the end of the lap, then retry at offset 0 */
            fq_cp();
            r->size = (uint32_t)(cap - off);
            fq_cp();
            r->len = 0;
            fq_cp();
            atomic_store_explicit(&r->state, fq_st(FQ_PAD, fq_lap(q, tail)), memory_order_relaxed);
            /* tail and undo_tail move together, under FLUX: a PAD is no message */
            fq_cp();
            atomic_store_explicit(&h->rlock, me | FQ_LOCK_FLUX, memory_order_relaxed);
            fq_cp();
            atomic_store_explicit(&h->tail, tail + (cap - off), memory_order_release);
            fq_cp();
            atomic_store_explicit(&h->undo_tail, tail + (cap - off), memory_order_release);
            fq_cp();
            atomic_store_explicit(&h->rlock, me, memory_order_release);
            continue;
        }
        fq_cp();
        r->size = (uint32_t)size;
        fq_cp();
        r->len = (uint32_t)len;
        fq_cp();
        atomic_store_explicit(&r->state, fq_st(FQ_WRITING, me), memory_order_relaxed);
        fq_cp();
        atomic_store_explicit(&h->tail, tail + size, memory_order_release); /* linearization point */
        fq_cp();
        atomic_store_explicit(&h->next_seq, seq + 1, memory_order_release);
        w->rec = r;
        w->payload = (char *)r + FQ_REC_HDR;
        w->pos = tail;
        rc = FQ_OK;
        break;
    }
    fq_unlock(q, me);
    return rc;
}

/* Mark a filled record READY and wake a consumer. Returns FQ_OK, or FQ_AGAIN if somebody had
 * judged us dead and abandoned the record (the message is lost; put has done its part). */
static int fq_discard_all(fq_shmq *q, uint64_t me);

static int fq_publish(fq_shmq *q, const fq_wslot *w, uint64_t me)
{
    uint64_t expect = fq_st(FQ_WRITING, me);
    fq_cp();
    int ok = atomic_compare_exchange_strong_explicit(&w->rec->state, &expect,
                                                     fq_st(FQ_READY, fq_lap(q, w->pos)),
                                                     memory_order_release, memory_order_relaxed);
    /* an immediate shutdown came while we copied: what we published goes too (and whatever
     * waited behind us, which the shutdown's own discard could not pass) */
    if (atomic_load(&q->hdr->shutdown) == FQ_SHUT_IMMEDIATE)
        fq_discard_all(q, me);
    fq_wake(&q->hdr->ne_seq, &q->hdr->ne_waiters, 1);
    return ok ? FQ_OK : FQ_AGAIN;
}

/* Give up a reserved record whose payload could not be written: mark it ABANDONED, as a dead
 * writer's would be (consumers skip it), count it done and wake consumers. */
static void fq_abandon(fq_shmq *q, const fq_wslot *w, uint64_t me)
{
    uint64_t expect = fq_st(FQ_WRITING, me);
    fq_cp();
    if (atomic_compare_exchange_strong(&w->rec->state, &expect, fq_st(FQ_ABANDONED, fq_lap(q, w->pos)))) {
        fq_cp();
        atomic_fetch_add(&q->hdr->dones, 1);
        fq_wake(&q->hdr->jd_seq, &q->hdr->jd_waiters, INT32_MAX);
    }
    fq_wake(&q->hdr->ne_seq, &q->hdr->ne_waiters, 1);
}

/* ---- get ---- */

/* Find the READY record at head, helping head past finished records and abandoning a dead
 * writer's record once this handle has seen it at head for a slice. FQ_OK (s filled), FQ_AGAIN
 * (empty, or a live writer is still copying), or FQ_CORRUPT. */
static int fq_peek(fq_shmq *q, fq_rslot *s)
{
    fq_shm_header *h = q->hdr;
    uint64_t cap = q->cap;
    for (;;) {
        uint64_t hd = atomic_load_explicit(&h->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
        if (hd == t)
            return FQ_AGAIN;
        fq_rec *r = fq_rec_at(q, hd);
        uint64_t st = atomic_load_explicit(&r->state, memory_order_acquire);
        uint64_t pos = r->pos;
        uint32_t size = r->size, len = r->len;
        uint64_t kind = st >> 60, v = st & FQ_LOW60;
        int valid = hd < t && t - hd <= cap && pos == hd && size >= 64 && size % 64 == 0 &&
                    (hd & (cap - 1)) + size <= cap && size <= t - hd && len <= size - FQ_REC_HDR;
        if (valid) {
            if (((kind == FQ_PAD || kind == FQ_ABANDONED || kind == FQ_DONE) && v == fq_lap(q, hd)) ||
                (kind == FQ_READING && fq_ident_valid(v))) {
                fq_cp();
                atomic_compare_exchange_strong(&h->head, &hd, hd + size);  /* help */
                continue;
            }
            if (kind == FQ_READY && v == fq_lap(q, hd)) {
                s->rec = r;
                s->payload = (const char *)r + FQ_REC_HDR;
                s->pos = hd;
                s->state = st;
                s->size = size;
                s->len = len;
                return FQ_OK;
            }
            if (kind == FQ_WRITING && fq_ident_valid(v)) {
                int64_t now = fq_now_ns();
                if (q->seen_cursor != hd) {
                    q->seen_cursor = hd;
                    q->seen_since = now;
                } else if (now - q->seen_since >= FQ_SLICE_NS) {
                    q->seen_since = now;
                    if (fq_dead(q, v)) {
                        /* its spill name, read while the record is still the dead writer's */
                        char name[FQ_SPILL_NAME_LEN];
                        int spill = fq_spill_name_of((const char *)r + FQ_REC_HDR, len, name);
                        fq_cp();
                        if (atomic_compare_exchange_strong(&r->state, &st, fq_st(FQ_ABANDONED, fq_lap(q, hd)))) {
                            if (spill)
                                fq_spill_unlink(name, FQ_SPILL_NAME_LEN);
                            fq_cp();
                            atomic_fetch_add(&h->dones, 1);
                            fq_reclaim_lock(q);  /* it may have died holding it, next_seq short */
                            fq_wake(&h->jd_seq, &h->jd_waiters, INT32_MAX);
                            continue;
                        }
                    }
                }
                return FQ_AGAIN;
            }
        }
        if (atomic_load(&h->head) != hd)
            continue;  /* it moved under us: what we read was stale */
        return FQ_CORRUPT;
    }
}

/* Parse the payload of the record fq_peek found: FQ_OK, FQ_AGAIN (the record changed under us:
 * peek again) or FQ_CORRUPT. A record still READY in the same lap after the parse is the one its
 * producer published (a slot is reused only in a later lap), so a payload that does not parse is
 * inconsistent; retrying would spin forever. */
static int fq_read_payload(const fq_rslot *s, fq_payload *p)
{
    if (fq_payload_parse(s->payload, s->len, p) == FQ_OK)
        return FQ_OK;
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->rec->state, memory_order_acquire) == s->state ? FQ_CORRUPT : FQ_AGAIN;
}

/* 1 if the record peek found is still READY, in the same lap: nobody claimed it meanwhile. */
static int fq_still_ready(const fq_rslot *s)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->rec->state, memory_order_acquire) == s->state;
}

/* Claim the record peek found: FQ_OK (it is ours: copy out, then fq_release) or FQ_AGAIN
 * (another consumer took it: peek again). */
static int fq_claim(fq_shmq *q, const fq_rslot *s, uint64_t me)
{
    uint64_t expect = s->state;
    fq_cp();
    if (!atomic_compare_exchange_strong_explicit(&s->rec->state, &expect, fq_st(FQ_READING, me),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return FQ_AGAIN;
    uint64_t hd = s->pos;
    fq_cp();
    atomic_compare_exchange_strong(&q->hdr->head, &hd, s->pos + s->size);  /* failed: helped */
    return FQ_OK;
}

/* Done reading a claimed record: release its space and wake producers (and pass a wake on to
 * another consumer if more records wait). FQ_OK, or FQ_AGAIN if somebody judged us dead and
 * took the record from us meanwhile (it was counted lost): drop the copy, it may be torn. */
static int fq_release(fq_shmq *q, const fq_rslot *s, uint64_t me)
{
    fq_shm_header *h = q->hdr;
    uint64_t expect = fq_st(FQ_READING, me);
    fq_cp();
    int ok = atomic_compare_exchange_strong_explicit(&s->rec->state, &expect, fq_st(FQ_DONE, fq_lap(q, s->pos)),
                                                     memory_order_release, memory_order_relaxed);
    fq_advance_free(q, 2);
    fq_wake(&h->nf_seq, &h->nf_waiters, INT32_MAX);
    if (atomic_load(&h->head) != atomic_load(&h->tail))
        fq_wake(&h->ne_seq, &h->ne_waiters, 1);
    return ok ? FQ_OK : FQ_AGAIN;
}

/* shutdown(immediate=True): claim every READY record at head, drop it, and count it done. */
static int fq_discard_all(fq_shmq *q, uint64_t me)
{
    fq_rslot s;
    int rc;
    while ((rc = fq_peek(q, &s)) == FQ_OK) {
        if (fq_claim(q, &s, me) != FQ_OK)
            continue;
        fq_forget_payload(s.payload, s.len);
        if (fq_release(q, &s, me) == FQ_OK) {
            fq_cp();
            atomic_fetch_add(&q->hdr->dones, 1);
        }
    }
    fq_wake(&q->hdr->jd_seq, &q->hdr->jd_waiters, INT32_MAX);
    return rc == FQ_AGAIN ? FQ_OK : rc;
}

/* ---- waiting (call without the GIL; each returns after at most timeout_ns) ---- */

static int fq_has_work(fq_shmq *q)
{
    uint64_t hd = atomic_load(&q->hdr->head);
    if (hd == atomic_load(&q->hdr->tail))
        return atomic_load(&q->hdr->shutdown) != 0;
    uint64_t st = atomic_load_explicit(&fq_rec_at(q, hd)->state, memory_order_acquire);
    return (st >> 60) != FQ_WRITING;
}

/* In steady streaming a short spin beats a sleep and a wake syscall per message; when messages
 * come rarely it only burns CPU. So the spin adapts: it doubles (up to FQ_SPIN_MAX_NS) when it
 * catches a message, halves when it does not, and once it has died out, a short probe every
 * 16 sleeps tries again. No spinning at all on a single CPU. */
#define FQ_SPIN_MAX_NS 20000

static void fq_spin_for_work(fq_shmq *q, int64_t timeout_ns)
{
    if (q->spin_ns <= 0) {
        if (q->spin_ns == 0 && ++q->spin_skips >= 16) {
            q->spin_skips = 0;
            q->spin_ns = 1000;
        }
        return;
    }
    int64_t start = fq_now_ns();
    int64_t until = start + (q->spin_ns < timeout_ns ? q->spin_ns : timeout_ns);
    while (!fq_has_work(q) && fq_now_ns() < until)
        for (int i = 0; i < 64; i++)
            fq_cpu_relax();
    if (fq_has_work(q))
        q->spin_ns = q->spin_ns * 2 > FQ_SPIN_MAX_NS ? FQ_SPIN_MAX_NS : q->spin_ns * 2;
    else
        q->spin_ns = q->spin_ns / 2 < 500 ? 0 : q->spin_ns / 2;
}

static void fq_wait_not_empty(fq_shmq *q, int64_t timeout_ns)
{
    fq_shm_header *h = q->hdr;
    fq_spin_for_work(q, timeout_ns);
    uint32_t seq = atomic_load(&h->ne_seq);
    fq_mark(q, FQ_W_NE, 1);
    if (!fq_has_work(q)) {
        FQ_CP_WAIT();
        fq_futex_wait(&h->ne_seq, seq, timeout_ns);
    }
    fq_mark(q, FQ_W_NE, 0);
}

static void fq_wait_not_full(fq_shmq *q, int64_t timeout_ns)
{
    fq_shm_header *h = q->hdr;
    uint32_t seq = atomic_load(&h->nf_seq);
    fq_mark(q, FQ_W_NF, 1);
    if (atomic_load(&h->free) == q->full_free && atomic_load(&h->head) == q->full_head &&
        !atomic_load(&h->shutdown)) {
        FQ_CP_WAIT();
        fq_futex_wait(&h->nf_seq, seq, timeout_ns);
    }
    fq_mark(q, FQ_W_NF, 0);
}

/* ---- the participant table ----
 * slots[i] = role << 60 | ident, 0 = free. IterableQueue's producers register as PRODUCER, so one
 * that dies without closing is noticed. A process's handle registers as MEMBER the first time it
 * sleeps or holds a backlog, and its slot keeps count of both (slot_waits, slot_pending), so
 * that a sweep can take back what a killed member left: sleeper marks (else every later wake
 * pays a futex call) and its backlog's count (else join() would wait for items that are gone).
 * Beyond FQ_SLOTS members a handle has no slot: its marks are plain counts, and its put()
 * blocks rather than keeping a backlog. */

/* Clear slot i, whose owner (v) is dead: claim the clearing (SWEEP with our ident, so that a
 * sweeper killed on the way is itself swept), take back its counts, free the slot. */
static void fq_slot_sweep(fq_shmq *q, int i, uint64_t v)
{
    fq_shm_header *h = q->hdr;
    uint64_t mine = fq_st(FQ_ROLE_SWEEP, fq_self_ident());
    fq_cp();
    if (!atomic_compare_exchange_strong(&h->slots[i], &v, mine))
        return;
    fq_cp();
    uint64_t w = atomic_exchange(&h->slot_waits[i], 0);
    for (int word = 0; word < 4; word++) {
        uint32_t n = (uint32_t)((w >> (16 * word)) & 0xffff);
        if (n) {
            fq_cp();
            atomic_fetch_sub(fq_waiters_word(h, word), n);
        }
    }
    fq_cp();
    uint64_t pending = atomic_exchange(&h->slot_pending[i], 0);
    fq_cp();
    atomic_store(&h->slots[i], 0);
    fq_wake(&h->ne_seq, &h->ne_waiters, INT32_MAX);  /* IterableQueue consumers re-check */
    if (pending)
        fq_wake(&h->jd_seq, &h->jd_waiters, INT32_MAX);
}

/* Claim a free slot (or a dead participant's) for role|ident: its index, or -1 if all are taken. */
static int fq_slot_claim(fq_shmq *q, uint64_t role, uint64_t ident)
{
    uint64_t mine = fq_st(role, ident);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < FQ_SLOTS; i++) {
            uint64_t v = atomic_load(&q->hdr->slots[i]);
            if (pass == 1 && v != 0 && fq_ident_valid(v & FQ_LOW60) && fq_dead(q, v & FQ_LOW60)) {
                fq_slot_sweep(q, i, v);
                v = atomic_load(&q->hdr->slots[i]);
            }
            if (v == 0) {
                fq_cp();
                if (atomic_compare_exchange_strong(&q->hdr->slots[i], &v, mine))
                    return i;
            }
        }
    }
    return -1;
}

/* Replace slot i's owner `old` (both role|ident) with `new`: 1 if it was still `old`. Letting go
 * (new == 0) also drops the slot's counts: a MEMBER leaves with no sleeper, and a backlog it
 * leaves behind (cancel_join_thread) is gone with it. */
static int fq_slot_swap(fq_shmq *q, int i, uint64_t old, uint64_t new)
{
    if (i < 0 || i >= FQ_SLOTS)
        return 0;
    fq_shm_header *h = q->hdr;
    if (new == 0 && (old >> 60) == FQ_ROLE_MEMBER) {
        fq_cp();
        if (atomic_exchange(&h->slot_pending[i], 0))
            fq_wake(&h->jd_seq, &h->jd_waiters, INT32_MAX);
    }
    fq_cp();
    int ok = atomic_compare_exchange_strong(&h->slots[i], &old, new);
    if (ok && new == 0)
        fq_wake(&h->ne_seq, &h->ne_waiters, INT32_MAX);  /* consumers re-check */
    return ok;
}

/* Live participants with this role; slots of dead ones are swept on the way. */
static int fq_slot_count_live(fq_shmq *q, uint64_t role)
{
    int live = 0;
    for (int i = 0; i < FQ_SLOTS; i++) {
        uint64_t v = atomic_load(&q->hdr->slots[i]);
        if (v == 0 || (v >> 60) != role)
            continue;
        if (fq_dead(q, v & FQ_LOW60))
            fq_slot_sweep(q, i, v);
        else
            live++;
    }
    return live;
}

/* Sweep the slots of dead members that left sleeper marks: waiters call this, but one process a
 * second does the work (the shared sweep_at), so that idle sleepers do not check each other. A
 * sleeper is judged by fq_ident_dead alone (no /proc maps scan): one that exec'd keeps its marks
 * until it exits, costing spurious wakes only. */
static void fq_sweep_sleepers(fq_shmq *q)
{
    fq_shm_header *h = q->hdr;
    int64_t now = fq_now_ns(), last = atomic_load(&h->sweep_at);
    if (now - last < 1000000000 || !atomic_compare_exchange_strong(&h->sweep_at, &last, now))
        return;
    for (int i = 0; i < FQ_SLOTS; i++) {
        if (atomic_load(&h->slot_waits[i]) == 0)
            continue;
        uint64_t v = atomic_load(&h->slots[i]);
        if ((v >> 60) == FQ_ROLE_MEMBER && fq_ident_dead(v & FQ_LOW60))
            fq_slot_sweep(q, i, v);
    }
}

/* Items in the members' backlogs. With check_dead (at most once a slice per handle: the check
 * reads /proc), a dead member's slot is swept first, since its backlog died with it; without,
 * a dead member's count may linger until the next check (qsize() is approximate anyway). */
static uint64_t fq_pending(fq_shmq *q, int check_dead)
{
    fq_shm_header *h = q->hdr;
    uint64_t total = 0;
    if (check_dead) {
        int64_t now = fq_now_ns();
        check_dead = now - q->last_pending_check >= FQ_SLICE_NS;
        if (check_dead)
            q->last_pending_check = now;
    }
    for (int i = 0; i < FQ_SLOTS; i++) {
        uint64_t n = atomic_load(&h->slot_pending[i]);
        if (n == 0)
            continue;
        uint64_t v = atomic_load(&h->slots[i]);
        if (check_dead && (v >> 60) == FQ_ROLE_MEMBER && fq_dead(q, v & FQ_LOW60))
            fq_slot_sweep(q, i, v);
        else
            total += n;
    }
    return total;
}

/* This handle's backlog grew (put() accepted an item) or shrank (it reached the ring, or failed). */
static inline void fq_pending_add(fq_shmq *q, int64_t delta)
{
    int i = atomic_load(&q->member);
    if (i < 0 || i >= FQ_SLOTS)
        return;
    fq_cp();
    atomic_fetch_add(&q->hdr->slot_pending[i], (uint64_t)delta);
    if (delta < 0)
        fq_wake(&q->hdr->jd_seq, &q->hdr->jd_waiters, INT32_MAX);
}

/* ---- joinable ---- */

/* Items put and not yet done: every record ever reserved, less those done, plus the backlogs
 * (an item is unfinished from the moment put() returns, as in multiprocessing). */
static inline uint64_t fq_unfinished(fq_shmq *q)
{
    fq_reclaim_lock(q);  /* a dead holder's next_seq may be one short */
    uint64_t d = atomic_load(&q->hdr->dones), n = atomic_load(&q->hdr->next_seq);
    return (n > d ? n - d : 0) + fq_pending(q, 1);
}

/* Count one task done; FQ_AGAIN if that would pass the number of messages ever put. */
static int fq_task_done(fq_shmq *q)
{
    fq_shm_header *h = q->hdr;
    uint64_t d = atomic_load(&h->dones);
    for (int repaired = 0;;) {
        if (d >= atomic_load(&h->next_seq)) {
            if (repaired++)
                return FQ_AGAIN;
            fq_reclaim_lock(q);  /* next_seq may be one short while a dead process holds the lock */
            continue;
        }
        fq_cp();
        if (atomic_compare_exchange_weak(&h->dones, &d, d + 1))
            break;
    }
    if (d + 1 == atomic_load(&h->next_seq))
        fq_wake(&h->jd_seq, &h->jd_waiters, INT32_MAX);
    return FQ_OK;
}

static void fq_wait_joined(fq_shmq *q, int64_t timeout_ns)
{
    fq_shm_header *h = q->hdr;
    uint32_t seq = atomic_load(&h->jd_seq);
    fq_mark(q, FQ_W_JD, 1);
    if (fq_unfinished(q) != 0) {
        FQ_CP_WAIT();
        fq_futex_wait(&h->jd_seq, seq, timeout_ns);
    }
    fq_mark(q, FQ_W_JD, 0);
}

/* ---- shutdown ---- */

/* Set the flag (FQ_SHUT_GRACEFUL or FQ_SHUT_IMMEDIATE; it only rises) and wake every waiter.
 * No lock: a stopped lock holder must not block a shutdown. A put that holds the reserve lock
 * and has checked the flag counts as before the shutdown; an immediate one's record is discarded
 * when it is published (fq_publish). */
static void fq_shutdown(fq_shmq *q, uint32_t how)
{
    uint32_t cur = atomic_load(&q->hdr->shutdown);
    while (cur < how) {
        fq_cp();
        if (atomic_compare_exchange_weak(&q->hdr->shutdown, &cur, how))
            break;
    }
    fq_wake_everyone(q);
}

/* ---- segment lifecycle ---- */

static int fq_map(fq_shmq *q, int fd, size_t size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    q->dev_major = major(st.st_dev);
    q->dev_minor = minor(st.st_dev);
    q->ino = st.st_ino;
    q->member = -1;
    q->base = base;
    q->map_size = size;
    q->hdr = (fq_shm_header *)base;
    q->arena = (char *)base + FQ_SHM_HEADER;
    q->seen_cursor = UINT64_MAX;
    q->seen_since = 0;
    q->last_reader_check = 0;
    q->last_pending_check = 0;
    q->spin_ns = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? FQ_SPIN_MAX_NS : -1;
    q->spin_skips = 0;
    return 0;
}

static unsigned fq_log2(uint64_t v)
{
    unsigned n = 0;
    while ((UINT64_C(1) << n) < v)
        n++;
    return n;
}

/* Fill a new, zeroed segment's constants; the magic goes last, so an attach that sees it sees
 * the rest. */
static void fq_init_header(fq_shmq *q, uint64_t cap, uint64_t maxsize)
{
    fq_shm_header *h = q->hdr;
    h->version = FQ_SHM_VERSION;
    h->header_size = FQ_SHM_HEADER;
    h->cap = cap;
    h->maxsize = maxsize;
    h->pidns = fq_pidns();
    atomic_thread_fence(memory_order_release);
    h->magic = FQ_SHM_MAGIC;
    q->cap = cap;
    q->lap_shift = fq_log2(cap);
}

/* Every holder's description of the segment carries a shared flock: see fq_shmq_detach. */
static int fq_shmq_hold(int fd)
{
    return flock(fd, LOCK_SH) < 0 ? -errno : 0;
}

/* Create an anonymous sealed memfd segment. Returns the fd, or -errno. */
static int fq_shmq_create(fq_shmq *q, uint64_t cap, uint64_t maxsize)
{
    int fd = memfd_create("fastq", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    size_t size = FQ_SHM_HEADER + cap;
    int err = 0;
    if (ftruncate(fd, (off_t)size) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 ||
        (err = fq_shmq_hold(fd)) < 0 || (err = fq_map(q, fd, size)) < 0) {
        err = err ? err : -errno;
        close(fd);
        return err;
    }
    fq_init_header(q, cap, maxsize);
    return fd;
}

/* Create a named segment (mode 0600, O_EXCL, pages reserved up front so a full /dev/shm fails
 * here rather than with SIGBUS later). Returns the fd, or -errno. Its last holder unlinks it. */
static int fq_shmq_create_named(fq_shmq *q, const char *name, uint64_t cap, uint64_t maxsize)
{
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t size = FQ_SHM_HEADER + cap;
    int err = posix_fallocate(fd, 0, (off_t)size);
    if (err == 0)
        err = -fq_shmq_hold(fd);
    if (err == 0)
        err = -fq_map(q, fd, size);
    if (err) {
        close(fd);
        shm_unlink(name);
        return -err;
    }
    fq_init_header(q, cap, maxsize);
    return fd;
}

static int fq_shm_open_existing(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* Map a segment received as an fd and check it: 0, -errno, or FQ_CORRUPT. */
static int fq_shmq_attach(fq_shmq *q, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size < FQ_SHM_HEADER + 64)
        return FQ_CORRUPT;
    int err = fq_shmq_hold(fd);
    if (err == 0)
        err = fq_map(q, fd, (size_t)st.st_size);
    if (err < 0)
        return err;
    fq_shm_header *h = q->hdr;
    uint64_t cap = h->cap, ns = h->pidns, mine = fq_pidns();
    if (h->magic != FQ_SHM_MAGIC || h->version != FQ_SHM_VERSION || h->header_size != FQ_SHM_HEADER ||
        cap < 64 || (cap & (cap - 1)) || cap != (uint64_t)st.st_size - FQ_SHM_HEADER ||
        (ns && mine && ns != mine)) {
        munmap(q->base, q->map_size);
        q->base = NULL;
        return FQ_CORRUPT;
    }
    q->cap = cap;
    q->lap_shift = fq_log2(cap);
    return 0;
}

static void fq_shmq_unmap(fq_shmq *q)
{
    if (q->base != NULL) {
        munmap(q->base, q->map_size);
        q->base = NULL;
    }
}

/* The last holder's discard: nobody else maps the segment, so every record between free and tail
 * that is not finished (READY, or a dead writer's or reader's) is given up, and the spill segment
 * it names unlinked. Counts no longer matter: the segment goes with us. */
static void fq_discard_final(fq_shmq *q)
{
    fq_shm_header *h = q->hdr;
    uint64_t f = atomic_load(&h->free), t = atomic_load(&h->tail);
    if (f > t || t - f > q->cap)
        return;
    while (f < t) {
        fq_rec *r = fq_rec_at(q, f);
        uint64_t st = atomic_load(&r->state), kind = st >> 60;
        uint32_t size = r->size, len = r->len;
        if (r->pos != f || size < 64 || size % 64 || (f & (q->cap - 1)) + size > q->cap || size > t - f)
            return;  /* inconsistent: stop rather than guess */
        if (kind != FQ_DONE && kind != FQ_PAD && kind != FQ_ABANDONED && len <= size - FQ_REC_HDR) {
            fq_cp();
            fq_forget_payload((const char *)r + FQ_REC_HDR, len);
        }
        f += size;
    }
}

static int fq_shmq_probe(fq_shmq *q, int fd)
{
    if (q->base == NULL || fd < 0)
        return -1;
    char path[40];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDWR | O_CLOEXEC);  /* a new description, not sharing our lock */
}

/* The last holder's duty, on a mapped q: no file of the queue outlives it. */
static void fq_shmq_remove_files(fq_shmq *q, const char *name)
{
    if (name != NULL)
        shm_unlink(name);
    fq_discard_final(q);
    fq_pool_discard(q);
}

/* With this process's references to the segment dropped: if the probe (a fresh description)
 * gets the exclusive lock, nobody else holds the queue, so remove its files through a mapping of
 * the probe at q (unmapped again). Closes the probe. */
static void fq_shmq_last_out(fq_shmq *q, int probe, size_t size, const char *name)
{
    if (flock(probe, LOCK_EX | LOCK_NB) == 0) {
        if (fq_map(q, probe, size) == 0) {
            fq_shmq_remove_files(q, name);
            fq_shmq_unmap(q);
        } else if (name != NULL) {
            shm_unlink(name);
        }
    }
    close(probe);
}

/* Spill segments (and a named queue's name) are files: unlike the ring, they outlive the last
 * process that holds the queue. So every open file description of a segment carries a shared
 * flock, which fork and fd passing share and which the kernel drops with the last fd and
 * mapping, a killed process's too. Letting go: unmap, close, and probe a fresh description of
 * the segment for an exclusive lock; the one that gets it holds the queue last: it unlinks the
 * name (`name`, NULL for a memfd) and every spill segment still named in the ring. (Attaching
 * takes the shared lock, so it waits for that.) A fork child's or the creator's exit alone
 * leaves the name to the others. */
static void fq_shmq_detach(fq_shmq *q, int fd, const char *name)
{
    int probe = fq_shmq_probe(q, fd);
    size_t size = q->map_size;
    fq_shmq_unmap(q);
    if (fd >= 0)
        close(fd);
    if (probe >= 0)
        fq_shmq_last_out(q, probe, size, name);
}

/* At exit, while another thread of this process may still be inside a call on the queue (a
 * daemon thread blocked in get() holds it): unmapping would crash that thread, but the files must
 * not outlive the queue's last process either. The segment's mapping is replaced in place by
 * private anonymous memory: a thread still inside a call reads zeros, which every read of shared
 * memory is validated against, and what it writes goes nowhere (to the others this process is
 * gone, as if killed). That drops our references to the file (a fork child's LOCK_UN would unlock
 * its parent's shared description too), so the last-holder probe is fq_shmq_detach's. q->base
 * stays valid (anonymous) until fq_shmq_detach unmaps it. Returns 0 with the fd closed, -1 (nothing
 * done) if it could not. */
static int fq_shmq_release_files(fq_shmq *q, int fd, const char *name)
{
    int probe = fq_shmq_probe(q, fd);
    if (probe < 0)
        return -1;
    if (mmap(q->base, q->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED) {
        close(probe);
        return -1;
    }
    close(fd);
    fq_shmq last = *q;  /* q keeps the anonymous mapping for the threads still inside calls */
    fq_shmq_last_out(&last, probe, q->map_size, name);
    return 0;
}

#endif /* FASTQ_SHMQ_H */
