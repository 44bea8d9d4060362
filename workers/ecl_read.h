/* ecl_read: reads one slot (last or current) of one interval of a group, as ecl_reader's
 * get_counts does: the declared ids, plus (when the group auto-declares) every id that has a
 * key of that slot in Redis, found by SCAN; each id's value, 0 when it has no key; sorted by
 * id in ecl_reader's order. Used by eventsd-counts and the tests.
 * Owns: the rows it returns (ecl_read_free).
 */
#ifndef EVENTSD_ECL_READ_H
#define EVENTSD_ECL_READ_H

#include "ecl_group.h"
#include "ecl_key.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char     *id;       /* NUL-terminated copy (ids never hold NUL: ecl_id_sanitise) */
    size_t    len;
    long long count;
    bool      valid;    /* false: the key holds something that is not an integer (count 0) */
} ecl_row_t;

/* 0 with *rows / *n_rows set (possibly 0 rows), or -1 with err. */
int ecl_read(redisContext *c, const ecl_group_t *g, int interval, ecl_slot_t slot,
             ecl_row_t **rows, size_t *n_rows, char *err, size_t errlen);
void ecl_read_free(ecl_row_t **rows, size_t n_rows);

#endif
