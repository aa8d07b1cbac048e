/*
 * Request paths for static files: decode and normalise the path of a request target, open it
 * confined to a document root, and percent-encode a path for a Location header.
 *
 * Ownership: nothing is allocated. Every function writes into memory the caller owns and reads
 * its input without keeping it. pt_path_open_beneath() returns an fd the caller owns.
 *
 * Threading: no state; safe from any thread.
 *
 * Errors: a negative errno. -EINVAL means a bad request (the caller answers 400),
 * -ENAMETOOLONG that the output buffer is too small (414 or 400); from the open: -ENOENT,
 * -ENOTDIR (404), -EACCES (403), -EXDEV (the path leaves the root through a symlink: 404 or
 * 403), -ELOOP, or whatever the file system says.
 */
#ifndef PORTER_SERVER_CORE_PATH_H
#define PORTER_SERVER_CORE_PATH_H

#include <stddef.h>
#include <sys/types.h>

/* Decodes and normalises the path part of an origin-form request target: the caller passes
 * only what comes before '?' or '#', starting with '/'. `path` need not be NUL-terminated.
 *
 * Percent-escapes (%XX, hex digits in either case) are decoded once, then the decoded path is
 * normalised: an encoded '/' (%2F) separates segments like a raw one, as in nginx, so
 * "/..%2f" is the same as "/../". Runs of '/' collapse into one, "." segments go, ".." removes
 * the segment before it. A final "." or ".." names a directory, so the result then ends in
 * '/' (RFC 3986's remove_dot_segments: "/a/b/.." is "/a/"); otherwise a trailing '/' is kept
 * exactly when the input has one. '\\' is an ordinary byte (it separates nothing on Linux), as
 * are bytes >= 0x80 (UTF-8 names, overlong forms included: they are not dots).
 *
 * Rejected with -EINVAL: empty, not starting with '/', a malformed escape ("%G1", a truncated
 * "%4"), a ".." that would climb above the root, and any control byte (< 0x20 or 0x7f, NUL
 * included) raw or decoded, so no file name with a newline or NUL ever reaches the file system
 * or a log line.
 *
 * Writes the result, NUL-terminated, to `out` (capacity `outcap` bytes, NUL included).
 * Returns its length, or -ENAMETOOLONG when it does not fit. The result is built in place, so
 * a segment that a later ".." removes still has to fit; `outcap >= len + 1` is always enough,
 * since neither decoding nor normalising makes a path longer. */
ssize_t pt_path_normalize(const char *path, size_t len, char *out, size_t outcap);

/* Opens `rel` beneath the directory `rootfd` without ever leaving it. `rel` is normally the
 * output of pt_path_normalize(); leading '/' are skipped and "/" (or "") opens the root
 * itself. Symlinks are followed while they stay beneath the root: an absolute symlink, or a
 * .." that climbs above the root, fails with -EXDEV; magic links (/proc/self/fd/...) are
 * never followed. A trailing '/' requires a directory (-ENOTDIR otherwise).
 *
 * Uses Linux openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; on kernels without it
 * (ENOSYS, before 5.6) falls back to pt_path_open_beneath_walk().
 *
 * The file is opened O_RDONLY | O_CLOEXEC plus `flags`, which may hold only O_NONBLOCK,
 * O_DIRECTORY, O_NOFOLLOW (a final symlink then fails with -ELOOP), O_NOATIME, O_NOCTTY and
 * O_CLOEXEC; anything else (a write mode, O_CREAT, O_TRUNC, O_PATH...) is -EINVAL.
 *
 * Returns the new fd (the caller owns it and closes it) or a negative errno. */
int pt_path_open_beneath(int rootfd, const char *rel, int flags);

/* The same contract as pt_path_open_beneath() without openat2(2): it resolves `rel` one
 * component at a time, opening each with O_NOFOLLOW and expanding symlinks itself (at most 40,
 * then -ELOOP), so the kernel never follows a link. A ".." re-walks the directories already
 * resolved from `rootfd`, so a directory renamed out of the root meanwhile is not a way out.
 * `rel` plus the symlinks expanded into it must fit in PATH_MAX (-ENAMETOOLONG). It is the
 * fallback pt_path_open_beneath() uses, public so that it can be tested on kernels that have
 * openat2. */
int pt_path_open_beneath_walk(int rootfd, const char *rel, int flags);

/* Percent-encodes `path` (`len` bytes) for a Location header: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) and '/' are kept, every other byte becomes %XX (upper-case hex).
 * Writes the result, NUL-terminated, to `out` (capacity `outcap`). Returns its length or
 * -ENAMETOOLONG when it does not fit. */
ssize_t pt_path_encode(const char *path, size_t len, char *out, size_t outcap);

#endif
