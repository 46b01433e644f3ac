/* fq_ring: the item store of the in-process Queue family (FIFO ring, LIFO stack, binary heap).
 *
 * Invariants
 *   - cap is a power of two >= FQ_RING_MIN; 0 <= count <= cap.
 *   - buf[(head + i) & (cap - 1)] for i < count holds one strong reference each; other slots are
 *     garbage. The stack and the heap only push and pop at the back, so their head stays 0 and
 *     they are plain arrays buf[0..count).
 *   - Callers hold the GIL (or the object's critical section). No Python code runs while the ring
 *     is inconsistent: every function finishes its change before it returns an item or an error,
 *     so a re-entrant put() from a __del__ or a signal handler sees a whole ring. The heap's
 *     comparisons do run Python code; they swap whole slots, so the array always holds every item
 *     exactly once, and the caller keeps other threads out while they run (see _queue.pxi).
 *   - The ring grows x2 when full and shrinks x1/2 when a quarter full, never below FQ_RING_MIN.
 *     A failed shrink is ignored (the ring stays larger); a failed grow raises MemoryError and
 *     leaves the ring as it was.
 */
#ifndef FASTQ_RING_H
#define FASTQ_RING_H

#include <Python.h>
#include <string.h>

#define FQ_RING_MIN 8

typedef struct {
    PyObject **buf;
    Py_ssize_t cap;
    Py_ssize_t head;
    Py_ssize_t count;
} fq_ring;

static int fq_ring_init(fq_ring *r)
{
    r->buf = PyMem_New(PyObject *, FQ_RING_MIN);
    if (r->buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    r->cap = FQ_RING_MIN;
    r->head = 0;
    r->count = 0;
    return 0;
}

static inline PyObject **fq_ring_slot(fq_ring *r, Py_ssize_t i)
{
    return &r->buf[(r->head + i) & (r->cap - 1)];
}

/* Move the items into a new buffer of `cap` slots, in order, starting at 0. */
static int fq_ring_resize(fq_ring *r, Py_ssize_t cap)
{
    PyObject **nb = PyMem_New(PyObject *, cap);
    if (nb == NULL)
        return -1;
    Py_ssize_t first = r->cap - r->head;  /* slots from head to the end of the old buffer */
    if (first > r->count)
        first = r->count;
    memcpy(nb, r->buf + r->head, first * sizeof(PyObject *));
    memcpy(nb + first, r->buf, (r->count - first) * sizeof(PyObject *));
    PyMem_Free(r->buf);
    r->buf = nb;
    r->cap = cap;
    r->head = 0;
    return 0;
}

static inline void fq_ring_maybe_shrink(fq_ring *r)
{
    if (r->cap > FQ_RING_MIN && r->count <= r->cap / 4)
        (void)fq_ring_resize(r, r->cap / 2);
}

/* Append a new reference to item at the back. */
static inline int fq_ring_push(fq_ring *r, PyObject *item)
{
    if (r->count == r->cap) {
        if (r->cap > PY_SSIZE_T_MAX / (Py_ssize_t)(2 * sizeof(PyObject *)) ||
            fq_ring_resize(r, r->cap * 2) < 0) {
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_INCREF(item);
    *fq_ring_slot(r, r->count) = item;
    r->count++;
    return 0;
}

/* Remove and return (as a new reference) the front item; the ring must not be empty. */
static inline PyObject *fq_ring_pop_front(fq_ring *r)
{
    PyObject *item = r->buf[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->count--;
    fq_ring_maybe_shrink(r);
    return item;
}

/* Remove and return (as a new reference) the back item; the ring must not be empty. */
static inline PyObject *fq_ring_pop_back(fq_ring *r)
{
    r->count--;
    PyObject *item = *fq_ring_slot(r, r->count);
    fq_ring_maybe_shrink(r);
    return item;
}

/* Drop every item, one at a time, so that a destructor run by a DECREF sees a whole ring. */
static void fq_ring_clear(fq_ring *r)
{
    while (r->count > 0) {
        PyObject *item = fq_ring_pop_back(r);
        Py_DECREF(item);
    }
}

static void fq_ring_free(fq_ring *r)
{
    if (r->buf != NULL) {
        fq_ring_clear(r);
        PyMem_Free(r->buf);
        r->buf = NULL;
    }
}

/* ---- binary min-heap on buf[0..count), heapq's algorithm and order ---- */

static inline void fq_swap(PyObject **a, PyObject **b)
{
    PyObject *t = *a;
    *a = *b;
    *b = t;
}

/* Is a < b? 1, 0, or -1 with an exception set. Holds references across the call. */
static int fq_less(PyObject *a, PyObject *b)
{
    Py_INCREF(a);
    Py_INCREF(b);
    int lt = PyObject_RichCompareBool(a, b, Py_LT);
    Py_DECREF(a);
    Py_DECREF(b);
    return lt;
}

/* Move the item at pos up towards start while it is smaller than its parent (heapq._siftdown). */
static int fq_heap_sift_toward_root(fq_ring *r, Py_ssize_t start, Py_ssize_t pos)
{
    PyObject **a = r->buf;
    while (pos > start) {
        Py_ssize_t parent = (pos - 1) >> 1;
        int lt = fq_less(a[pos], a[parent]);
        if (lt < 0)
            return -1;
        if (!lt)
            break;
        a = r->buf;  /* a comparison may not resize us (the caller guards), but reload anyway */
        fq_swap(&a[pos], &a[parent]);
        pos = parent;
    }
    return 0;
}

/* Bottom-up sift of the item at pos (heapq._siftup): follow the smaller child to a leaf, then
 * sift back toward pos. Same comparisons, so the same order of equal items, as heapq. */
static int fq_heap_sift_toward_leaf(fq_ring *r, Py_ssize_t pos)
{
    Py_ssize_t end = r->count, start = pos, child = 2 * pos + 1;
    while (child < end) {
        Py_ssize_t right = child + 1;
        if (right < end) {
            int lt = fq_less(r->buf[child], r->buf[right]);
            if (lt < 0)
                return -1;
            if (!lt)
                child = right;
        }
        fq_swap(&r->buf[pos], &r->buf[child]);
        pos = child;
        child = 2 * pos + 1;
    }
    return fq_heap_sift_toward_root(r, start, pos);
}

/* heappush: on a comparison error the new item stays in the heap, as with heapq. */
static int fq_heap_push(fq_ring *r, PyObject *item)
{
    if (fq_ring_push(r, item) < 0)
        return -1;
    return fq_heap_sift_toward_root(r, 0, r->count - 1);
}

/* heappop: on a comparison error the popped item is dropped, as with heapq. */
static PyObject *fq_heap_pop(fq_ring *r)
{
    PyObject *last = fq_ring_pop_back(r);
    if (r->count == 0)
        return last;
    PyObject *top = r->buf[0];
    r->buf[0] = last;
    if (fq_heap_sift_toward_leaf(r, 0) < 0) {
        Py_DECREF(top);
        return NULL;
    }
    return top;
}

#endif /* FASTQ_RING_H */
