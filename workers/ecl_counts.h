/* ecl_counts: the counts a redis sink holds between two syncs: one integer per event id (the
 * same increment goes to every interval of the group, so one number per id is enough),
 * declared ids kept even at zero, auto-declared ones dropped once synced.
 *
 * Sync bookkeeping: ecl_counts_mark_sent records, per id, the amount a sync is sending.
 * Events counted afterwards add to the count only. When the sync is known to be applied,
 * ecl_counts_commit_sent subtracts the sent amounts; when it is known not to be,
 * ecl_counts_forget_sent drops the marks; while it is unknown the marks stay, so nothing is
 * lost and nothing is sent twice once the outcome is known.
 *
 * Memory is bounded: at most max_ids auto-declared ids are held (declared ones always fit);
 * ecl_counts_add refuses a new id beyond that, and the caller counts the event as overflow.
 * Owns: the ids (copies) and the table.
 */
#ifndef EVENTSD_ECL_COUNTS_H
#define EVENTSD_ECL_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ecl_counts ecl_counts_t;

typedef enum { ECL_ADD_OK = 0, ECL_ADD_FULL, ECL_ADD_UNDECLARED, ECL_ADD_NOMEM } ecl_add_t;

ecl_counts_t *ecl_counts_new(size_t max_ids);
void ecl_counts_destroy(ecl_counts_t **self_p);

/* Declares id[0..len) (kept at zero, never dropped). 0, or -1 when out of memory. */
int ecl_counts_declare(ecl_counts_t *self, const char *id, size_t len);

/* Adds n to id. An id not declared is added when auto_declare (ECL_ADD_FULL when max_ids
 * auto-declared ids are held already) and refused otherwise (ECL_ADD_UNDECLARED). */
ecl_add_t ecl_counts_add(ecl_counts_t *self, const char *id, size_t len, bool auto_declare,
                         uint64_t n);

/* Ids held (declared and auto-declared), and how many of them are auto-declared. */
size_t ecl_counts_len(const ecl_counts_t *self);
size_t ecl_counts_auto_len(const ecl_counts_t *self);
bool ecl_counts_full(const ecl_counts_t *self);

/* Entry i (0 .. len-1): its id (NUL-terminated, *len set), its whole count, and what the
 * pending sync sent of it. Indexes are stable until the next commit. */
const char *ecl_counts_id(const ecl_counts_t *self, size_t i, size_t *len);
uint64_t ecl_counts_value(const ecl_counts_t *self, size_t i);
uint64_t ecl_counts_sent(const ecl_counts_t *self, size_t i);
bool ecl_counts_is_declared(const ecl_counts_t *self, size_t i);

/* Sum of the counts not yet marked sent: 0 means there is nothing to sync. */
uint64_t ecl_counts_unsent(const ecl_counts_t *self);

void ecl_counts_mark_sent(ecl_counts_t *self);   /* sent := value, for every id */
void ecl_counts_commit_sent(ecl_counts_t *self); /* value -= sent; drops auto ids at zero */
void ecl_counts_forget_sent(ecl_counts_t *self); /* sent := 0 */

#endif
