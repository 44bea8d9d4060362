/* ecl_key: Event Count Logger key names and id sanitising. See ecl_key.h. */
#include "ecl_key.h"

#include <string.h>

const char *ecl_slot_name(ecl_slot_t slot)
{
    return slot == ECL_CUR ? "cur" : "last";
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one (overlong forms,
 * surrogates and code points above U+10FFFF included, as Python's decoder refuses them). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
             : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || n > avail || (n == 2 && c < 0xC2) || (n == 4 && c > 0xF4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)))
        return 0;
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

size_t ecl_id_sanitise(char *id, size_t len)
{
    unsigned char *s = (unsigned char *) id;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_len(s + i, len - i);
        if (n == 0 || (n == 1 && (s[i] <= 0x20 || s[i] == 0x7F))) {
            s[i] = '_';
            n = 1;
        }
        if (i + n > ECL_ID_MAX)
            break;   /* cut before a character that would cross the cap */
        i += n;
    }
    if (i > 0 && s[0] == '@')
        s[0] = '_';
    return i;
}

static int put(msgpack_sbuffer *out, const char *s, size_t n)
{
    return msgpack_sbuffer_write(out, s, n) == 0 ? 0 : -1;
}

static int puts_(msgpack_sbuffer *out, const char *s)
{
    return put(out, s, strlen(s));
}

int ecl_key_prefix(msgpack_sbuffer *out, const char *group, const char *interval,
                   ecl_slot_t slot)
{
    if (puts_(out, group) < 0 || put(out, ":", 1) < 0 || puts_(out, interval) < 0 ||
        put(out, ":", 1) < 0 || puts_(out, ecl_slot_name(slot)) < 0)
        return -1;
    return put(out, ":", 1);
}

int ecl_key_counter(msgpack_sbuffer *out, const char *group, const char *interval,
                    ecl_slot_t slot, const char *id, size_t len)
{
    if (ecl_key_prefix(out, group, interval, slot) < 0)
        return -1;
    return put(out, id, len);
}

int ecl_key_ts(msgpack_sbuffer *out, const char *group, const char *interval)
{
    return ecl_key_counter(out, group, interval, ECL_CUR, "@ts", 3);
}

/* Redis glob: a backslash quotes the next character. */
static int put_escaped(msgpack_sbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (strchr("*?[]\\", *s) && put(out, "\\", 1) < 0)
            return -1;
        if (put(out, s, 1) < 0)
            return -1;
    }
    return 0;
}

int ecl_key_scan_pattern(msgpack_sbuffer *out, const char *group, const char *interval,
                         ecl_slot_t slot)
{
    if (put_escaped(out, group) < 0 || put(out, ":", 1) < 0 || put_escaped(out, interval) < 0 ||
        put(out, ":", 1) < 0 || puts_(out, ecl_slot_name(slot)) < 0)
        return -1;
    return put(out, ":*", 2);
}

int64_t ecl_boundary(int64_t now_s, int interval_s)
{
    if (interval_s <= 0)
        return now_s;
    int64_t r = now_s % interval_s;
    return now_s - (r < 0 ? r + interval_s : r);
}

int ecl_id_compare(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}
