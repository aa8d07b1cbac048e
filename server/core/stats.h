/*
 * The stats board: one slot of counters per worker, in memory shared by the master and its
 * workers (made before they fork), so the status page of any worker shows all of them. Each
 * worker writes only its own slot (once a second, and when it answers a status request); a
 * reader may see a slot mid-update, which costs at most one second of staleness in one number.
 */
#ifndef PORTER_SERVER_CORE_STATS_H
#define PORTER_SERVER_CORE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pt_worker_stats {
    pid_t pid; /* 0: the slot has not reported */
    int slot;
    double started, updated; /* ev_now() clock */
    uint64_t live, reading, writing, idle, lingering;
    uint64_t accepted, handled, rejected, requests, invalid, bytes_in, bytes_out;
    uint64_t custodians, timers;
    uint64_t cache_hits, cache_misses, cache_bytes;
    /* HTTP/2: connections so far and now, streams, RST_STREAM received, connections ended for
     * a flood and for a protocol error */
    uint64_t h2_connections, h2_live, h2_streams, h2_resets, h2_floods, h2_errors;
} pt_worker_stats;

typedef struct pt_stats_board pt_stats_board;

/* Maps a board of `nslots` zeroed slots shared with future children. NULL if out of memory. */
pt_stats_board *pt_stats_board_new(int nslots);
pt_worker_stats *pt_stats_board_slot(pt_stats_board *b, int slot);
void pt_stats_board_free(pt_stats_board *b, int nslots);

#endif
