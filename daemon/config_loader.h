/* config_loader: the loader's private toolkit, shared by the files that make up the one
 * config loader (config.c: top level, bus, spool, workers, rules; config_metrics.c: graphite
 * and redis workers, throttles, statistics, the redis connection). Not for other modules.
 *
 * Typed lookups return 1 (*out set), 0 (key absent) or -1 (present but wrong: already
 * reported as "FILE:LINE: message"). Problems are collected, sorted and written by config.c.
 */
#ifndef EVENTSD_CONFIG_LOADER_H
#define EVENTSD_CONFIG_LOADER_H

#include "config.h"
#include <libconfig.h>
#include <stdbool.h>

#define WORKER_NAME_MAX    64          /* fits log idents and runtime file names */
#define MS_MAX             3600000LL   /* one hour: any larger timeout is a typo */

typedef struct {
    const char *file;   /* libconfig's copy of the file name: valid until the tree is freed */
    int         line;
    int         seq;    /* keeps the sort stable */
    char       *msg;
} problem_t;

typedef struct {
    eventsd_config_t *cfg;
    char      *conf_dir;   /* absolute directory of the config file */
    problem_t *probs;
    int        n_probs, cap_probs;
    bool       oom;
} loader_t;

/* Where keys live, for messages: "'<prefix><key>'<owner> must be ..." and
 * "unknown key 'k' <where>". */
typedef struct {
    const char *prefix;   /* "bus.", "batch." or "" */
    const char *owner;    /* " in worker 'returns'", " in rule #2" or "" */
    const char *where;    /* "at top level", "in 'bus'", "in worker 'returns'", ... */
} scope_t;

void cfg_problem_add(loader_t *ld, const char *file, int line, char *msg /* taken */);
__attribute__((format(printf, 3, 4)))
void cfg_problem(loader_t *ld, const config_setting_t *s, const char *fmt, ...);
char *cfg_strdup(loader_t *ld, const char *s);
__attribute__((format(printf, 2, 3)))
char *cfg_fmt(loader_t *ld, const char *f, ...);
char *cfg_resolve_path(loader_t *ld, const char *base, const char *rel);

config_setting_t *cfg_member(const config_setting_t *g, const char *key);
int cfg_line(const config_setting_t *g, const char *key);   /* 0 when absent */
int cfg_string(loader_t *ld, const scope_t *sc, const config_setting_t *g, const char *key,
               const char **out);
int cfg_int(loader_t *ld, const scope_t *sc, const config_setting_t *g, const char *key,
            long long lo, long long hi, long long *out);
void cfg_int_field(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                   const char *key, long long lo, long long hi, int *field);
int cfg_bool(loader_t *ld, const scope_t *sc, const config_setting_t *g, const char *key,
             bool *out);
config_setting_t *cfg_group(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                            const char *key);
bool cfg_in_list(const char *const *list, const char *s);
void cfg_check_keys(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                    const char *const *allowed);
char *cfg_path_key(loader_t *ld, const scope_t *sc, const config_setting_t *g,
                   const char *key, const char *base, const char *def);
int cfg_enum(loader_t *ld, const scope_t *sc, const config_setting_t *g, const char *key,
             const char *const *names, int def);

/* config.c: a worker's sink settings for a pipeline handler (the worker loader minus the
 * name; label names it in messages; extra: keys the caller reads itself). */
void cfg_load_handler_sink(loader_t *ld, const config_setting_t *g, const char *name,
                           const char *label, worker_config_t *w, const char *const *extra);
void cfg_free_worker(worker_config_t *w);   /* its members, not w */

/* config_triggers.c */
void cfg_load_trigger_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                             worker_config_t *w);
void cfg_load_pipelines(loader_t *ld, const config_setting_t *root);
void cfg_load_triggers(loader_t *ld, const config_setting_t *root);
void cfg_free_triggers(eventsd_config_t *c);   /* triggers and pipelines */
int cfg_parse_duration(const char *s);          /* "30s" "15m" "1h" "1d" -> seconds, -1 */

/* config_metrics.c */
extern const char *const metrics_worker_keys[];   /* graphite and redis keys of a worker */
void cfg_load_graphite_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                              worker_config_t *w);
void cfg_load_redis_worker(loader_t *ld, const config_setting_t *g, const scope_t *sc,
                           worker_config_t *w);
void cfg_fingerprint_metrics(FILE *f, const worker_config_t *w);
void cfg_free_metrics_worker(worker_config_t *w);
throttle_config_t *cfg_load_throttle(loader_t *ld, const config_setting_t *rule,
                                     const scope_t *sc);
void cfg_load_redis(loader_t *ld, const config_setting_t *root);
void cfg_load_statistics(loader_t *ld, const config_setting_t *root);
void cfg_free_metrics(eventsd_config_t *c);   /* rules' throttles, statistics, redis */

#endif
