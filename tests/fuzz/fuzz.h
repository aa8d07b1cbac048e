/*
 * What every fuzz target shares: the libFuzzer entry points and the check that stops the run on
 * an input porter mishandled. A failed check prints what it found and aborts, which libFuzzer
 * reports as a crash and saves the input (crash-<sha1>) for `fuzz_<target> FILE` to replay.
 */
#ifndef PORTER_TESTS_FUZZ_H
#define PORTER_TESTS_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when `cond` does not hold. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Makes a temporary directory "porter-fuzz-NAME-XXXXXX" for a target's files, in memory
 * (/dev/shm) where the system has it, since some targets write a file per input, else in
 * /tmp; its path goes to `dir` (`cap` bytes). Aborts if it cannot. */
static inline void fuzz_temp_dir(char *dir, size_t cap, const char *name)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int n = snprintf(dir, cap, "%s/porter-fuzz-%s-XXXXXX", base, name);
    FUZZ_CHECK(n > 0 && (size_t)n < cap && mkdtemp(dir), "temporary directory: %s",
               strerror(errno));
}

#endif
