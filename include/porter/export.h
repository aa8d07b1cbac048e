/**
 * @file
 * The export macro of libporter's public API (libuv's UV_EXTERN, SQLite's SQLITE_API).
 *
 * libporter is compiled with -fvisibility=hidden: a function is exported from libporter.so
 * only when its declaration says PT_API, and every function the installed headers declare
 * says it (a test compares the two sets). What the library uses inside itself stays private to
 * it, whatever its name.
 */
#ifndef PORTER_EXPORT_H
#define PORTER_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
/** Marks a function of the public API: exported from the shared library. */
#define PT_API __attribute__((visibility("default")))
#else
#define PT_API /**< a compiler without visibility: the linker's defaults */
#endif

#endif
