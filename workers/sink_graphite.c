/* sink_graphite: metrics from events, aggregated per flush interval and sent to carbon's
 * plaintext receiver (TCP, or UDP as an option).
 *
 * An aggregating sink (see sink.h): write_batch maps each event to metric names and values
 * (graphite_map: name templates, value fields, rollups) and folds them into the interval its
 * arrival time falls in (graphite_agg); nothing is sent there. flush_at is the end of the
 * oldest interval holding unsent data; flush renders every such interval, one line per name
 * stamped with the interval's start, and writes them in as few writes as the socket takes
 * (graphite_conn). The worker calls flush on STOP as well, so the interval still open is sent
 * too; and whatever flush sends, the worker acks every event folded so far: an open interval
 * holding data is therefore always sent with the rest, complete so far, and sent again,
 * complete, when it closes (carbon keeps the last line per slot).
 *
 * Failures: a send that fails keeps everything (SINK_RETRY) and the next flush, paced by the
 * worker's backoff, reconnects and sends it all again; same name and timestamp overwrite in
 * carbon, so resending is harmless. A worker that dies before a flush never acked its events;
 * its successor gets them again and folds them by their new arrival time. The limit of
 * carbon's last-line-wins model: when a worker is replaced while an interval is open (a crash
 * and restart, or a SIGHUP reload that changes it), the old and the new process may each send
 * a line for that slot, and the later one holds only its own share of the slot's events. For
 * the same reason a graphite worker runs one process (check refuses more).
 *
 * Bounded: names per interval are capped (GRAPHITE_MAX_NAMES), the worker's max_inflight caps
 * the events held. Skipped names and values are counted, logged at debug (rate-limited), and
 * summed up at close.
 *
 * Throughput: the master sends a worker at most max_inflight events it has not acked, and
 * acks come with flushes; waiting for the interval's end would cap a worker at max_inflight
 * events per interval. So once half of max_inflight events wait for a flush, the flush is
 * due at once: it sends the open interval complete so far (carbon keeps the later, complete
 * line of the slot) and the acks let the master go on.
 */
#include "graphite_agg.h"
#include "graphite_conn.h"
#include "graphite_map.h"
#include "log.h"
#include "sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRAPHITE_MAX_NAMES 100000
#define EARLY_FLUSH_DEFAULT 25000   /* without a max_inflight (hand-made configs) */

typedef struct {
    graphite_map_t  *map;
    graphite_agg_t  *agg;
    graphite_conn_t *conn;
    char            *name;          /* the worker's, for log lines */
    char            *master_id;
    int              interval_s;
    int              timeout_ms;    /* connect_timeout_ms: also bounds the close */
    msgpack_sbuffer  out;           /* the lines of one flush */
    uint64_t         events, lines, flushes;
    uint64_t         unflushed;     /* events folded since the last successful flush */
    uint64_t         early_at;      /* unflushed events that make a flush due at once */
    graphite_skips_t skips_logged;
    uint64_t         dropped_logged;
    log_complaint_t  skip_complaint, drop_complaint;
} graphite_sink_t;

/* ---------------------------------------------------------------- check */

static int check_settings(const worker_config_t *cfg, char *err, size_t errlen)
{
    const char *name = cfg->name ? cfg->name : "?";
    /* Carbon keeps the last line per metric and slot: two processes sending their own
     * aggregates for the same slot would overwrite each other's counts. */
    if (cfg->processes > 1)
        snprintf(err, errlen, "%s:%d: worker '%s': a graphite worker must have processes = 1 "
                 "(carbon keeps one value per metric and time slot, so processes would "
                 "overwrite each other's aggregates)", config_worker_file(cfg), cfg->line, name);
    else if (cfg->port < 1 || cfg->port > 65535 || cfg->flush_interval_s < 1)
        snprintf(err, errlen, "%s:%d: worker '%s': the graphite sink needs a port (1..65535) "
                 "and a flush_interval >= 1", config_worker_file(cfg), cfg->line, name);
    else
        return 0;
    return -1;
}

/* Settings, every metric name template, value field and rollup: all problems, one a line. */
static int graphite_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    int bad = check_settings(cfg, err, errlen) != 0;
    size_t used = bad ? strlen(err) : 0;
    if (used + 1 < errlen) {
        if (used)
            err[used++] = '\n';
        bad += graphite_map_check(cfg, config_worker_file(cfg), err + used, errlen - used);
        if (used && !err[used])
            err[used - 1] = '\0';   /* nothing after the settings' line */
    }
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- open / close */

