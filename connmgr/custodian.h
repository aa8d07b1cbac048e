/**
 * @file
 * Custodian: a resource group that owns everything registered with it and releases it all at
 * once (Racket's custodians).
 *
 * Ownership: a custodian owns its release entries, the memory from pt_custodian_alloc(), and
 * its child custodians. Register a resource *before* acquiring it (nginx's pool cleanup), then
 * fill in the registered data; a failed acquisition unregisters. pt_custodian_shutdown() shuts
 * children down first (newest first), then runs release callbacks in LIFO order, then marks the
 * custodian dead. Memory (the custodian itself, its allocations) is *not* freed at shutdown:
 * it stays valid until pt_custodian_reap(), which the owner of the loop calls after the
 * callback stack has unwound (libuv's uv_close), so a callback may shut down the custodian
 * owning the object it is running on.
 *
 * Threading: custodians belong to the thread that made them; counters and the reap list are
 * per thread. Errors: functions that can fail return NULL or a negative errno; allocation
 * failure aborts (the request path cannot recover from it).
 */
#ifndef PORTER_CONNMGR_CUSTODIAN_H
#define PORTER_CONNMGR_CUSTODIAN_H

#include <stdbool.h>
#include <stddef.h>

#include "porter/export.h"

typedef struct pt_custodian pt_custodian;
typedef struct pt_custodian_entry pt_custodian_entry;
/** Releases one resource: the callback of pt_custodian_register(). */
typedef void (*pt_release_cb)(void *data);

/** Creates a custodian, a child of `parent` (NULL for a root). Returns NULL if `parent` is
 * already shut down. */
PT_API pt_custodian *pt_custodian_new(pt_custodian *parent);

/** Like pt_custodian_new(), with the first `arena` bytes of pt_custodian_alloc() memory in the
 * custodian's own allocation (one malloc for an object whose size is known up front). */
PT_API pt_custodian *pt_custodian_new_sized(pt_custodian *parent, size_t arena);

/** Registers `cb(data)` to run when `c` shuts down. Returns a handle that stays valid until the
 * entry runs or is unregistered, or NULL if `c` is shut down (then acquire nothing). */
PT_API pt_custodian_entry *pt_custodian_register(pt_custodian *c, pt_release_cb cb, void *data);

/** Changes the data an entry will be called with (register first, acquire, then set). */
PT_API void pt_custodian_entry_set(pt_custodian_entry *e, void *data);

/** Forgets an entry without running it: its owner released the resource itself. NULL: no-op. */
PT_API void pt_custodian_unregister(pt_custodian_entry *e);

/** Runs an entry's callback now and forgets it. NULL: no-op. */
PT_API void pt_custodian_release(pt_custodian_entry *e);

/** Returns `size` zeroed bytes owned by `c` (16-byte aligned), freed when `c` is reaped. */
PT_API void *pt_custodian_alloc(pt_custodian *c, size_t size);

/** Returns a copy of `len` bytes of `s` plus a terminating NUL, owned by `c`. */
PT_API char *pt_custodian_strndup(pt_custodian *c, const char *s, size_t len);

/** Shuts `c` down: children first, then release callbacks LIFO. Idempotent; NULL: no-op. The
 * memory stays valid until pt_custodian_reap(). */
PT_API void pt_custodian_shutdown(pt_custodian *c);

/** Returns true once `c` has been shut down. */
PT_API bool pt_custodian_is_shut_down(const pt_custodian *c);

/** Returns true if `c` owns exactly one entry and no child: only what its creator registered. */
PT_API bool pt_custodian_is_bare(const pt_custodian *c);

/** Returns the parent of `c` (NULL for a root). */
PT_API pt_custodian *pt_custodian_parent(const pt_custodian *c);

/** Frees the memory of every custodian of this thread that has been shut down. Call it only
 * when no callback holds a pointer into that memory (at the end of a loop iteration). */
PT_API void pt_custodian_reap(void);

/** Counters for tests and the status page (this thread): custodians created and not yet shut
 * down, and shut down but not yet reaped. */
PT_API size_t pt_custodian_live_count(void);
PT_API size_t pt_custodian_unreaped_count(void);

#endif
