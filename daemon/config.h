/* config: the one config loader. Reads a libconfig file into eventsd_config_t and checks
 * everything that can be checked without opening sockets or databases:
 *   - syntax (libconfig's own error, reported as FILE:LINE: message);
 *   - unknown keys at every level are errors (FILE:LINE: unknown key 'x' in 'bus');
 *   - types and ranges (FILE:LINE: 'batch.size' must be an integer between 1 and 100000);
 *   - references: every rule's worker exists, worker names unique, sink names known
 *     ("sqlite", "file"), required per-sink keys present, template files readable;
 *     keys of the other sink are errors too (e.g. 'path' in a sqlite worker).
 * Regex compilation (rules) and template compilation (template) are checked by their own
 * modules, which report with the file and line that config records here.
 * Relative paths (template, database, path, dead_letter, sql_dir) are resolved here:
 * sql_dir against the config file's directory; template against sql_dir; database, path,
 * dead_letter, runtime_dir and bus.path against the config file's directory. The result is
 * absolute and canonical as far as the path exists (no "etc/../"); absolute paths are kept as
 * written; sqlite database names ":memory:" and "file:..." URIs are not paths and kept as is.
 * Problems are sorted by file and line. A file that cannot be read reports line 0.
 * Owns: the returned struct and every string in it (eventsd_config_destroy frees all; the name
 * avoids libconfig's own config_destroy symbol).
 */
#ifndef EVENTSD_CONFIG_H
#define EVENTSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { BUS_AUTO, BUS_ZMQ, BUS_SALT_IPC, BUS_SALT_TCP } bus_type_t;

typedef struct {
    bus_type_t type;          /* bus.type: "auto" (default) | "zmq" | "salt-ipc" | "salt-tcp" */
    char  *path;              /* bus.path: unix socket (salt-ipc, auto, and zmq when no endpoint);
                                 default /var/run/salt/master/master_event_pub.ipc */
    char  *endpoint;          /* bus.endpoint: zmq endpoint, default "ipc://" + path */
    char  *host;              /* bus.host: salt-tcp, default "127.0.0.1" */
    int    port;              /* bus.port: salt-tcp, default 4512, range 1 .. 65535 */
    size_t max_event_bytes;   /* bus.max_event_bytes, default 16 MiB, range 1 KiB .. 1 GiB */
    int    max_depth;         /* bus.max_depth, default 32, range 2 .. 32 (msgpack-c's limit) */
    int    reconnect_min_ms;  /* bus.reconnect_min_ms, default 100, range 1 .. 3600000 */
    int    reconnect_max_ms;  /* bus.reconnect_max_ms, default 5000 (>= reconnect_min_ms) */
    int    line;              /* line of the bus group, 0 when absent */
} bus_config_t;

typedef enum { SPOOL_SYNC_NONE, SPOOL_SYNC_INTERVAL, SPOOL_SYNC_ALWAYS } spool_sync_t;
typedef enum { SPOOL_FULL_BLOCK, SPOOL_FULL_DROP_OLDEST } spool_full_t;

typedef struct {
    char        *dir;          /* spool.dir, default /var/lib/eventsd/spool (resolved) */
    spool_sync_t sync;         /* spool.sync: "none" | "interval" (default) | "always" */
    int          sync_ms;      /* spool.sync_ms: group commit period, default 10, 1 .. 10000 */
    long long    segment_bytes;/* spool.segment_bytes, default 64 MiB, 64 KiB .. 1 GiB */
    long long    max_bytes;    /* spool.max_bytes, default 4 GiB, >= 2 * segment_bytes */
    spool_full_t when_full;    /* spool.when_full: "block" (default) | "drop-oldest" */
    int          line;         /* line of the spool group, 0 when absent */
} spool_config_t;

/* Graphite metrics (sink "graphite"). */
typedef enum { METRIC_SUM, METRIC_MIN, METRIC_MAX, METRIC_MEAN, METRIC_LAST } metric_agg_t;

typedef struct {
    char        *name;        /* metrics[i].name: name template ("jobs.{data.fun}.count"),
                                 required; the worker's prefix is put in front */
    char        *value;       /* metrics[i].value: a field ("data.duration") whose number is
                                 aggregated; NULL = count the events (each counts 1) */
    metric_agg_t aggregate;   /* metrics[i].aggregate: sum (default) | min | max | mean | last */
    int          line;
} metric_config_t;

typedef struct {
    char *target;             /* rollups[i].target: "salt.jobs.all.<result>" */
    char *source;             /* rollups[i].source: "salt.jobs.*.<result>"; '*' and '<name>'
                                 each match one dot-free component */
    int   line;
} rollup_config_t;