static void log_totals(const graphite_sink_t *s)
{
    graphite_skips_t k = graphite_map_skips(s->map);
    log_info("msg=\"graphite sink closed\" worker=%s events=%" PRIu64 " lines_sent=%" PRIu64
             " flushes=%" PRIu64 " connects=%" PRIu64 " skipped_missing_field=%" PRIu64
             " skipped_bad_value=%" PRIu64 " skipped_bad_name=%" PRIu64 " dropped_over_cap=%"
             PRIu64 " nonfinite=%" PRIu64, s->name, s->events, s->lines, s->flushes,
             graphite_conn_connects(s->conn), k.missing_field, k.bad_value, k.bad_name,
             graphite_agg_dropped(s->agg), graphite_agg_nonfinite(s->agg));
}

/* Closes the connection once carbon has read every line sent (or after connect_timeout_ms):
 * the worker closes the sink right before it exits. */
static void finish_connection(graphite_sink_t *s)
{
    char err[512];
    if (graphite_conn_finish(s->conn, s->timeout_ms, err, sizeof err) != 0)
        log_warning("msg=\"graphite: the last lines sent may not have reached carbon\" "
                    "worker=%s error=\"%s\"", s->name, err);
}

static void graphite_close(sink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    graphite_sink_t *s = (graphite_sink_t *) *self_p;
    if (s->conn)
        finish_connection(s);
    if (s->map && s->agg && s->conn)
        log_totals(s);
    graphite_map_destroy(&s->map);
    graphite_agg_destroy(&s->agg);
    graphite_conn_destroy(&s->conn);
    msgpack_sbuffer_destroy(&s->out);
    free(s->name);
    free(s->master_id);
    free(s);
    *self_p = NULL;
}

/* Compiles everything; connects on the first flush (a carbon that is down must not keep the
 * worker from taking events: they wait in the aggregates). */
static sink_t *graphite_open(const worker_config_t *cfg, const char *master_id, char *err,
                             size_t errlen)
{
    if (check_settings(cfg, err, errlen) != 0)
        return NULL;
    graphite_sink_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&s->out);
    s->interval_s = cfg->flush_interval_s;
    s->timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    s->early_at = cfg->max_inflight > 1 ? (uint64_t) cfg->max_inflight / 2 : EARLY_FLUSH_DEFAULT;
    s->skip_complaint.interval_ms = 60000;
    s->drop_complaint.interval_ms = 60000;
    s->map = graphite_map_new(cfg, config_worker_file(cfg), err, errlen);
    if (!s->map) {
        graphite_close((sink_t **) &s);
        return NULL;
    }
    s->agg = graphite_agg_new(cfg->flush_interval_s, GRAPHITE_MAX_NAMES);
    s->conn = graphite_conn_new(cfg->host, cfg->port, cfg->udp, cfg->connect_timeout_ms);
    s->name = strdup(cfg->name ? cfg->name : "graphite");
    s->master_id = master_id ? strdup(master_id) : NULL;
    if (!s->agg || !s->conn || !s->name || (master_id && !s->master_id)) {
        snprintf(err, errlen, "out of memory");
        graphite_close((sink_t **) &s);
    }
    return (sink_t *) s;
}

/* ---------------------------------------------------------------- folding */

/* New skips and cap drops since the last report, rate-limited. */
static void report_skips(graphite_sink_t *s)
{
    graphite_skips_t k = graphite_map_skips(s->map);
    graphite_skips_t *l = &s->skips_logged;
    if (k.missing_field != l->missing_field || k.bad_value != l->bad_value ||
        k.bad_name != l->bad_name) {
        log_complain(&s->skip_complaint, LOG_LVL_DEBUG,
                     "msg=\"metrics skipped for events lacking a name field, a numeric value "
                     "or a valid name\" worker=%s missing_field=%" PRIu64 " bad_value=%" PRIu64
                     " bad_name=%" PRIu64, s->name, k.missing_field, k.bad_value, k.bad_name);
        *l = k;
    }
    uint64_t dropped = graphite_agg_dropped(s->agg);
    if (dropped != s->dropped_logged) {
        log_complain(&s->drop_complaint, LOG_LVL_WARNING,
                     "msg=\"too many distinct metric names in one interval, extra names "
                     "dropped\" worker=%s cap=%d dropped=%" PRIu64, s->name, GRAPHITE_MAX_NAMES,
                     dropped);
        s->dropped_logged = dropped;
    }
}

