/* envelope: round trips over a real socket pair, split reads, and protocol errors. */
#include "envelope.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        cr_assert(w > 0);
        p += w;
        n -= (size_t) w;
    }
}

Test(envelope, event_ack_stop_round_trip_byte_by_byte)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    const char payload[] = "\x81\xa1" "a\x01";
    envelope_pack_event(&buf, 42, ENVELOPE_FLAG_PRIORITY, "salt/job/1/new", 14, payload, 4);
    envelope_pack_ack(&buf, 42, 7, 1);
    envelope_pack_stop(&buf);
    for (size_t i = 0; i < buf.size; i++)   /* one byte per read: framing must hold */
        write_all(sv[0], buf.data + i, 1);
    close(sv[0]);

    envelope_reader_t *r = envelope_reader_new(1 << 20);
    envelope_msg_t m;
    char err[128];
    int got = 0;
    envelope_type_t types[3];
    while (envelope_reader_fill(r, sv[1]) > 0) {
        int rc;
        while ((rc = envelope_reader_next(r, &m, err, sizeof err)) == 1) {
            cr_assert_lt(got, 3);
            types[got++] = m.type;
            if (m.type == ENVELOPE_EVENT) {
                cr_expect_eq(m.seq, 42);
                cr_expect_eq(m.flags, ENVELOPE_FLAG_PRIORITY);
                cr_expect_eq(m.tag_len, 14);
                cr_expect(memcmp(m.tag, "salt/job/1/new", 14) == 0);
                cr_expect_eq(m.payload_len, 4);
                cr_expect(memcmp(m.payload, payload, 4) == 0);
            } else if (m.type == ENVELOPE_ACK) {
                cr_expect_eq(m.seq, 42);
                cr_expect_eq(m.committed, 7);
                cr_expect_eq(m.rejected, 1);
            }
        }
        cr_assert_eq(rc, 0, "%s", err);
    }
    cr_expect_eq(got, 3);
    cr_expect_eq(types[0], ENVELOPE_EVENT);
    cr_expect_eq(types[1], ENVELOPE_ACK);
    cr_expect_eq(types[2], ENVELOPE_STOP);
    envelope_reader_destroy(&r);
    cr_expect_null(r);
    msgpack_sbuffer_destroy(&buf);
    close(sv[1]);
}

/* A worker's EMIT between two ACKs, byte by byte: tag and data come back exactly, and the
 * ACKs around it are untouched (the master reads both kinds from one stream). */
Test(envelope, emit_round_trip_between_acks)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    const char data[] = "\x82\xa3jid\xa4" "1234\xa7missing\x91\xa2m1";
    const char *tag = "eventsd/job/1234/timeout";
    cr_assert_eq(envelope_pack_ack(&buf, 5, 5, 0), 0);
    cr_assert_eq(envelope_pack_emit(&buf, tag, strlen(tag), data, sizeof data - 1), 0);
    cr_assert_eq(envelope_pack_emit(&buf, "t", 1, "\x80", 1), 0);   /* empty map */
    cr_assert_eq(envelope_pack_ack(&buf, 9, 4, 0), 0);
    for (size_t i = 0; i < buf.size; i++)
        write_all(sv[0], buf.data + i, 1);
    close(sv[0]);

    envelope_reader_t *r = envelope_reader_new(1 << 20);
    envelope_msg_t m;
    char err[128];
    int got = 0, rc = 0;
    while (envelope_reader_fill(r, sv[1]) > 0)
        while ((rc = envelope_reader_next(r, &m, err, sizeof err)) == 1) {
            got++;
            if (got == 1 || got == 4) {
                cr_expect_eq(m.type, ENVELOPE_ACK);
                cr_expect_eq(m.seq, got == 1 ? 5u : 9u);
            } else if (got == 2) {
                cr_assert_eq(m.type, ENVELOPE_EMIT);
                cr_expect_eq(m.tag_len, strlen(tag));
                cr_expect(memcmp(m.tag, tag, m.tag_len) == 0);
                cr_expect_eq(m.payload_len, sizeof data - 1);
                cr_expect(memcmp(m.payload, data, m.payload_len) == 0);
                cr_expect_eq(m.seq, 0);
            } else {
                cr_assert_eq(m.type, ENVELOPE_EMIT);
                cr_expect_eq(m.tag_len, 1);
                cr_expect_eq(m.payload_len, 1);
            }
        }
    cr_expect_eq(rc, 0, "%s", err);
    cr_expect_eq(got, 4);
    envelope_reader_destroy(&r);
    msgpack_sbuffer_destroy(&buf);
    close(sv[1]);
}

typedef struct {
    const char *bytes;
    size_t      len;
} bad_case_t;

static const bad_case_t bad_cases[] = {
        { "\xc1", 1 },                         /* never-used msgpack byte */
        { "\x01", 1 },                         /* not an array */
        { "\x91\xa1x", 3 },                    /* type is not an integer */
        { "\x92\x01\x05", 3 },                 /* EVENT with 2 elements */
        { "\x94\x02\x01\x02\xa1x", 6 },        /* ACK with a string count */
        { "\x92\x03\x00", 3 },                 /* STOP with an argument */
        { "\x91\x09", 2 },                     /* unknown type */
        { "\x92\x04\xa1x", 4 },                 /* EMIT without data */
        { "\x93\x04\xa1x\xa1y", 6 },             /* EMIT with data as str, not bin */
        { "\x93\x04\x01\xc4\x00", 5 },          /* EMIT with an integer tag */
        { "\x94\x04\xa1x\xc4\x00\x00", 7 },      /* EMIT with an extra element */
};

static void check_protocol_error(const bad_case_t *c)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_all(sv[0], c->bytes, c->len);
    close(sv[0]);
    envelope_reader_t *r = envelope_reader_new(1 << 20);
    cr_assert_gt(envelope_reader_fill(r, sv[1]), 0);
    envelope_msg_t m;
    char err[128] = "";
    cr_expect_eq(envelope_reader_next(r, &m, err, sizeof err), -1);
    cr_expect_neq(err[0], '\0');
    envelope_reader_destroy(&r);
    close(sv[1]);
}

Test(envelope, protocol_errors_table)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        check_protocol_error(&bad_cases[i]);
}

Test(envelope, oversize_message_is_refused_before_it_is_buffered_whole)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    static char big[100000];
    envelope_pack_event(&buf, 1, 0, "t", 1, big, sizeof big);
    write_all(sv[0], buf.data, 60000);   /* part of it is enough to know it is too big */
    envelope_reader_t *r = envelope_reader_new(50000);
    envelope_msg_t m;
    char err[128] = "";
    int rc = 0;
    while (rc == 0 && envelope_reader_fill(r, sv[1]) > 0)
        rc = envelope_reader_next(r, &m, err, sizeof err);
    cr_expect_eq(rc, -1);
    cr_expect(strstr(err, "larger than 50000") != NULL, "%s", err);
    envelope_reader_destroy(&r);
    msgpack_sbuffer_destroy(&buf);
    close(sv[0]);
    close(sv[1]);
}
