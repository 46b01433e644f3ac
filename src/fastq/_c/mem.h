/* Memory a ProcessQueue reader copies large items into (fastq._shm's _Region).
 *
 * A fresh malloc'd buffer of many MiB costs a page fault per 4 KiB page, each zeroing its page: the
 * reader's copy then runs at a fifth of memcpy speed (docs/design/SHM-QUEUE.md, "Large items").
 * Here a buffer is a private anonymous mapping, 2 MiB aligned with transparent huge pages advised
 * when it spans one (32 faults for 64 MiB instead of 16384, where the kernel allows THP on madvise),
 * populated by one madvise call instead of faulting page by page; _shm.pyx keeps recently freed
 * ones mapped, so that a steady stream of items reuses warm pages. */
#ifndef FASTQ_MEM_H
#define FASTQ_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_POPULATE_WRITE /* Linux 5.14; older kernels answer EINVAL and pages fault in as touched */
#define MADV_POPULATE_WRITE 23
#endif

#define FQ_HUGE_PAGE ((size_t)2 << 20)

/* The length a buffer of n bytes is mapped with: whole huge pages from 2 MiB up, else whole pages. */
static inline size_t fq_mem_round(size_t n)
{
    size_t unit = n >= FQ_HUGE_PAGE ? FQ_HUGE_PAGE : (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - unit)
        return 0;
    return (n + unit - 1) / unit * unit;
}

/* Map len bytes (from fq_mem_round) read-write, populated; NULL (errno set) on failure. */
static char *fq_mem_map(size_t len)
{
    size_t slack = len >= FQ_HUGE_PAGE ? FQ_HUGE_PAGE : 0;  /* room to align to a huge page */
    char *p = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (slack) {
        uintptr_t at = ((uintptr_t)p + FQ_HUGE_PAGE - 1) & ~(uintptr_t)(FQ_HUGE_PAGE - 1);
        size_t head = at - (uintptr_t)p;
        if (head)
            munmap(p, head);
        if (slack - head)
            munmap((char *)at + len, slack - head);
        p = (char *)at;
        madvise(p, len, MADV_HUGEPAGE);  /* advice only: THP off (or "never") leaves 4 KiB pages */
    }
    madvise(p, len, MADV_POPULATE_WRITE);  /* advice too: a failure leaves the pages to fault in */
    return p;
}

#endif
