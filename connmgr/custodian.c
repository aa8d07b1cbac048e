#include "connmgr/custodian.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Entries live in chunks owned by their custodian: the first few inside the custodian itself,
 * later ones carved from its arena. Registered entries form a circular list around a sentinel,
 * newest first, so shutdown pops from the front (LIFO) and unregister is O(1). Unregistered
 * slots go to a free list; no slot is ever freed before the custodian is reaped, so a handle
 * can be checked (prev == NULL) after its entry ran.
 */
struct pt_custodian_entry {
    pt_custodian_entry *prev; /* NULL once the slot is free or its callback has been taken */
    pt_custodian_entry *next; /* also links the free list */
    pt_custodian *owner;
    pt_release_cb cb;
    void *data;
};

#define ALIGNMENT 16
/* One connection registers one entry of its own; handlers that register more get chunks. */
#define INLINE_ENTRIES 2
#define FIRST_CHUNK_ENTRIES 16
#define MAX_CHUNK_ENTRIES 256
#define BLOCK_SIZE 4096
/* Bigger requests get their own block so they do not waste the rest of the current one. */
#define LARGE_ALLOC (BLOCK_SIZE / 4)

typedef struct block {
    struct block *next;
    _Alignas(ALIGNMENT) unsigned char mem[];
} block;

#define BLOCK_CAPACITY (BLOCK_SIZE - sizeof(block))

struct pt_custodian {
    pt_custodian *parent;
    pt_custodian *children; /* live children, newest first */
    pt_custodian *prev_sibling;
    pt_custodian *next_sibling;
    pt_custodian *reap_next;
    pt_custodian_entry entries; /* sentinel; entries.next is the newest */
    pt_custodian_entry *free_slots;
    pt_custodian_entry *chunk; /* unused slots of the newest chunk */
    size_t chunk_left;
    size_t next_chunk_entries;
    block *blocks;
    unsigned char *bump;
    size_t bump_left;
    bool shut_down;
    pt_custodian_entry inline_entries[INLINE_ENTRIES];
    _Alignas(ALIGNMENT) unsigned char first_arena[];
};

static _Thread_local size_t live_count;
static _Thread_local size_t unreaped_count;
static _Thread_local pt_custodian *reap_list;

#define OUT_OF_MEMORY() out_of_memory(__FILE__, __LINE__)

static _Noreturn void out_of_memory(const char *file, int line)
{
    fprintf(stderr, "%s:%d: out of memory\n", file, line);
    abort();
}

