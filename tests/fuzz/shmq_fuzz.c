/* libFuzzer harness for the shared-memory ring behind ProcessQueue (src/fastq/_c/shmq.h).
 *
 * Each input builds a segment, corrupts it, and runs ProcessQueue's attach and get paths on it
 * the way src/fastq/_shm.pyx calls them. The only acceptable outcomes are a clean result and
 * FQ_CORRUPT (QueueCorrupted in Python): a crash, an out-of-bounds access (ASan), undefined
 * behaviour (UBSan), an unexpected status or a loop that does not end is a finding.
 *
 *   1. a byte picks the arena size (4-32 KiB), maxsize, the starting cursor (so records wrap
 *      and PADs appear) and whether the image goes through fq_shmq_attach;
 *   2. legitimate traffic: puts of every payload kind (pickle with out-of-band buffers, bytes,
 *      spill names), gets, records left WRITING or READING by a dead or live owner or given up
 *      (fq_abandon), task_done, fq_advance_free;
 *   3. patches: (offset, length, bytes) written anywhere in the header or the arena;
 *   4. optionally the image is written to a memfd (of a size the input picks) and attached with
 *      fq_shmq_attach;
 *   5. the get path as the Python face runs it (fq_items, fq_peek, fq_read_payload or
 *      fq_payload_parse, fq_claim, copy out every part, fq_release), fq_advance_free with the
 *      dead-reader check, fq_reserve + fq_publish, fq_task_done, fq_unfinished and
 *      fq_discard_all (shutdown(immediate=True)).
 *
 * The segment lives in an ASan-instrumented heap block (not a mapping) so that every access
 * past its end is reported, not silently read from a neighbouring page.
 *
 * Build and run (clang): tests/fuzz/run  (or by hand:)
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I src/fastq/_c tests/fuzz/shmq_fuzz.c -o /tmp/shmq_fuzz
 *   /tmp/shmq_fuzz -timeout=5 -runs=1000000 /tmp/corpus tests/fuzz/corpus
 * Replay without libFuzzer (any C compiler; tests/test_fuzz_corpus.py does this):
 *   cc -DFQ_FUZZ_REPLAY -I src/fastq/_c tests/fuzz/shmq_fuzz.c -o /tmp/replay && /tmp/replay FILES...
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shmq.h"

#define HANG_BOUND 100000 /* iterations of a Python-level retry loop that count as a hang */

static uint64_t me;
static uint64_t dead_ident; /* a pid that does not exist */

static void finding(const char *what, int rc)
{
    fprintf(stderr, "shmq_fuzz: %s (status %d)\n", what, rc);
    abort();
}

