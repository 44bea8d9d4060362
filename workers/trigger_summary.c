/* trigger_summary: see trigger_summary.h. */
#include "trigger_summary.h"

#include <ctype.h>
#include <string.h>

static const char *const REASON_NAMES[] = { "fire", "expire", "evicted" };

/* ---- stamps ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int64_t *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char) s[i]))
            return false;
        *out = *out * 10 + (s[i] - '0');
    }
    return true;
}

bool trigger_stamp_us(const char *s, size_t n, int64_t *us)
{
    int64_t y, mo, d, h, mi, sec, frac = 0;
    if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        int64_t scale = 100000;
        for (i++; i < n && isdigit((unsigned char) s[i]); i++, scale /= 10)
            frac += (s[i] - '0') * scale;
    }
    if (i < n && s[i] == 'Z')
        i++;
    if (i != n)
        return false;
    *us = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * 1000000 + sec * 1000000 +
          frac;
    return true;
}

/* Seconds from the first to the last stamp; by arrival when a stamp is absent. */
static double duration_s(const trigger_stream_t *s)
{
    int64_t a, b;
    if (s->first_stamp && s->last_stamp &&
        trigger_stamp_us(s->first_stamp, strlen(s->first_stamp), &a) &&
        trigger_stamp_us(s->last_stamp, strlen(s->last_stamp), &b))
        return (double) (b - a) / 1e6;
    return (double) (s->last_ms - s->first_ms) / 1e3;
}

/* ---- packing ----
 * Every packer call returns 0 or -1; they are chained with || so that they run in order
 * (the operands of | are unsequenced) and stop at the first failure. */

static int pack_str(msgpack_packer *pk, const char *s)
{
    return s ? msgpack_pack_str_with_body(pk, s, strlen(s)) : msgpack_pack_nil(pk);
}

static int pack_int(msgpack_packer *pk, const char *key, int64_t v)
{
    return pack_str(pk, key) || msgpack_pack_int64(pk, v);
}

static int pack_kv(msgpack_packer *pk, const char *key, const char *v)
{
    return pack_str(pk, key) || pack_str(pk, v);
}

static int pack_counts(msgpack_packer *pk, const trigger_stream_t *s)
{
    if (pack_str(pk, "counts") || msgpack_pack_array(pk, (size_t) s->n_counts))
        return -1;
    for (int i = 0; i < s->n_counts; i++)
        if (msgpack_pack_int64(pk, s->counts[i]))
            return -1;
    return 0;
}

static int pack_common(msgpack_packer *pk, const trigger_config_t *t,
                       const trigger_stream_t *s, trigger_reason_t reason)
{
    return pack_kv(pk, "trigger", t->name) || pack_kv(pk, "key", s->key) ||
           pack_kv(pk, "reason", REASON_NAMES[reason]) || pack_int(pk, "events", s->events) ||
           pack_kv(pk, "first_stamp", s->first_stamp) ||
           pack_kv(pk, "last_stamp", s->last_stamp) || pack_str(pk, "duration") ||
           msgpack_pack_double(pk, duration_s(s)) || pack_counts(pk, s) ? -1 : 0;
}

/* target: the stored msgpack object's bytes go straight into the packer's buffer */
static int pack_target(msgpack_packer *pk, const trigger_stream_t *s)
{
    if (pack_str(pk, "target"))
        return -1;
    return s->target ? msgpack_sbuffer_write(pk->data, (const char *) s->target, s->target_len)
                     : msgpack_pack_nil(pk);
}

static int pack_missing(msgpack_packer *pk, char *const *missing, size_t n_missing)
{
    if (pack_str(pk, "missing") || msgpack_pack_array(pk, n_missing))
        return -1;
    for (size_t i = 0; i < n_missing; i++)
        if (pack_str(pk, missing[i]))
            return -1;
    return pack_int(pk, "missing_count", (int64_t) n_missing);
}

static int pack_job(msgpack_packer *pk, const trigger_stream_t *s, char *const *missing,
                    size_t n_missing)
{
    /* unexpected: returns from minions not in the list, once there is a list */
    int64_t unexpected = s->listed ? s->returned - s->returned_expected : 0;
    return pack_kv(pk, "jid", s->jid) || pack_kv(pk, "fun", s->fun) || pack_target(pk, s) ||
           pack_kv(pk, "user", s->user) || pack_str(pk, "expected_known") ||
           (s->listed ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) ||
           pack_int(pk, "expected", s->expected) || pack_int(pk, "returned", s->returned) ||
           pack_int(pk, "succeeded", s->succeeded) || pack_int(pk, "failed", s->failed) ||
           pack_missing(pk, missing, n_missing) ||
           pack_int(pk, "duplicates", s->duplicates) ||
           pack_int(pk, "unexpected", unexpected) ? -1 : 0;
}

int trigger_summary_build(const trigger_config_t *t, const trigger_stream_t *s,
                          trigger_reason_t reason, char *const *missing, size_t n_missing,
                          msgpack_sbuffer *tag, msgpack_sbuffer *summary)
{
    const char *kind = reason == TRIGGER_FIRE ? "fire" : "expire";
    size_t name_len = strlen(t->name);
    if (msgpack_sbuffer_write(tag, "eventsd/trigger/", 16) != 0 ||
        (name_len && msgpack_sbuffer_write(tag, t->name, name_len) != 0) ||
        msgpack_sbuffer_write(tag, "/", 1) != 0 ||
        msgpack_sbuffer_write(tag, kind, strlen(kind) + 1) != 0)
        return -1;
    tag->size--;   /* NUL-terminated, the NUL not counted */
    msgpack_packer pk;
    msgpack_packer_init(&pk, summary, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, t->all_expected ? 21 : 8) || pack_common(&pk, t, s, reason))
        return -1;
    return t->all_expected ? pack_job(&pk, s, missing, n_missing) : 0;
}