static void *zalloc(size_t size)
{
    void *p;

    /* malloc's alignment is 16 on every 64-bit glibc target; fall back where it is not. */
    if (_Alignof(max_align_t) >= ALIGNMENT) {
        p = calloc(1, size);
    } else {
        size = (size + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
        p = aligned_alloc(ALIGNMENT, size);
        if (p != NULL)
            memset(p, 0, size);
    }
    if (p == NULL)
        OUT_OF_MEMORY();
    return p;
}

static unsigned char *new_block(pt_custodian *c, size_t capacity)
{
    block *b;

    if (capacity > SIZE_MAX - sizeof(block))
        OUT_OF_MEMORY();
    b = zalloc(sizeof(block) + capacity);
    b->next = c->blocks;
    c->blocks = b;
    return b->mem;
}

pt_custodian *pt_custodian_new(pt_custodian *parent)
{
    return pt_custodian_new_sized(parent, 0);
}

pt_custodian *pt_custodian_new_sized(pt_custodian *parent, size_t arena)
{
    pt_custodian *c;

    if (parent != NULL && parent->shut_down)
        return NULL;
    arena = (arena + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    if (arena > SIZE_MAX - sizeof(*c))
        OUT_OF_MEMORY();
    /* The first arena shares the custodian's allocation: an object that needs one small block
     * (a connection) costs one malloc and no unused tail. */
    c = zalloc(sizeof(*c) + arena);
    if (arena) {
        c->bump = c->first_arena;
        c->bump_left = arena;
    }
    c->parent = parent;
    c->entries.prev = &c->entries;
    c->entries.next = &c->entries;
    c->chunk = c->inline_entries;
    c->chunk_left = INLINE_ENTRIES;
    c->next_chunk_entries = FIRST_CHUNK_ENTRIES;
    if (parent != NULL) {
        c->next_sibling = parent->children;
        if (parent->children != NULL)
            parent->children->prev_sibling = c;
        parent->children = c;
    }
    live_count++;
    return c;
}

static pt_custodian_entry *take_slot(pt_custodian *c)
{
    pt_custodian_entry *e;

    if (c->free_slots != NULL) {
        e = c->free_slots;
        c->free_slots = e->next;
        return e;
    }
    if (c->chunk_left == 0) {
        c->chunk = pt_custodian_alloc(c, c->next_chunk_entries * sizeof(pt_custodian_entry));
        c->chunk_left = c->next_chunk_entries;
        if (c->next_chunk_entries < MAX_CHUNK_ENTRIES)
            c->next_chunk_entries *= 2;
    }
    c->chunk_left--;
    return c->chunk++;
}

pt_custodian_entry *pt_custodian_register(pt_custodian *c, pt_release_cb cb, void *data)
{
    pt_custodian_entry *e;

    if (c == NULL || c->shut_down)
        return NULL;
    e = take_slot(c);
    e->owner = c;
    e->cb = cb;
    e->data = data;
    e->prev = &c->entries;
    e->next = c->entries.next;
    c->entries.next->prev = e;
    c->entries.next = e;
    return e;
}

void pt_custodian_entry_set(pt_custodian_entry *e, void *data)
{
    if (e != NULL)
        e->data = data;
}

static void unlink_entry(pt_custodian_entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = NULL;
    e->next = NULL;
}

static void free_slot(pt_custodian_entry *e)
{
    e->cb = NULL;
    e->data = NULL;
    e->next = e->owner->free_slots;
    e->owner->free_slots = e;
}

void pt_custodian_unregister(pt_custodian_entry *e)
{
    /* prev == NULL: the entry already ran (typically this call comes from its own callback,
     * through the owner's close path) or was unregistered; nothing to forget. */
    if (e == NULL || e->prev == NULL)
        return;
    unlink_entry(e);
    free_slot(e);
}

void pt_custodian_release(pt_custodian_entry *e)
{
    if (e == NULL || e->prev == NULL)
        return;
    unlink_entry(e);
    if (e->cb != NULL)
        e->cb(e->data);
    /* Only now may the slot be reused: had the callback registered something into it, an
     * unregister of this handle from inside the callback would have forgotten the new entry.
     * The custodian may have been shut down meanwhile; its memory lives until reap. */
    free_slot(e);
}

void *pt_custodian_alloc(pt_custodian *c, size_t size)
{
    unsigned char *p;

    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - (ALIGNMENT - 1))
        OUT_OF_MEMORY();
    size = (size + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    if (size > LARGE_ALLOC)
        return new_block(c, size);
    if (size > c->bump_left) {
        c->bump = new_block(c, BLOCK_CAPACITY);
        c->bump_left = BLOCK_CAPACITY;
    }
    p = c->bump;
    c->bump += size;
    c->bump_left -= size;
    return p;
}

char *pt_custodian_strndup(pt_custodian *c, const char *s, size_t len)
{
    char *p;

    if (len == SIZE_MAX)
        OUT_OF_MEMORY();
    p = pt_custodian_alloc(c, len + 1);
    if (len > 0)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void pt_custodian_shutdown(pt_custodian *c)
{
    pt_custodian_entry *e;

    if (c == NULL || c->shut_down)
        return;
    /* Marked first, so that a callback shutting this custodian down again returns at once and
     * nothing new can be registered or created under it. A callback that shuts down an ancestor
     * runs the ancestor's entries right there, before this custodian's remaining ones: this one
     * is already unlinked, so nothing runs twice. */
    c->shut_down = true;
    live_count--;
    unreaped_count++;
    c->reap_next = reap_list;
    reap_list = c;

    /* Unlinked from a live parent now: this custodian is reaped on its own, and the parent's
     * shutdown must not find it again. */
    if (c->parent != NULL) {
        if (c->prev_sibling != NULL)
            c->prev_sibling->next_sibling = c->next_sibling;
        else
            c->parent->children = c->next_sibling;
        if (c->next_sibling != NULL)
            c->next_sibling->prev_sibling = c->prev_sibling;
        c->prev_sibling = NULL;
        c->next_sibling = NULL;
    }

    /* Re-read the heads each time: callbacks may shut down or unregister what comes next. */
    while (c->children != NULL)
        pt_custodian_shutdown(c->children);
    while ((e = c->entries.next) != &c->entries) {
        unlink_entry(e);
        if (e->cb != NULL)
            e->cb(e->data);
    }
}

bool pt_custodian_is_shut_down(const pt_custodian *c)
{
    return c == NULL || c->shut_down;
}

pt_custodian *pt_custodian_parent(const pt_custodian *c)
{
    return c != NULL ? c->parent : NULL;
}

void pt_custodian_reap(void)
{
    pt_custodian *c;
    block *b;

    while ((c = reap_list) != NULL) {
        reap_list = c->reap_next;
        while ((b = c->blocks) != NULL) {
            c->blocks = b->next;
            free(b);
        }
        free(c);
        unreaped_count--;
    }
}

bool pt_custodian_is_bare(const pt_custodian *c)
{
    return c->children == NULL && c->entries.next != &c->entries &&
           c->entries.next->next == &c->entries;
}

size_t pt_custodian_live_count(void)
{
    return live_count;
}

size_t pt_custodian_unreaped_count(void)
{
    return unreaped_count;
}
