/* Shared by the libFuzzer harnesses in this directory (test/fuzz/fuzz_<target>.c).
 *
 * The limits are the daemon's own: the defaults config_load() fills in and the smallest
 * values it accepts, so a harness never tests a configuration eventsd cannot run with. */
#ifndef EVENTSD_FUZZ_COMMON_H
#define EVENTSD_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "payload.h"
#include "salt_frame.h"

/* bus.max_event_bytes: default 16 MiB (what 0 means to the decoders), config minimum 1 KiB */
#define FUZZ_DEFAULT_MAX_EVENT_BYTES SALT_FRAME_DEFAULT_MAX_EVENT_BYTES
#define FUZZ_MIN_MAX_EVENT_BYTES     ((size_t) 1024)
/* bus.max_depth: default 32 (msgpack-c's limit), config range 2 .. 32 */
#define FUZZ_DEFAULT_MAX_DEPTH       PAYLOAD_MSGPACK_MAX_DEPTH
#define FUZZ_MIN_MAX_DEPTH           2
/* daemon/bus.c reads the stream socket BUS_READ_CHUNK (256 KiB) at a time */
#define FUZZ_BUS_READ_CHUNK          ((size_t) 256 * 1024)

/* A harness-detected invariant violation: libFuzzer records abort() as a crash. */
#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* Limits from one control byte: bit 0 picks the smallest max_event_bytes the config
 * accepts instead of the default; bits 1..5 pick max_depth (0 = default 32, else 2..32). */
static inline void fuzz_limits(uint8_t ctl, size_t *max_event_bytes, int *max_depth)
{
    *max_event_bytes = ctl & 1 ? FUZZ_MIN_MAX_EVENT_BYTES : FUZZ_DEFAULT_MAX_EVENT_BYTES;
    unsigned d = (ctl >> 1) & 0x1f;
    *max_depth = d == 0 ? FUZZ_DEFAULT_MAX_DEPTH
                        : FUZZ_MIN_MAX_DEPTH + (int) (d % (FUZZ_DEFAULT_MAX_DEPTH - 1));
}

/* xorshift64: deterministic pseudo-random numbers from a seed taken from the input. */
static inline uint64_t fuzz_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif
