#include "server/core/stats.h"

#include <sys/mman.h>

struct pt_stats_board {
    pt_worker_stats slots[1];
};

pt_stats_board *pt_stats_board_new(int nslots)
{
    void *p = mmap(NULL, (size_t)nslots * sizeof(pt_worker_stats), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

pt_worker_stats *pt_stats_board_slot(pt_stats_board *b, int slot)
{
    return &b->slots[slot];
}

void pt_stats_board_free(pt_stats_board *b, int nslots)
{
    if (b)
        munmap(b, (size_t)nslots * sizeof(pt_worker_stats));
}