static int fold_event(graphite_sink_t *s, const worker_event_t *ev, int64_t start)
{
    const graphite_point_t *pts;
    const msgpack_object *data = ev->data ? payload_root(ev->data) : NULL;
    long n = graphite_map_event(s->map, ev->tag, ev->tag_len, data, s->master_id, &pts);
    for (long i = 0; i < n; i++)
        if (graphite_agg_add(s->agg, start, pts[i].name, pts[i].len, pts[i].how,
                             pts[i].value) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

/* Only folds: the worker holds the acks until a flush sends the aggregates. */
static sink_result_t graphite_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                          size_t *bad_index, char *err, size_t errlen)
{
    (void) bad_index;
    graphite_sink_t *s = (graphite_sink_t *) self;
    int64_t start = graphite_agg_slot(s->agg, wall_ms());
    for (size_t i = 0; i < n; i++)
        if (fold_event(s, events[i], start) != 0) {
            /* fatal: the worker exits unacked and the master gives the events to a new one */
            snprintf(err, errlen, "graphite: out of memory folding metrics");
            return SINK_FATAL;
        }
    s->events += n;
    s->unflushed += n;
    report_skips(s);
    return SINK_OK;
}

/* ---------------------------------------------------------------- flushing */

/* The wall-clock end of the oldest unsent interval, in clock_ms() terms; never more than one
 * interval away, so a wall clock set back cannot hold data for long; now when enough events
 * wait for their acks (see the top of this file), or when the events waiting made no metric
 * at all (their acks must not wait for data that will never come). */
static int64_t graphite_flush_at(sink_t *self)
{
    graphite_sink_t *s = (graphite_sink_t *) self;
    int64_t due = graphite_agg_due_ms(s->agg), now = clock_ms();
    if (due == INT64_MAX)   /* events that made no metric still wait for an (empty) flush */
        return s->unflushed ? now : INT64_MAX;
    int64_t wait = due - wall_ms();
    if (s->unflushed >= s->early_at)
        return now;   /* the master is about to wait for our acks */
    int64_t max_wait = (int64_t) s->interval_s * 1000;
    return now + (wait < 0 ? 0 : wait > max_wait ? max_wait : wait);
}

static sink_result_t graphite_flush(sink_t *self, char *err, size_t errlen)
{
    graphite_sink_t *s = (graphite_sink_t *) self;
    s->out.size = 0;
    long lines = graphite_agg_render(s->agg, &s->out);
    if (lines < 0) {
        snprintf(err, errlen, "graphite: out of memory rendering metric lines");
        return SINK_FATAL;
    }
    if (lines > 0 && graphite_conn_send(s->conn, s->out.data, s->out.size, err, errlen) != 0)
        return SINK_RETRY;
    graphite_agg_sent(s->agg, wall_ms());
    s->unflushed = 0;
    s->lines += (uint64_t) lines;
    s->flushes++;
    return SINK_OK;
}

/* ---------------------------------------------------------------- explain */

static void explain_skips(graphite_skips_t k, FILE *out)
{
    if (k.missing_field)
        fprintf(out, "    skipped: %llu metric(s) whose name needs a field the event lacks\n",
                (unsigned long long) k.missing_field);
    if (k.bad_value)
        fprintf(out, "    skipped: %llu metric(s) whose value field is missing or not a finite "
                "number\n", (unsigned long long) k.bad_value);
    if (k.bad_name)
        fprintf(out, "    skipped: %llu name(s) that are not valid Graphite names (an empty "
                "field, or longer than the limits)\n", (unsigned long long) k.bad_name);
}

/* The names and values the event would add to its interval; nothing is connected. */
static void graphite_explain(const worker_config_t *cfg, const char *master_id,
                             const worker_event_t *ev, FILE *out)
{
    char err[512];
    graphite_map_t *map = graphite_map_new(cfg, config_worker_file(cfg), err, sizeof err);
    if (!map) {
        fprintf(out, "    cannot map metrics: %s\n", err);
        return;
    }
    fprintf(out, "    to %s:%d (%s), one line per name every %d s\n",
            cfg->host ? cfg->host : "127.0.0.1", cfg->port, cfg->udp ? "udp" : "tcp",
            cfg->flush_interval_s);
    const graphite_point_t *pts;
    long n = graphite_map_event(map, ev->tag, ev->tag_len,
                                ev->data ? payload_root(ev->data) : NULL, master_id, &pts);
    for (long i = 0; i < n; i++) {
        char num[32];
        graphite_format_value(pts[i].value, num);
        fprintf(out, "    %s %.*s %s (%s)\n", pts[i].rollup ? "rollup" : "metric",
                (int) pts[i].len, pts[i].name, num, config_metric_agg_name(pts[i].how));
    }
    if (n == 0)
        fprintf(out, "    no metric\n");
    explain_skips(graphite_map_skips(map), out);
    graphite_map_destroy(&map);
}

const sink_ops_t sink_graphite_ops = {
    .defers_acks = true,
    .name = "graphite",
    .check = graphite_check,
    .open = graphite_open,
    .write_batch = graphite_write_batch,
    .close = graphite_close,
    .flush_at = graphite_flush_at,
    .flush = graphite_flush,
    .explain = graphite_explain,
};