/* Throttle on a rule (GambolPutty's Throttle): an event passes the rule when, counting it,
 * min_count <= count <= max_count for its key within a window of timeframe_s that starts at
 * the key's first event. Defaults (1, 1) de-duplicate. */
typedef struct {
    char *key;                /* throttle.key: name template, required */
    int   timeframe_s;        /* throttle.timeframe: seconds, default 60, 1 .. 86400 */
    long long min_count;      /* throttle.min_count, default 1, >= 1 */
    long long max_count;      /* throttle.max_count, default 1, >= min_count */
    bool  shared;             /* throttle.shared: count in the top-level redis (INCR + EXPIRE),
                                 so several eventsd instances share one window; default false */
    int   line;
} throttle_config_t;

/* Redis connection (top-level `redis`, used by shared throttles). */
typedef struct {
    char *host;               /* redis.host, default "127.0.0.1" */
    int   port;               /* redis.port, default 6379 */
    char *password;           /* redis.password, optional; never logged */
    int   db;                 /* redis.db, default 0, 0 .. 1000 */
    int   timeout_ms;         /* redis.timeout_ms, default 1000, 10 .. 1000 (the master waits
                                 this long at most per retry period) */
    int   line;               /* 0 when absent */
} redis_config_t;

/* Field statistics (top-level `statistics` list): every `interval_s` the values of the chosen
 * fields seen on matching events are counted and emitted as an internal event
 * eventsd/stats/<name> that rules route like any other. */
typedef struct {
    char  *name;              /* statistics[i].name: [A-Za-z0-9_-]{1,64}, unique, required */
    char  *tag;               /* statistics[i].tag: PCRE2 pattern; NULL = every accepted event */
    char **fields;            /* statistics[i].fields: field names ("data.fun"), at least one */
    int    n_fields;
    int    interval_s;        /* statistics[i].interval: seconds, default 60, 1 .. 86400 */
    int    max_values;        /* statistics[i].max_values: distinct values kept per field per
                                 interval, default 100, 1 .. 100000; the rest count as other */
    int    line, tag_line;
} statistic_config_t;

/* Triggers (Winchester's model): events matching a trigger join a stream keyed by its
 * distinguishing fields; when every fire criterion holds the fire pipeline runs, when the
 * stream expires first the expire pipeline runs. Run by a worker with sink "trigger". */
typedef enum { COND_EQ, COND_NE, COND_LT, COND_LE, COND_GT, COND_GE, COND_MATCH, COND_NOMATCH,
               COND_EXISTS } cond_op_t;

typedef struct {
    char     *field;          /* "data.retcode" (name_template field grammar) */
    cond_op_t op;
    char     *value;          /* text to compare (numbers compare numerically when both sides
                                 are numbers) or a PCRE2 pattern for =~ !~; NULL for exists */
} condition_config_t;

typedef struct {
    char  *tag;               /* PCRE2 pattern on the tag, required */
    condition_config_t *where;/* all must hold; "data.retcode != 0", "data.id exists" */
    int    n_where;
    int    count;             /* fire criteria only: events matching it seen at least this
                                 often, default 1 */
    int    line;
} event_match_config_t;

typedef enum { EXPIRE_FROM_FIRST, EXPIRE_FROM_LAST } expire_from_t;

typedef struct {
    char  *name;              /* triggers[i].name: [A-Za-z0-9_-]{1,64}, unique, required */
    event_match_config_t *match;   /* triggers[i].match: at least one; an event joins a stream
                                      when it matches any */
    int    n_match;
    char **distinguished_by;  /* fields ("data.jid"), or "stamp|day" / "stamp|hour" for a time
                                 bucket of the event's _stamp; at least one */
    int    n_distinguished_by;
    event_match_config_t *fire;    /* triggers[i].fire: criteria that must all hold */
    int    n_fire;
    bool   all_expected;      /* triggers[i].all_expected: also require that every minion in
                                 the stream's expected list returned (see below) */
    char  *expected_tag;      /* expected list: from the event whose tag matches this
                                 (default "^salt/job/[0-9]+/new$") ... */
    char  *expected_field;    /* ... at this field (default "data.minions"); minions in
                                 "data.missing" of that event are recorded missing at once */
    char  *returned_tag;      /* returns: tag pattern (default "^salt/job/[0-9]+/ret/") ... */
    char  *returned_field;    /* ... and the minion field (default "data.id") */
    expire_from_t expire_from;/* triggers[i].expire: "first + 15m" | "last + 1h", required */
    int    expire_s;
    int    fire_delay_s;      /* triggers[i].fire_delay: "30s", default 0 */
    char  *fire_pipeline;     /* names in pipelines; at least one of the two */
    char  *expire_pipeline;
    int    line;
} trigger_config_t;

