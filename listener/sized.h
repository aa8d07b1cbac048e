/*
 * Sized structs: how the public option structs grow without breaking a program built against an
 * older header (docs/embedding.md, "Versions and ABI"; the Linux kernel's extensible structs,
 * clone3 and openat2, work the same way).
 *
 * Such a struct starts with `size_t size`. Its _init(), a static inline function of the public
 * header, passes the size the program was compiled with to the library's _init_sized(), which
 * fills the defaults the library knows into that many bytes (zeroing bytes it does not know)
 * and stores the size. A function given the struct then reads it with pt_sized_copy() over
 * its own defaults:
 *
 *   - a smaller size (an older program) is accepted: the fields it does not have take their
 *     defaults;
 *   - a larger size (a newer program) is accepted when every byte the library does not know is
 *     zero (the program left the new fields alone), and refused with -EINVAL otherwise: it asked
 *     for something this library cannot do;
 *   - a size too small to hold the size itself (0: the struct was never initialised), or larger
 *     than PT_SIZED_MAX (garbage, most likely), is refused with -EINVAL.
 *
 * Private to the library, and header-only. Every layer's public structs follow the rule, so
 * it lives in the lowest layer.
 */
#ifndef PORTER_LISTENER_SIZED_H
#define PORTER_LISTENER_SIZED_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* No public struct comes near it; a size past it is taken for garbage, not read through. */
#define PT_SIZED_MAX 4096

/* Fills the `size` bytes at `o` (the program's struct) from the library's `defaults` of
 * `dsize` bytes, zeroes what lies past them, and stores `size` in the struct's size field. */
static inline void pt_sized_init(void *o, size_t size, const void *defaults, size_t dsize)
{
    if (size < sizeof(size_t))
        return; /* nowhere to say the size: pt_sized_copy() refuses it */
    memcpy(o, defaults, size < dsize ? size : dsize);
    if (size > dsize)
        memset((char *)o + dsize, 0, size - dsize);
    memcpy(o, &size, sizeof size);
}

/* Reads the program's struct `src` (its size field first) over `dst`, the library's struct of
 * `dsize` bytes holding its defaults. Returns 0, or -EINVAL (see above; `dst` is then left as
 * it was). On success the size field of `dst` is `dsize`. */
static inline int pt_sized_copy(void *dst, size_t dsize, const void *src)
{
    size_t size;
    memcpy(&size, src, sizeof size);
    if (size < sizeof size || size > PT_SIZED_MAX)
        return -EINVAL;
    for (size_t i = dsize; i < size; i++)
        if (((const unsigned char *)src)[i])
            return -EINVAL;
    memcpy(dst, src, size < dsize ? size : dsize);
    memcpy(dst, &dsize, sizeof dsize);
    return 0;
}

#endif