/* Statuses a function of shmq.h may return to the Python face. */
static void check_rc(const char *what, int rc)
{
    if (!(rc == FQ_OK || rc == FQ_AGAIN || rc == FQ_SHUT || rc == FQ_CORRUPT || rc == FQ_LOCKED ||
          rc == FQ_TOOBIG))
        finding(what, rc);
}

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned u8(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static unsigned u16(reader *r)
{
    unsigned lo = u8(r);
    return lo | (u8(r) << 8);
}

/* ---- legitimate traffic ---- */

static void put_one(fq_shmq *q, reader *in, unsigned op)
{
    uint64_t lens[4] = {0, 0, 0, 0};
    uint32_t kind = (op >> 3) & 3, nbufs = 0;
    uint64_t quarter = q->cap / 4;
    lens[0] = ((uint64_t)u8(in) * (u8(in) + 1)) % quarter;
    if (kind == FQ_KIND_PICKLE) {
        nbufs = (op >> 5) & 3;
        for (uint32_t i = 0; i < nbufs; i++)
            lens[i + 1] = ((uint64_t)u8(in) * 17) % (quarter / 4);
    } else if (kind == FQ_KIND_SPILL) {
        lens[0] = FQ_SPILL_NAME_LEN;
    }
    uint64_t total = fq_payload_len(nbufs, lens[0], lens + 1);
    if (total == UINT64_MAX)
        finding("fq_payload_len overflowed on sane lengths", 0);
    fq_wslot w;
    int rc = fq_reserve(q, me, total, &w, 0, 0);
    check_rc("fq_reserve (traffic)", rc);
    if (rc != FQ_OK)
        return;
    char *main = fq_payload_write_header(w.payload, nbufs, kind, lens[0], lens + 1);
    if (kind == FQ_KIND_SPILL) {
        static const char hex[] = "0123456789abcdef";
        memcpy(main, "/fastq-", 7);
        for (int i = 7; i < FQ_SPILL_NAME_LEN; i++)
            main[i] = hex[u8(in) & 15];
    } else {
        memset(main, 0x5a, lens[0]);
    }
    uint64_t o = 16 + 8 * (uint64_t)nbufs + lens[0];
    for (uint32_t i = 0; i < nbufs; i++) {
        o = fq_buf_start(o);
        memset(w.payload + o, 0xa5, lens[i + 1]);
        o += lens[i + 1];
    }
    if (o != total)
        finding("payload layout disagrees with fq_payload_len", (int)o);
    switch ((op >> 7) & 1 ? u8(in) & 3 : 0) {
    case 1: /* a writer killed while copying */
        atomic_store(&w.rec->state, fq_st(FQ_WRITING, dead_ident));
        break;
    case 2: /* a live writer still copying (this process) */
        break;
    case 3: /* a write that failed (spill creation, say): ProcessQueue gives the record up */
        fq_abandon(q, &w, me);
        break;
    default:
        if (fq_publish(q, &w, me) != FQ_OK)
            finding("fq_publish of our own record failed", 0);
    }
}

/* ---- the get path, as ProcessQueue._take/_fill/_copy_out run it ---- */

static int fill(const fq_payload *p)
{
    char *dst = malloc(p->main_len + 1);
    if (dst == NULL)
        return -1;
    memcpy(dst, p->main, p->main_len);
    free(dst);
    const char *base = p->main - (16 + 8 * (uint64_t)p->nbufs);
    uint64_t o = 16 + 8 * (uint64_t)p->nbufs + p->main_len;
    for (uint32_t i = 0; i < p->nbufs; i++) {
        uint64_t n = fq_buf_len(p, i);
        o = fq_buf_start(o);
        dst = malloc(n + 1);
        if (dst == NULL)
            return -1;
        memcpy(dst, base + o, n);
        free(dst);
        o += n;
    }
    return 0;
}

enum { TAKE_OK = 0, TAKE_AGAIN = 1, TAKE_CORRUPT = 2, TAKE_OSERROR = 3 };

static int take(fq_shmq *q, const fq_rslot *s)
{
    fq_payload p;
    int rc = fq_read_payload(s, &p); /* as ProcessQueue._take */
    if (rc == FQ_CORRUPT)
        return TAKE_CORRUPT;
    if (rc != FQ_OK)
        return TAKE_AGAIN;
    if (fq_claim(q, s, me) != FQ_OK)
        return TAKE_AGAIN;
    int out = TAKE_OK;
    if (p.kind == FQ_KIND_SPILL) {
        char *spill = NULL;
        uint64_t size = 0;
        uint64_t gen;
        if (p.main_len == FQ_SPILL_NAME_LEN && fq_spill_pooled(p.main) && fq_pool_parse(q, p.main, p.main_len, &gen) < 0)
            rc = FQ_CORRUPT;  /* as ProcessQueue._take_pooled: not this queue's pool */
        else
            rc = fq_spill_open(p.main, p.main_len, 0, &spill, &size);
        if (rc == FQ_CORRUPT || rc == FQ_AGAIN)  /* claimed: a missing segment is inconsistent */
            out = TAKE_CORRUPT;
        else if (rc < 0)
            out = TAKE_OSERROR;
        else {
            fq_payload sp;
            if (fq_payload_parse(spill, size, &sp) != FQ_OK || sp.kind == FQ_KIND_SPILL)
                out = TAKE_CORRUPT;
            else
                fill(&sp);
            munmap(spill, size);
            fq_spill_unlink(p.main, p.main_len);
        }
    } else {
        fill(&p);
    }
    fq_release(q, s, me);
    return out;
}

/* Make the next fq_peek treat a WRITING record at head as seen for a whole slice already, so the
 * dead-writer path runs without sleeping. */
static void age_head(fq_shmq *q)
{
    q->seen_cursor = atomic_load(&q->hdr->head);
    q->seen_since = fq_now_ns() - 2 * FQ_SLICE_NS;
}

/* ProcessQueue.get_nowait() / get_many(): returns how many items it took, stops at the first
 * Empty, ShutDown or QueueCorrupted. */
static int get_all(fq_shmq *q, int age)
{
    int got = 0;
    for (long iter = 0;; iter++) {
        if (iter > HANG_BOUND)
            finding("the get loop does not end (a Python get() would spin forever)", got);
        if (age)
            age_head(q);
        fq_rslot s;
        int rc = fq_peek(q, &s);
        check_rc("fq_peek", rc);
        if (rc == FQ_OK) {
            int t = take(q, &s);
            if (t == TAKE_AGAIN)
                continue;
            if (t == TAKE_CORRUPT)
                return got;
            if (t == TAKE_OSERROR)
                finding("a corrupted record raises OSError, not QueueCorrupted", t);
            got++;
            continue;
        }
        if (rc != FQ_AGAIN && rc != FQ_CORRUPT)
            finding("fq_peek: unexpected status", rc);
        return got;
    }
}

static void hold_one(fq_shmq *q, unsigned op)
{
    fq_rslot s;
    int rc = fq_peek(q, &s);
    check_rc("fq_peek (traffic)", rc);
    if (rc != FQ_OK)
        return;
    if (fq_claim(q, &s, me) != FQ_OK)
        return;
    if (op & 8) /* a consumer killed while reading */
        atomic_store(&s.rec->state, fq_st(FQ_READING, dead_ident));
}

static void patch(char *seg, size_t size, reader *in)
{
    unsigned where = u16(in);
    unsigned len = 1 + (u8(in) & 7);
    size_t off;
    if (where & 0x8000)
        off = (where & 0x7fff) % FQ_SHM_HEADER; /* the header page */
    else
        off = FQ_SHM_HEADER + (where % (size - FQ_SHM_HEADER)); /* the arena */
    for (unsigned i = 0; i < len && off + i < size; i++)
        seg[off + i] = (char)u8(in);
}

/* Write the image to a memfd of `size` bytes and attach it as a spawned child would. Returns a
 * heap copy of the mapping in *out, or NULL if attach refused it (with FQ_CORRUPT). */
static char *attach(fq_shmq *q, const char *seg, size_t seg_size, size_t size)
{
    int fd = memfd_create("fastq-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return NULL;
    }
    size_t n = seg_size < size ? seg_size : size;
    if (pwrite(fd, seg, n, 0) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    memset(q, 0, sizeof *q);
    int rc = fq_shmq_attach(q, fd);
    close(fd);
    if (rc != 0) {
        if (rc != FQ_CORRUPT && rc >= 0)
            finding("fq_shmq_attach: unexpected status", rc);
        if (q->base != NULL)
            finding("fq_shmq_attach failed but left a mapping", rc);
        return NULL;
    }
    if (q->map_size != size || q->cap + FQ_SHM_HEADER != size)
        finding("fq_shmq_attach accepted a size that disagrees with cap", (int)q->cap);
    char *copy = aligned_alloc(64, q->map_size);
    memcpy(copy, q->base, q->map_size);
    munmap(q->base, q->map_size);
    q->base = copy;
    q->hdr = (fq_shm_header *)copy;
    q->arena = copy + FQ_SHM_HEADER;
    return copy;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fq_ident_setup() != 0)
        abort();
    me = fq_self_ident();
    dead_ident = fq_st(0, (UINT64_C(12345) << FQ_PID_BITS) | FQ_PID_MASK); /* pid 2^22-1 */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    reader in = {data, n};
    unsigned setup = u8(&in);
    uint64_t cap = UINT64_C(4096) << (setup & 3);
    uint64_t maxsize = ((setup >> 2) & 3) ? ((setup >> 2) & 3) * 3 : 0;
    int via_attach = (setup >> 4) & 1;
    uint64_t start = ((uint64_t)u16(&in) * 64) % (4 * cap); /* a few laps in */
    uint64_t seq0 = u8(&in);

    size_t size = FQ_SHM_HEADER + cap;
    char *seg = aligned_alloc(64, size);
    memset(seg, 0, size);
    fq_shmq q;
    memset(&q, 0, sizeof q);
    q.base = seg;
    q.map_size = size;
    q.hdr = (fq_shm_header *)seg;
    q.arena = seg + FQ_SHM_HEADER;
    q.cap = cap;
    q.lap_shift = fq_log2(cap);
    q.seen_cursor = UINT64_MAX;
    fq_shm_header *h = q.hdr;
    h->version = FQ_SHM_VERSION;
    h->header_size = FQ_SHM_HEADER;
    h->cap = cap;
    h->maxsize = maxsize;
    h->pidns = fq_pidns();
    h->magic = FQ_SHM_MAGIC;
    atomic_store(&h->tail, start);
    atomic_store(&h->head, start);
    atomic_store(&h->free, start);
    atomic_store(&h->undo_tail, start);
    atomic_store(&h->next_seq, seq0);
    atomic_store(&h->undo_seq, seq0);
    atomic_store(&h->dones, seq0);

    /* 2. traffic */
    unsigned ops = u8(&in) % 24;
    for (unsigned i = 0; i < ops; i++) {
        unsigned op = u8(&in);
        switch (op & 7) {
        case 0:
        case 1:
        case 2:
            put_one(&q, &in, op);
            break;
        case 3:
            get_all(&q, 0);
            break;
        case 4:
            hold_one(&q, op);
            break;
        case 5:
            check_rc("fq_task_done", fq_task_done(&q));
            break;
        case 6:
            fq_advance_free(&q, (op >> 3) & 1);
            break;
        default: {
            fq_rslot s;
            if (fq_peek(&q, &s) == FQ_OK && fq_claim(&q, &s, me) == FQ_OK)
                fq_release(&q, &s, me);
        }
        }
    }

    /* 3. corruption */
    unsigned patches = u8(&in) % 16;
    for (unsigned i = 0; i < patches && in.n; i++)
        patch(seg, size, &in);

    /* 4. attach */
    char *heap = seg;
    if (via_attach) {
        unsigned s = u8(&in);
        size_t msize = size;
        if (s & 1) /* a size that may disagree with the header */
            msize = (s & 2) ? FQ_SHM_HEADER + ((uint64_t)64 << (s >> 2 & 15)) : (size_t)u16(&in) * 8;
        memset(&q, 0, sizeof q);
        heap = attach(&q, seg, size, msize);
        free(seg);
        if (heap == NULL)
            return 0;
    }

    /* 5. the paths a Python caller runs on whatever is there now */
    uint64_t items;
    int rc = fq_items(&q, &items);
    check_rc("fq_items", rc);
    get_all(&q, 1);
    fq_advance_free(&q, 1);
    for (int i = 0; i < 3; i++) {
        fq_wslot w;
        uint64_t main_len = (uint64_t)u8(&in) * (i + 1) * 7, zero = 0;
        uint64_t len = fq_payload_len(0, main_len, &zero);
        rc = fq_reserve(&q, me, len, &w, 0, 0);
        check_rc("fq_reserve", rc);
        if (rc == FQ_OK) {
            char *main = fq_payload_write_header(w.payload, 0, FQ_KIND_BYTES, main_len, &zero);
            memset(main, 0x77, main_len);
            fq_publish(&q, &w, me);
        }
    }
    get_all(&q, 1);
    (void)fq_unfinished(&q);
    check_rc("fq_task_done", fq_task_done(&q));
    check_rc("fq_discard_all", fq_discard_all(&q, me));
    rc = fq_items(&q, &items);
    check_rc("fq_items", rc);
    free(heap);
    return 0;
}

#ifdef FQ_FUZZ_REPLAY
/* Replay files (a corpus) without libFuzzer: exit status 0 when every input runs clean. */
int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int count = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 2;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees reads past the input */
        memcpy(copy, buf, n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        count++;
    }
    printf("shmq_fuzz replay: %d inputs ran clean\n", count);
    return 0;
}
#endif