/* A pipeline: handlers run in order, first computing (no side effects), then committing;
 * a failed handler rolls the others back and the pipeline is retried with backoff. */
typedef enum { HANDLER_SQL, HANDLER_GRAPHITE, HANDLER_COUNTER, HANDLER_EMIT, HANDLER_LOG }
    handler_type_t;

struct worker_config;

typedef struct {
    handler_type_t type;      /* handlers[i].type: sql | graphite | counter | emit | log */
    struct worker_config *sink;   /* sql, graphite, counter: the sink settings, as a worker's
                                     (sink = sqlite|pgsql|mysql for sql; graphite; redis for
                                     counter), name "<pipeline>.<index>" */
    char  *missing_template;  /* sql: optional template run once per missing minion (resolved) */
    char  *tag;               /* emit: name template for the tag over the summary, required
                                 ("eventsd/job/{data.jid}/complete") */
    char  *message;           /* log: optional name template over the summary */
    int    line;
} handler_config_t;

typedef struct {
    char *name;               /* pipelines[i].name, unique, required */
    handler_config_t *handlers;
    int   n_handlers;         /* at least one */
    int   line;
} pipeline_config_t;

typedef struct worker_config {
    char *name;               /* workers[i].name: unique, [A-Za-z0-9_-]{1,64} */
    char *sink;               /* workers[i].sink: "sqlite" | "file" | "pgsql" | "mysql" |
                                 "graphite" | "redis" */
    int   processes;          /* workers[i].processes, default 1, range 1..64 */
    int   batch_size;         /* workers[i].batch.size, default 500, range 1..100000 */
    int   batch_interval_ms;  /* workers[i].batch.interval_ms, default 1000, range 1..3600000 */
    int   max_inflight;       /* workers[i].max_inflight: events sent to one process and not yet
                                 acked; default 4 * batch_size, >= batch_size, <= 10000000 */
    char *template_path;      /* workers[i].template (sqlite: required; resolved, absolute) */
    int   template_line;      /* line of the template key, for template compile errors */
    char *database;           /* workers[i].database (sqlite: required, a path, resolved;
                                 mysql: required, the database name, kept as written) */
    char *conninfo;           /* workers[i].conninfo (pgsql: required; a libpq connection string
                                 or URI; may hold a password: never logged) */
    char *host;               /* workers[i].host (mysql), default "127.0.0.1" */
    int   port;               /* workers[i].port (mysql), default 3306, range 1..65535 */
    char *socket;             /* workers[i].socket (mysql): unix socket path, optional; used
                                 instead of host/port when set (resolved) */
    char *user;               /* workers[i].user (mysql), required */
    char *password;           /* workers[i].password (mysql), optional; never logged */
    int   connect_timeout_ms; /* workers[i].connect_timeout_ms (pgsql, mysql), default 5000,
                                 range 100..3600000 */
    char *path;               /* workers[i].path (file: required; resolved) */
    char *dead_letter;        /* workers[i].dead_letter: optional JSON-lines file (resolved) */
    int   busy_timeout_ms;    /* workers[i].busy_timeout_ms (sqlite), default 10000,
                                 range 0 .. 3600000 */
    /* graphite: host (default "127.0.0.1"), port (default 2003), and: */
    bool  udp;                /* workers[i].protocol: "tcp" (default) | "udp" */
    char *prefix;             /* workers[i].prefix: put before every metric name with a '.',
                                 optional; [A-Za-z0-9_:-] components separated by '.' */
    int   flush_interval_s;   /* workers[i].flush_interval: seconds per aggregate (carbon's
                                 finest retention), default 10, 1 .. 3600 */
    metric_config_t *metrics; /* workers[i].metrics: at least one (graphite) */
    int   n_metrics;
    rollup_config_t *rollups; /* workers[i].rollups: optional (graphite) */
    int   n_rollups;
    /* redis (Event Count Logger counters): host (default "127.0.0.1"), port (default 6379),
     * password (optional), and: */
    int   db;                 /* workers[i].db: Redis database index, default 0, 0 .. 1000 */
    char *group;              /* workers[i].group: ECL group name, required, no ':' */
    int  *intervals_s;        /* workers[i].intervals: ["5s", "5m", "1h"] (s, m, h, d), at
                                 least one, each 1 s .. 7 d; ECL's names kept in interval_names */
    char **interval_names;
    int   n_intervals;
    char *counter;            /* workers[i].counter: name template giving the event id
                                 ("auth", "{data.fun}"), required */
    char **events;            /* workers[i].events: declared event ids, optional */
    int   n_events;
    bool  auto_declare;       /* workers[i].auto_declare: ids not in events are declared when
                                 first seen (default true); false: such events are counted
                                 as skipped */
    int   sync_interval_ms;   /* workers[i].sync_interval_ms: default 1000, 10 .. 3600000 */
    int   sync_limit;         /* workers[i].sync_limit: sync early after this many events,
                                 default 1000, 1 .. 10000000 */
    /* trigger: */
    char *state;              /* workers[i].state: the SQLite file holding the streams
                                 (resolved), required */
    char **triggers;          /* workers[i].triggers: names in triggers, at least one; each
                                 trigger is run by exactly one worker */
    int   n_triggers;
    int   max_streams;        /* workers[i].max_streams: open streams kept, default 100000,
                                 1 .. 10000000; beyond it the oldest stream is expired early
                                 (its expire pipeline runs), counted and logged */
    char *fingerprint;        /* every setting above in one string, plus master_id (sinks are
                                 opened with it) and the template file's identity (device,
                                 inode, size, mtime: editing the SQL restarts the worker):
                                 equal fingerprints mean a SIGHUP reload can keep the running
                                 processes */
    char *file;               /* the config file the worker is defined in (FILE:LINE messages) */
    int   line;
    const struct eventsd_config *root;  /* the whole config this worker belongs to (a trigger
                                           worker finds its triggers and pipelines there);
                                           NULL for settings built by hand or handler sinks */
} worker_config_t;

