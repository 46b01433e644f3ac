/* fq_reorder: the reorder buffer behind ordered parallel delivery.
 *
 * A window of W slots (W a power of two, 1..2^31) indexed by packet id mod W, an occupancy
 * bitmap, and two uint32 cursors: next_out (the id get() hands out next) and next_id (the id
 * reserve() hands out next). Ids are serial numbers (RFC 1982): d = (uint32_t)(id - next_out)
 * is the distance from the head, so the stream wraps at 2^32 and keeps its order.
 *
 * Invariants (GIL held, or the object's critical section, for every change):
 *   - (uint32_t)(next_id - next_out) <= W: reserve() blocks rather than hand out an id the
 *     window could not hold; so a worker never produces a result that has no room.
 *   - bit i set <=> slots[i] holds one strong reference, for the id next_out + d with
 *     d = (i - next_out) mod W, d < W.
 *   - put() takes only ids that reserve() handed out and get() has not delivered
 *     (d < next_id - next_out, so d < W), once each: a late, unknown or duplicate id is refused.
 */
#ifndef FASTQ_REORDER_H
#define FASTQ_REORDER_H

#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject **slots;
    uint64_t *bits;
    uint32_t mask;      /* W - 1 */
    uint32_t next_out;
    uint32_t next_id;
    Py_ssize_t filled;  /* set bits */
} fq_reorder;

static int fq_reorder_init(fq_reorder *b, uint32_t window, uint32_t start)
{
    size_t words = (window + 63) / 64;
    b->slots = PyMem_Calloc(window, sizeof(PyObject *));
    b->bits = PyMem_Calloc(words, sizeof(uint64_t));
    if (b->slots == NULL || b->bits == NULL) {
        PyMem_Free(b->slots);
        PyMem_Free(b->bits);
        b->slots = NULL;
        b->bits = NULL;
        PyErr_NoMemory();
        return -1;
    }
    b->mask = window - 1;
    b->next_out = b->next_id = start;
    b->filled = 0;
    return 0;
}

static inline int fq_reorder_has(const fq_reorder *b, uint32_t i)
{
    return (int)((b->bits[i >> 6] >> (i & 63)) & 1u);
}

static inline uint32_t fq_reorder_window(const fq_reorder *b) { return b->mask + 1u; }

/* Ids handed out by reserve() and not yet delivered by get(). */
static inline uint32_t fq_reorder_pending(const fq_reorder *b) { return b->next_id - b->next_out; }

/* Store a new reference to item for `id`. Returns 0, or -1 with ValueError set. */
static int fq_reorder_put(fq_reorder *b, uint32_t id, PyObject *item)
{
    uint32_t d = id - b->next_out;
    if (d >= fq_reorder_pending(b)) {  /* implies d < W */
        if (fq_reorder_pending(b) == 0)
            PyErr_Format(PyExc_ValueError,
                         "packet id %lu was not handed out by reserve(), or was delivered already; "
                         "no id is reserved now", (unsigned long)id);
        else
            PyErr_Format(PyExc_ValueError,
                         "packet id %lu was not handed out by reserve(), or was delivered already; "
                         "the reserved, undelivered ids are %lu to %lu (modulo 2**32)",
                         (unsigned long)id, (unsigned long)b->next_out, (unsigned long)(uint32_t)(b->next_id - 1));
        return -1;
    }
    uint32_t i = id & b->mask;
    if (fq_reorder_has(b, i)) {
        PyErr_Format(PyExc_ValueError, "packet id %lu was already put", (unsigned long)id);
        return -1;
    }
    Py_INCREF(item);
    b->slots[i] = item;
    b->bits[i >> 6] |= (uint64_t)1 << (i & 63);
    b->filled++;
    return 0;
}

static inline int fq_reorder_ready(const fq_reorder *b)
{
    return fq_reorder_has(b, b->next_out & b->mask);
}

/* Take the item for next_out (must be ready) and advance; returns the stolen reference. */
static PyObject *fq_reorder_take(fq_reorder *b)
{
    uint32_t i = b->next_out & b->mask;
    PyObject *item = b->slots[i];
    b->slots[i] = NULL;
    b->bits[i >> 6] &= ~((uint64_t)1 << (i & 63));
    b->filled--;
    b->next_out++;
    return item;
}

/* Drop every stored item (each slot emptied before its DECREF runs any destructor). */
static void fq_reorder_clear(fq_reorder *b)
{
    if (b->slots == NULL)
        return;
    for (uint32_t i = 0; i <= b->mask; i++) {
        if (fq_reorder_has(b, i)) {
            PyObject *item = b->slots[i];
            b->slots[i] = NULL;
            b->bits[i >> 6] &= ~((uint64_t)1 << (i & 63));
            b->filled--;
            Py_DECREF(item);
        }
    }
}

static void fq_reorder_free(fq_reorder *b)
{
    if (b->slots != NULL) {
        fq_reorder_clear(b);
        PyMem_Free(b->slots);
        PyMem_Free(b->bits);
        b->slots = NULL;
        b->bits = NULL;
    }
}

#endif /* FASTQ_REORDER_H */