typedef struct {
    char  *tag;               /* rules[i].tag: PCRE2 pattern, required */
    char  *fun;               /* rules[i].fun: PCRE2 pattern or NULL (any) */
    char **workers;           /* rules[i].workers: names, at least one */
    int    n_workers;
    bool   priority;          /* rules[i].priority, default false */
    int    line;              /* line of the rule */
    int    tag_line, fun_line;/* lines of tag and fun; fun_line 0 when fun is absent */
    throttle_config_t *throttle; /* rules[i].throttle: NULL when absent */
} rule_config_t;

typedef struct eventsd_config {
    char *path;               /* the config file as given */
    char *master_id;          /* master_id, default "<hostname>_master" */
    char *runtime_dir;        /* runtime_dir, default "/run/eventsd" */
    char *sql_dir;            /* sql_dir, default the config file's directory */
    char *log_level;          /* log_level: "debug" | "info" (default) | "warning" | "error",
                                 any case in the file, lower case here */
    int   stats_interval_s;   /* stats.interval, seconds, default 60, 0 = off, max 86400 */
    bool  stats_event;        /* stats.event: also emit the figures as the internal event
                                 eventsd/stats/eventsd every interval (route it to graphite);
                                 default false */
    char *stats_listen;       /* stats.listen: "HOST:PORT" of the Prometheus /metrics HTTP
                                 listener, NULL = off; port 0 picks a free one (logged) */
    int   shutdown_timeout_ms;/* shutdown.timeout_ms, default 30000, range 0 .. 3600000 */
    char *user;               /* user: drop privileges to it after opening the bus; NULL = keep */
    char *group;              /* group: likewise; default the user's primary group */
    bus_config_t bus;
    spool_config_t spool;
    worker_config_t *workers;
    int   n_workers;
    rule_config_t *rules;
    int   n_rules;
    redis_config_t redis;
    statistic_config_t *statistics;
    int   n_statistics;
    trigger_config_t *trigger_cfgs;   /* top-level `triggers` */
    int   n_triggers;
    pipeline_config_t *pipelines;     /* top-level `pipelines` */
    int   n_pipelines;
} eventsd_config_t;

/* Loads and checks path. On error returns NULL and writes every problem found, one per
 * line, as "FILE:LINE: message" into err (lines separated by '\n', no trailing newline,
 * truncated to errlen; err may be NULL). On success err is "". */
eventsd_config_t *config_load(const char *path, char *err, size_t errlen);
void eventsd_config_destroy(eventsd_config_t **self_p);

/* The file to name in a worker's FILE:LINE messages: its config file, or "config" for
 * settings built by hand (tests). */
const char *config_worker_file(const worker_config_t *w);

/* Index of the worker with that name, or -1. */
int config_worker_index(const eventsd_config_t *self, const char *name);

const char *config_bus_type_name(bus_type_t type);
const char *config_spool_sync_name(spool_sync_t sync);
const char *config_spool_full_name(spool_full_t policy);
const char *config_metric_agg_name(metric_agg_t agg);
const trigger_config_t *config_trigger(const eventsd_config_t *self, const char *name);
const pipeline_config_t *config_pipeline(const eventsd_config_t *self, const char *name);

#endif
