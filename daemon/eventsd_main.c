/* eventsd: the master process. Reads the Salt bus, matches rules, hands accepted events to
 * the dispatcher (which owns the worker processes), handles signals and logs statistics. */
#include "bus.h"
#include "config.h"
#include "dispatcher.h"
#include "explain.h"
#include "field_stats.h"
#include "figures.h"
#include "log.h"
#include "metrics_http.h"
#include "notify.h"
#include "payload.h"
#include "privileges.h"
#include "rules.h"
#include "secrets.h"
#include "sink.h"
#include "spool.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EVENTSD_VERSION "0.1.0"
#define READ_BURST      2000   /* events per bus read before servicing the workers again */
#define HELD_RETRY_MS   100    /* how often events the spool refused are offered again */

/* An event read from the bus that the spool could not take yet (full, or a write error): not
 * accepted; the bus is not read while any is held, and they are offered again in order. */
typedef struct {
    salt_event_t ev;
    uint8_t     *targets;
} held_t;

typedef struct {
    config_ref_t *ref;
    rules_t      *rules;
    bus_t        *bus;
    dispatcher_t *dispatcher;
    spool_t      *spool;
    uint8_t      *targets;
    spool_target_t *spool_targets;  /* scratch: the names an event goes to */
    held_t       *held;             /* at most READ_BURST */
    size_t        n_held;
    int64_t       held_retry_ms, held_cleared_ms;
    uint64_t      spool_refusals;
    log_complaint_t spool_complaint;
    int           sigfd;
    bool          draining;
    int64_t       drain_deadline_ms;
    int64_t       next_stats_ms, last_stats_ms;
    uint64_t      accepted, unmatched, accepted_at_last_stats;
    bus_stats_t   bus_final;        /* the bus's counters when it was closed for the drain */
    bool          ready;            /* systemd told READY=1 */
    zmq_pollitem_t *items;          /* grows with the number of worker processes */
    int           n_items;
    figures_t     figures;          /* scratch for /metrics and the stats events */
    field_stats_t *field_stats;     /* the config's statistics */
    metrics_http_t *http;           /* stats.listen, NULL when off */
    uint64_t      internal_events, internal_dropped;
    log_complaint_t throttle_complaint;
} master_t;

static void open_metrics_listener(master_t *m, const char *old_listen);

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eventsd [-c FILE] [--pidfile FILE] [--log-level LEVEL]\n"
            "       eventsd --check-config FILE\n"
            "       eventsd [-c FILE] --explain TAG [--data JSON]\n"
            "Stores the events of a SaltStack master's event bus in databases.\n"
            "  -c, --config FILE     config file (default /etc/eventsd/eventsd.conf)\n"
            "      --check-config F  validate F (syntax, keys, rules, templates), print\n"
            "                        FILE:LINE: message for each problem, exit 1 on error\n"
            "      --explain TAG     show which rules, workers, metrics, counters, throttles and\n"
            "                        statistics an event with this tag (and --data, a JSON\n"
            "                        object, default {}) would reach; exit 0 if stored, 3 if\n"
            "                        not, 1 on error\n"
            "      --pidfile FILE    write the master's pid to FILE\n"
            "      --log-level L     debug|info|warning|error (overrides log_level)\n"
            "  -h, --help            this help\n"
            "  -V, --version         print the version\n"
            "Signals: TERM/INT drain and exit, HUP reloads the config.\n");
}

/* Everything --check-config checks, also run before start and on every reload. */
static eventsd_config_t *load_checked(const char *path, char *err, size_t errlen)
{
    eventsd_config_t *cfg = config_load(path, err, errlen);
    if (!cfg)
        return NULL;
    rules_t *rules = rules_new(cfg, err, errlen);
    if (!rules) {
        eventsd_config_destroy(&cfg);
        return NULL;
    }
    rules_destroy(&rules);
    field_stats_t *fs = field_stats_new(cfg->statistics, cfg->n_statistics, cfg->path, err,
                                        errlen);
    if (!fs) {
        eventsd_config_destroy(&cfg);
        return NULL;
    }
    field_stats_destroy(&fs);
    size_t used = 0;
    err[0] = '\0';
    for (int i = 0; i < cfg->n_workers; i++) {
        const sink_ops_t *ops = sink_lookup(cfg->workers[i].sink);
        char one[1024];
        if (!ops)
            snprintf(one, sizeof one, "%s:%d: sink '%s' is not built into this eventsd",
                     cfg->path, cfg->workers[i].line, cfg->workers[i].sink);
        if ((!ops || ops->check(&cfg->workers[i], one, sizeof one) < 0) && used < errlen)
            used += (size_t) snprintf(err + used, errlen - used, "%s%s", used ? "\n" : "", one);
    }
    if (used) {
        eventsd_config_destroy(&cfg);
        return NULL;
    }
    return cfg;
}

/* A config that holds passwords must not be readable by everyone. */
static void warn_exposed_secrets(const eventsd_config_t *cfg, FILE *to)
{
    char msg[512];
    if (!secrets_config_has_password(cfg) || secrets_check_file_mode(cfg->path, msg, sizeof msg) != 1)
        return;
    if (to)
        fprintf(to, "warning: %s\n", msg);
    else
        log_warning("msg=\"%s\" path=%s", msg, cfg->path);
}

static int check_config(const char *path)
{
    char err[8192];
    eventsd_config_t *cfg = load_checked(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    privileges_t priv;
    if (privileges_resolve(cfg->user, cfg->group, &priv, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        eventsd_config_destroy(&cfg);
        return 1;
    }
    warn_exposed_secrets(cfg, stderr);
    printf("%s: OK (%d workers, %d rules, bus %s)\n", path, cfg->n_workers, cfg->n_rules,
           config_bus_type_name(cfg->bus.type));
    eventsd_config_destroy(&cfg);
    return 0;
}

static int explain(const char *path, const char *tag, const char *data)
{
    char err[8192];
    eventsd_config_t *cfg = load_checked(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = explain_event(cfg, tag, data, stdout, err, sizeof err);
    if (rc == 1)
        fprintf(stderr, "eventsd --explain: %s\n", err);
    eventsd_config_destroy(&cfg);
    return rc;
}

static int prepare_runtime_dir(const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_error("msg=\"cannot create runtime_dir\" path=%s error=\"%s\"", dir, strerror(errno));
        return -1;
    }
    if (chmod(dir, 0700) < 0) {   /* private: only this user may talk to the workers */
        log_error("msg=\"cannot chmod runtime_dir 0700\" path=%s error=\"%s\"", dir,
                  strerror(errno));
        return -1;
    }
    return 0;
}

/* The runtime and spool directories are created as root and given to the configured user
 * before privileges are dropped. */
static int hand_over_dirs(const eventsd_config_t *cfg, const privileges_t *priv)
{
    char err[512], quarantine[4096];
    if (!priv->enabled)
        return 0;
    snprintf(quarantine, sizeof quarantine, "%s/quarantine", cfg->spool.dir);
    if (spool_make_dir(cfg->spool.dir) < 0) {
        log_error("msg=\"cannot create spool.dir\" path=%s error=\"%s\"", cfg->spool.dir,
                  strerror(errno));
        return -1;
    }
    if (privileges_chown_dir(cfg->runtime_dir, priv, err, sizeof err) < 0 ||
        privileges_chown_dir(cfg->spool.dir, priv, err, sizeof err) < 0 ||
        privileges_chown_files(cfg->spool.dir, priv, err, sizeof err) < 0 ||
        (access(quarantine, F_OK) == 0 &&
         privileges_chown_dir(quarantine, priv, err, sizeof err) < 0)) {
        log_error("msg=\"cannot hand a directory to the configured user\" error=\"%s\"", err);
        return -1;
    }
    return 0;
}

static int signals_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void spool_report(void *arg, const char *line)
{
    (void) arg;
    log_warning("%s", line);
}

/* ---- the event path ---- */

/* Spools the event, then hands it to the dispatcher: it is accepted from here on. */
static spool_rc_t accept_event(master_t *m, salt_event_t *ev, const uint8_t *targets)
{
    const eventsd_config_t *cfg = m->ref->cfg;
    int n = 0;
    for (int i = 0; i < cfg->n_workers; i++)
        if (targets[i] & RULES_DELIVER)
            m->spool_targets[n++] = (spool_target_t){ cfg->workers[i].name,
                                                      (targets[i] & RULES_PRIORITY) != 0 };
    uint64_t seq;
    char err[512];
    spool_rc_t rc = spool_append(m->spool, ev->tag, ev->tag_len, ev->payload, ev->payload_len,
                                 m->spool_targets, n, &seq, err, sizeof err);
    if (rc != SPOOL_OK) {
        m->spool_refusals++;
        if (rc == SPOOL_FULL)
            log_complain(&m->spool_complaint, LOG_LVL_WARNING,
                         "msg=\"spool full (when_full=%s), not reading the bus until there is "
                         "room\" spool_bytes=%llu max_bytes=%lld",
                         config_spool_full_name(cfg->spool.when_full),
                         (unsigned long long) spool_stats(m->spool)->bytes, cfg->spool.max_bytes);
        else
            log_complain(&m->spool_complaint, LOG_LVL_ERROR,
                         "msg=\"cannot write to the spool, not reading the bus until it works\" "
                         "error=\"%s\"", err);
        return rc;
    }
    m->accepted++;
    dispatcher_accept(m->dispatcher, ev, targets, seq);
    return SPOOL_OK;
}

static void hold(master_t *m, salt_event_t *ev)
{
    size_t n = (size_t) m->ref->cfg->n_workers + 1;
    held_t *h = &m->held[m->n_held];
    h->targets = malloc(n);
    if (!h->targets) {
        log_error("msg=\"out of memory holding an event the spool refused; event lost\" tag=%.*s",
                  (int) ev->tag_len, ev->tag);
        return;
    }
    memcpy(h->targets, m->targets, n);
    h->ev = *ev;
    memset(ev, 0, sizeof *ev);
    m->n_held++;
}

/* statistics count every event read from the bus (their own events excepted). */
static void count_statistics(master_t *m, const salt_event_t *ev)
{
    size_t plen = strlen(FIELD_STATS_TAG_PREFIX);
    if (!m->ref->cfg->n_statistics ||
        (ev->tag_len >= plen && memcmp(ev->tag, FIELD_STATS_TAG_PREFIX, plen) == 0))
        return;
    char err[8];
    payload_t *data = payload_new(ev->payload, ev->payload_len, true, 1000, err, sizeof err);
    field_stats_add(m->field_stats, ev->tag, ev->tag_len, data ? payload_root(data) : NULL,
                    m->ref->cfg->master_id, wall_ms());
    payload_destroy(&data);
}

static void on_bus_event(salt_event_t *ev, void *arg)
{
    master_t *m = arg;
    count_statistics(m, ev);
    int hits = rules_match(m->rules, ev->tag, ev->tag_len, ev->payload, ev->payload_len,
                           m->targets);
    if (rules_throttle_error(m->rules))
        log_complain(&m->throttle_complaint, LOG_LVL_WARNING,
                     "msg=\"shared throttle cannot use redis, counting in this process\" "
                     "error=\"%s\"", rules_throttle_error(m->rules));
    if (!hits) {
        m->unmatched++;
        return;
    }
    if (m->n_held || accept_event(m, ev, m->targets) != SPOOL_OK)
        hold(m, ev);   /* in order: once one waits, the rest of the burst waits behind it */
}

/* An event eventsd makes itself (statistics, its own figures, a worker's EMIT) takes the bus
 * events' path: rules, spool, workers. While the spool refuses events it is dropped and
 * counted: it is not a Salt event, and the held slots are the bus's. While draining, only a
 * worker's EMIT is taken (its trigger stream is already finished, so the spool is its only
 * copy; it is delivered at the next start if the workers are gone). */
static void inject_internal(master_t *m, const char *tag, const msgpack_sbuffer *payload,
                            bool while_draining)
{
    if ((m->draining && !while_draining) || m->n_held) {
        m->internal_dropped++;
        return;
    }
    salt_event_t ev = { .tag = strdup(tag), .tag_len = strlen(tag),
                        .payload = malloc(payload->size ? payload->size : 1),
                        .payload_len = payload->size };
    if (!ev.tag || !ev.payload) {
        m->internal_dropped++;
        salt_event_free(&ev);
        return;
    }
    memcpy(ev.payload, payload->data, payload->size);
    m->internal_events++;
    on_bus_event(&ev, m);
    salt_event_free(&ev);   /* unmatched: still ours */
}

/* Hands the statistics' finished intervals to the rules as internal events. */
static void emit_statistics(master_t *m)
{
    msgpack_sbuffer tag, payload;
    msgpack_sbuffer_init(&tag);
    msgpack_sbuffer_init(&payload);
    int rc;
    while ((rc = field_stats_pop(m->field_stats, wall_ms(), &tag, &payload)) != 0) {
        if (rc < 0)
            continue;
        msgpack_sbuffer_write(&tag, "", 1);   /* NUL-terminate */
        inject_internal(m, tag.data, &payload, false);
    }
    msgpack_sbuffer_destroy(&tag);
    msgpack_sbuffer_destroy(&payload);
}

/* A worker's EMIT: its payload is checked like a bus event's (a map within the limits)
 * before it is routed, so a broken worker cannot feed the spool what the bus could not. */
static void on_worker_emit(void *arg, const char *worker, const char *tag, size_t tag_len,
                           const void *data, size_t data_len)
{
    master_t *m = arg;
    char err[256];
    char *t = strndup(tag, tag_len);
    payload_t *p = t ? payload_new(data, data_len, true, m->ref->cfg->bus.max_depth, err,
                                   sizeof err) : NULL;
    if (!p || data_len > m->ref->cfg->bus.max_event_bytes) {
        m->internal_dropped++;
        log_warning("msg=\"worker emitted an event that is not a valid payload, dropped\" "
                    "worker=%s tag=%s error=\"%s\"", worker, t ? t : "?",
                    p ? "larger than bus.max_event_bytes" : t ? err : "out of memory");
    } else {
        msgpack_sbuffer payload = { .size = data_len, .data = (char *) data };
        inject_internal(m, t, &payload, true);
    }
    payload_destroy(&p);
    free(t);
}

static void retry_held(master_t *m, int64_t now)
{
    if (!m->n_held || now < m->held_retry_ms)
        return;
    m->held_retry_ms = now + HELD_RETRY_MS;
    size_t done = 0;
    while (done < m->n_held && accept_event(m, &m->held[done].ev, m->held[done].targets) == SPOOL_OK)
        free(m->held[done++].targets);
    memmove(m->held, m->held + done, (m->n_held - done) * sizeof *m->held);
    m->n_held -= done;
    if (!m->n_held && done)
        m->held_cleared_ms = now;
}

/* Said once the spool took every event for a while: a spool at its limit fills and frees in
 * turns, and each turn must not log a pair of lines. */
static void maybe_spool_recovered(master_t *m, int64_t now)
{
    if (m->spool_complaint.active && !m->n_held && now - m->held_cleared_ms >= 2000)
        log_recovered(&m->spool_complaint, "msg=\"spool takes events again, reading the bus\" "
                      "spool_bytes=%llu", (unsigned long long) spool_stats(m->spool)->bytes);
}

/* A reload renumbers the workers: held events are matched again against the new rules. */
static void rematch_held(master_t *m)
{
    size_t n = (size_t) m->ref->cfg->n_workers + 1;
    for (size_t i = 0; i < m->n_held; i++) {
        held_t *h = &m->held[i];
        uint8_t *t = realloc(h->targets, n);
        if (t)
            h->targets = t;
        if (!t || !rules_match(m->rules, h->ev.tag, h->ev.tag_len, h->ev.payload,
                               h->ev.payload_len, h->targets))
            memset(h->targets, 0, t ? n : 1);
    }
}

static void free_held(master_t *m)
{
    if (m->n_held)
        log_error("msg=\"events read from the bus were never spooled (spool full or failing) "
                  "and are lost\" events=%zu", m->n_held);
    for (size_t i = 0; i < m->n_held; i++) {
        free(m->held[i].targets);
        free(m->held[i].ev.tag);
        free(m->held[i].ev.payload);
    }
    m->n_held = 0;
}

/* ---- reload and shutdown ---- */

static void reload(master_t *m)
{
    char err[8192];
    const char *path = m->ref->cfg->path;
    log_info("msg=\"SIGHUP: reloading config\" path=%s", path);
    eventsd_config_t *cfg = load_checked(path, err, sizeof err);
    rules_t *rules = cfg ? rules_new(cfg, err, sizeof err) : NULL;
    field_stats_t *fs = rules ? field_stats_new(cfg->statistics, cfg->n_statistics, cfg->path,
                                                err, sizeof err) : NULL;
    uint8_t *targets = cfg ? calloc((size_t) cfg->n_workers + 1, 1) : NULL;
    spool_target_t *st = cfg ? calloc((size_t) cfg->n_workers + 1, sizeof *st) : NULL;
    if (!cfg || !rules || !fs || !targets || !st) {
        log_error("msg=\"reload failed, keeping the running config\" error=\"%s\"", err);
        rules_destroy(&rules);
        field_stats_destroy(&fs);
        eventsd_config_destroy(&cfg);
        free(targets);
        free(st);
        return;
    }
    warn_exposed_secrets(cfg, NULL);
    config_ref_t *ref = config_ref_new(cfg);
    if (dispatcher_apply(m->dispatcher, ref, err, sizeof err) < 0) {
        log_error("msg=\"reload failed, keeping the running config\" error=\"%s\"", err);
        rules_destroy(&rules);
        field_stats_destroy(&fs);
        config_ref_put(&ref);
        free(targets);
        free(st);
        return;
    }
    if (strcmp(cfg->runtime_dir, m->ref->cfg->runtime_dir) != 0)
        log_warning("msg=\"runtime_dir changes take effect at the next restart\" runtime_dir=%s",
                    m->ref->cfg->runtime_dir);
    if (spool_reconfigure(m->spool, &cfg->spool) < 0)
        log_warning("msg=\"spool.dir changes take effect at the next restart\" spool.dir=%s",
                    m->ref->cfg->spool.dir);
    if (m->bus && bus_config_differs(m->bus, &cfg->bus)) {
        log_info("msg=\"bus settings changed, reconnecting\" bus=%s",
                 config_bus_type_name(cfg->bus.type));
        bus_destroy(&m->bus);
        m->bus = bus_new(&cfg->bus);
    }
    emit_statistics(m);   /* what the old statistics finished; the open interval ends here */
    char *old_listen = m->ref->cfg->stats_listen ? strdup(m->ref->cfg->stats_listen) : NULL;
    rules_destroy(&m->rules);
    field_stats_destroy(&m->field_stats);
    free(m->targets);
    free(m->spool_targets);
    config_ref_put(&m->ref);
    m->rules = rules;
    m->field_stats = fs;
    m->targets = targets;
    m->spool_targets = st;
    m->ref = ref;
    rematch_held(m);
    open_metrics_listener(m, old_listen);
    free(old_listen);
    log_info("msg=\"config reloaded\" workers=%d rules=%d", cfg->n_workers, cfg->n_rules);
}

static void begin_drain(master_t *m, const char *why)
{
    if (m->draining)
        return;
    log_info("msg=\"%s: stopped reading the bus, draining\" pending=%llu timeout_ms=%d", why,
             (unsigned long long) dispatcher_pending(m->dispatcher),
             m->ref->cfg->shutdown_timeout_ms);
    m->draining = true;
    notify_stopping("draining pending events");
    m->drain_deadline_ms = clock_ms() + m->ref->cfg->shutdown_timeout_ms;
    m->bus_final = *bus_stats(m->bus);
    bus_destroy(&m->bus);
    dispatcher_begin_drain(m->dispatcher);
}

static void reap_children(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        dispatcher_child_exited(m->dispatcher, pid, status);
}

static void handle_signals(master_t *m)
{
    struct signalfd_siginfo si;
    while (read(m->sigfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM)
            begin_drain(m, "SIGTERM");
        else if (si.ssi_signo == SIGINT)
            begin_drain(m, "SIGINT");
        else if (si.ssi_signo == SIGHUP && !m->draining)
            reload(m);
        else if (si.ssi_signo == SIGCHLD)
            reap_children(m);
    }
}

/* ---- statistics ---- */

static void log_stats(master_t *m, int64_t now)
{
    const bus_stats_t *bs = m->bus ? bus_stats(m->bus) : &m->bus_final;
    double interval = (double) (now - m->last_stats_ms) / 1000.0;
    char line[4096];
    snprintf(line, sizeof line,
             "msg=stats received=%llu accepted=%llu unmatched=%llu malformed=%llu "
             "oversize=%llu rate=%.0f bus=%s spool_bytes=%llu spool_segments=%llu "
             "spool_full=%llu spool_dropped=%llu held=%zu",
             (unsigned long long) bs->received, (unsigned long long) m->accepted,
             (unsigned long long) m->unmatched, (unsigned long long) bs->malformed,
             (unsigned long long) bs->oversize,
             interval > 0 ? (double) (m->accepted - m->accepted_at_last_stats) / interval : 0,
             m->bus && bus_connected(m->bus) ? "up" : "down",
             (unsigned long long) spool_stats(m->spool)->bytes,
             (unsigned long long) spool_stats(m->spool)->segments,
             (unsigned long long) m->spool_refusals,
             (unsigned long long) spool_stats(m->spool)->dropped_events, m->n_held);
    dispatcher_format_stats(m->dispatcher, line, sizeof line, interval);
    log_info("%s", line);
    notify_status("accepted=%llu rate=%.0f/s pending=%llu malformed=%llu bus=%s",
                  (unsigned long long) m->accepted,
                  interval > 0 ? (double) (m->accepted - m->accepted_at_last_stats) / interval : 0,
                  (unsigned long long) dispatcher_pending(m->dispatcher),
                  (unsigned long long) bs->malformed,
                  m->bus && bus_connected(m->bus) ? "up" : "down");
    m->accepted_at_last_stats = m->accepted;
    m->last_stats_ms = now;
}

/* eventsd's own numbers, the same list for /metrics and the stats events. */
static void collect_figures(master_t *m)
{
    figures_t *f = &m->figures;
    const bus_stats_t *bs = m->bus ? bus_stats(m->bus) : &m->bus_final;
    const spool_stats_t *ss = spool_stats(m->spool);
    figures_clear(f);
    figures_add(f, "received", "Events decoded from the Salt bus", true, NULL, NULL, (double) bs->received);
    figures_add(f, "accepted", "Events written to the spool for at least one worker", true, NULL, NULL, (double) m->accepted);
    figures_add(f, "unmatched", "Events no rule sent to a worker", true, NULL, NULL, (double) m->unmatched);
    figures_add(f, "malformed", "Bus frames skipped as malformed", true, NULL, NULL, (double) bs->malformed);
    figures_add(f, "oversize", "Bus frames skipped as larger than bus.max_event_bytes", true, NULL, NULL, (double) bs->oversize);
    figures_add(f, "bus_connected", "1 while the Salt bus is connected", false, NULL, NULL, m->bus && bus_connected(m->bus));
    figures_add(f, "held", "Events read from the bus that the spool has not taken yet", false, NULL, NULL, (double) m->n_held);
    figures_add(f, "spool_bytes", "Bytes in the spool", false, NULL, NULL, (double) ss->bytes);
    figures_add(f, "spool_segments", "Segment files in the spool", false, NULL, NULL, (double) ss->segments);
    figures_add(f, "spool_refusals", "Times the spool refused an event (full or failing)", true, NULL, NULL, (double) m->spool_refusals);
    figures_add(f, "spool_dropped", "Spooled events dropped by when_full = drop-oldest", true, NULL, NULL, (double) ss->dropped_events);
    figures_add(f, "internal_events", "Events eventsd made itself (statistics, figures)", true, NULL, NULL, (double) m->internal_events);
    figures_add(f, "internal_dropped", "Internal events dropped while the spool refused events", true, NULL, NULL, (double) m->internal_dropped);
    worker_figures_t wf[256];
    int n = dispatcher_figures(m->dispatcher, wf, 256);
    for (int i = 0; i < n; i++) {
        const char *w = wf[i].name;
        figures_add(f, "written", "Events the worker's sink committed", true, "worker", w, (double) wf[i].written);
        figures_add(f, "failed", "Events the worker dead-lettered", true, "worker", w, (double) wf[i].rejected);
        figures_add(f, "restarts", "Worker processes restarted", true, "worker", w, (double) wf[i].restarts);
        figures_add(f, "pending", "Events queued in memory or in flight to the worker", false, "worker", w, (double) wf[i].pending);
        figures_add(f, "spooled", "Unread spool records for the worker (upper bound)", false, "worker", w, (double) wf[i].spooled);
        figures_add(f, "dropped", "Events dropped for the worker by when_full = drop-oldest", true, "worker", w, (double) wf[i].dropped);
        figures_add(f, "latency_seconds", "Entering memory to the ack, for the last acked event", false, "worker", w, (double) wf[i].latency_last_ms / 1000.0);
        figures_add(f, "processes", "Configured worker processes", false, "worker", w, wf[i].processes);
    }
    const eventsd_config_t *cfg = m->ref->cfg;
    for (int i = 0; i < rules_n_rules(m->rules) && i < cfg->n_rules; i++) {
        const throttle_stats_t *ts = rules_throttle_stats(m->rules, i);
        if (!ts)
            continue;
        const char *rule = rules_label(m->rules, i);
        figures_add(f, "throttle_passed", "Events a rule's throttle let through", true, "rule", rule, (double) ts->passed);
        figures_add(f, "throttle_blocked", "Events a rule's throttle held back", true, "rule", rule, (double) ts->blocked);
        figures_add(f, "throttle_keys", "Keys in a throttle's local table", false, "rule", rule, (double) ts->keys);
        figures_add(f, "throttle_redis_errors", "Failed Redis operations of a shared throttle", true, "rule", rule, (double) ts->redis_errors);
    }
}

static int64_t epoch_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void render_metrics(void *arg, msgpack_sbuffer *out)
{
    master_t *m = arg;
    collect_figures(m);
    figures_prometheus(&m->figures, out);
}

/* stats.listen: (re)opens the Prometheus listener when the address changed. */
static void open_metrics_listener(master_t *m, const char *old_listen)
{
    const char *listen = m->ref->cfg->stats_listen;
    if (m->http && old_listen && listen && strcmp(old_listen, listen) == 0)
        return;
    metrics_http_destroy(&m->http);
    if (!listen)
        return;
    char err[512];
    m->http = metrics_http_new(listen, err, sizeof err);
    if (m->http)
        log_info("msg=\"serving Prometheus metrics\" listen=%s port=%d path=/metrics", listen,
                 metrics_http_port(m->http));
    else
        log_error("msg=\"cannot serve Prometheus metrics, going on without\" error=\"%s\"", err);
}

/* stats.event: one eventsd/stats/eventsd event per figure, routed by the rules. */
static void emit_figure_events(master_t *m)
{
    collect_figures(m);
    int64_t now = epoch_us();
    for (int i = 0; i < m->figures.n; i++) {
        msgpack_sbuffer payload;
        msgpack_sbuffer_init(&payload);
        figures_event(&m->figures, i, m->ref->cfg->master_id, now, &payload);
        inject_internal(m, FIGURES_EVENT_TAG, &payload, false);
        msgpack_sbuffer_destroy(&payload);
    }
}

static void maybe_stats(master_t *m, int64_t now)
{
    int interval = m->ref->cfg->stats_interval_s;
    if (interval <= 0 || now < m->next_stats_ms)
        return;
    log_stats(m, now);
    if (m->ref->cfg->stats_event)
        emit_figure_events(m);
    m->next_stats_ms = now + (int64_t) interval * 1000;
}

/* ---- the loop ---- */

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static void run_once(master_t *m)
{
    int64_t now = clock_ms();
    if (m->bus)
        bus_tick(m->bus, now);
    retry_held(m, now);
    maybe_spool_recovered(m, now);
    dispatcher_tick(m->dispatcher, now);
    spool_tick(m->spool, clock_ms());
    if (!m->ready && m->bus && bus_connected(m->bus)) {
        notify_ready("bus connected, workers started");
        m->ready = true;
    }

    int needed = 2 + dispatcher_n_pollitems(m->dispatcher) +
                 (m->http ? metrics_http_n_pollitems(m->http) : 0);
    if (needed > m->n_items) {
        zmq_pollitem_t *grown = realloc(m->items, (size_t) needed * sizeof *grown);
        if (!grown) {
            log_error("msg=\"out of memory for poll items\"");
            return;
        }
        m->items = grown;
        m->n_items = needed;
    }
    zmq_pollitem_t *items = m->items;
    int n = 0;
    items[n++] = (zmq_pollitem_t){ .fd = m->sigfd, .events = ZMQ_POLLIN };
    bool backlogged = m->n_held > 0;   /* the spool refused events: stop reading the bus */
    int bus_item = -1;
    if (m->bus && !backlogged && bus_pollitem(m->bus, &items[n]))
        bus_item = n++;
    int first_http = n;
    metrics_http_t *http = m->http;
    if (http)
        n += metrics_http_pollitems(http, &items[n], m->n_items - n);
    int n_http = n - first_http;
    int first_worker = n;
    n += dispatcher_pollitems(m->dispatcher, &items[n], m->n_items - n);
    uint64_t layout = dispatcher_layout(m->dispatcher);

    int timeout = 1000;
    if (m->bus)
        timeout = min_timeout(timeout, bus_timeout_ms(m->bus, now));
    timeout = min_timeout(timeout, dispatcher_timeout_ms(m->dispatcher, now));
    timeout = min_timeout(timeout, spool_timeout_ms(m->spool, now));
    if (m->n_held)
        timeout = min_timeout(timeout, (int) (m->held_retry_ms > now ? m->held_retry_ms - now : 0));
    if (m->ref->cfg->stats_interval_s > 0)
        timeout = min_timeout(timeout, (int) (m->next_stats_ms > now ? m->next_stats_ms - now : 0));
    timeout = min_timeout(timeout, field_stats_next_due_ms(m->field_stats, wall_ms()));
    if (http)
        timeout = min_timeout(timeout, metrics_http_timeout_ms(http, now));
    timeout = min_timeout(timeout, notify_watchdog(now));
    if (m->bus && !backlogged && bus_has_buffered(m->bus))
        timeout = 0;

    if (zmq_poll(items, n, timeout) < 0 && errno != EINTR) {
        log_error("msg=\"poll failed\" error=\"%s\"", strerror(errno));
        return;
    }
    if (items[0].revents)
        handle_signals(m);
    if (http && http == m->http)   /* a reload may have replaced the listener */
        metrics_http_handle(http, &items[first_http], n_http, render_metrics, m);
    if (m->bus && bus_item >= 0 && (items[bus_item].revents || bus_has_buffered(m->bus)))
        bus_read(m->bus, on_bus_event, m, READ_BURST);
    if (dispatcher_layout(m->dispatcher) == layout)   /* a reload may have changed the workers */
        dispatcher_handle(m->dispatcher, &items[first_worker], n - first_worker);
    maybe_stats(m, clock_ms());
    if (field_stats_next_due_ms(m->field_stats, wall_ms()) == 0)
        emit_statistics(m);
}

static int run(master_t *m)
{
    for (;;) {
        run_once(m);
        if (!m->draining)
            continue;
        dispatcher_tick(m->dispatcher, clock_ms());
        if (dispatcher_idle(m->dispatcher) && !m->n_held) {
            log_stats(m, clock_ms());
            log_info("msg=\"drained, every accepted event is committed; exiting\"");
            return 0;
        }
        if (clock_ms() >= m->drain_deadline_ms) {
            uint64_t pending = dispatcher_pending(m->dispatcher);
            log_warning("msg=\"shutdown timeout reached, stopping workers; uncommitted events "
                        "stay in the spool for the next start\" uncommitted=%llu",
                        (unsigned long long) pending);
            dispatcher_kill_all(m->dispatcher);
            free_held(m);
            log_stats(m, clock_ms());
            return 0;
        }
    }
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_error("msg=\"cannot write pidfile\" path=%s error=\"%s\"", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%d\n", (int) getpid());
    fclose(f);
    return 0;
}

static int start(const char *path, const char *pidfile, const char *level_override)
{
    char err[8192];
    eventsd_config_t *cfg = load_checked(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    log_level_t level = LOG_LVL_INFO;
    log_level_parse(level_override ? level_override : cfg->log_level, &level);
    log_set_level(level);
    log_set_ident("master");
    notify_init();
    notify_status("starting, waiting for the Salt bus");
    master_t m = { .sigfd = -1, .spool_complaint = { .interval_ms = 10000 },
                   .throttle_complaint = { .interval_ms = 30000 } };
    m.ref = config_ref_new(cfg);
    m.rules = rules_new(cfg, err, sizeof err);
    m.field_stats = field_stats_new(cfg->statistics, cfg->n_statistics, cfg->path, err,
                                    sizeof err);
    m.targets = calloc((size_t) cfg->n_workers + 1, 1);
    m.spool_targets = calloc((size_t) cfg->n_workers + 1, sizeof *m.spool_targets);
    m.held = calloc(READ_BURST, sizeof *m.held);
    int rc = 1;
    privileges_t priv;
    warn_exposed_secrets(cfg, NULL);
    if (privileges_resolve(cfg->user, cfg->group, &priv, err, sizeof err) < 0) {
        log_error("msg=\"cannot resolve user/group\" error=\"%s\"", err);
        goto out;
    }
    if (!m.rules || !m.field_stats || !m.targets || !m.spool_targets || !m.held ||
        prepare_runtime_dir(cfg->runtime_dir) < 0 || (pidfile && write_pidfile(pidfile) < 0) ||
        hand_over_dirs(cfg, &priv) < 0)
        goto out;
    m.sigfd = signals_open();
    if (priv.enabled) {   /* connect now, while we may still need root for it */
        m.bus = bus_new(&cfg->bus);
        if (m.bus)
            bus_tick(m.bus, clock_ms());
    }
    if (privileges_drop(&priv, err, sizeof err) < 0) {
        log_error("msg=\"cannot drop privileges, not running as root\" error=\"%s\"", err);
        goto out;
    }
    if (priv.enabled)
        log_info("msg=\"dropped privileges\" user=%s uid=%d gid=%d", priv.user, (int) priv.uid,
                 (int) priv.gid);
    m.spool = spool_open(&cfg->spool, spool_report, NULL, err, sizeof err);
    if (!m.spool) {
        log_error("msg=\"cannot open the spool\" error=\"%s\"", err);
        goto out;
    }
    m.dispatcher = dispatcher_new(cfg->runtime_dir, m.spool);
    if (m.dispatcher)
        dispatcher_on_emit(m.dispatcher, on_worker_emit, &m);
    if (!m.dispatcher || dispatcher_apply(m.dispatcher, m.ref, err, sizeof err) < 0) {
        log_error("msg=\"cannot start workers\" error=\"%s\"", err);
        goto out;
    }
    /* Without a user to drop to, the bus comes after the first fork: a zmq bus starts threads,
     * and a process with threads is best not forked. */
    if (!m.bus)
        m.bus = bus_new(&cfg->bus);
    open_metrics_listener(&m, NULL);
    m.last_stats_ms = clock_ms();
    m.next_stats_ms = m.last_stats_ms + (int64_t) cfg->stats_interval_s * 1000;
    log_info("msg=\"eventsd started\" version=%s config=%s bus=%s workers=%d rules=%d "
             "spool=%s sync=%s backlog=%llu",
             EVENTSD_VERSION, path, config_bus_type_name(cfg->bus.type), cfg->n_workers,
             cfg->n_rules, cfg->spool.dir, config_spool_sync_name(cfg->spool.sync),
             (unsigned long long) dispatcher_pending(m.dispatcher));
    rc = run(&m);
out:
    if (m.dispatcher && !dispatcher_idle(m.dispatcher))
        dispatcher_kill_all(m.dispatcher);
    if (m.dispatcher)
        dispatcher_update_cursors(m.dispatcher);
    dispatcher_destroy(&m.dispatcher);
    free_held(&m);
    free(m.held);
    free(m.spool_targets);
    spool_destroy(&m.spool);
    bus_destroy(&m.bus);
    rules_destroy(&m.rules);
    field_stats_destroy(&m.field_stats);
    metrics_http_destroy(&m.http);
    free(m.targets);
    free(m.items);
    figures_free(&m.figures);
    config_ref_put(&m.ref);
    if (pidfile)
        unlink(pidfile);
    if (m.sigfd >= 0)
        close(m.sigfd);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", required_argument, NULL, 'k' },
        { "explain", required_argument, NULL, 'e' },
        { "data", required_argument, NULL, 'd' },
        { "pidfile", required_argument, NULL, 'p' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = "/etc/eventsd/eventsd.conf", *pidfile = NULL, *level = NULL;
    const char *explain_tag = NULL, *explain_data = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'k': return check_config(optarg);
        case 'e': explain_tag = optarg; break;
        case 'd': explain_data = optarg; break;
        case 'p': pidfile = optarg; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("eventsd %s\n", EVENTSD_VERSION); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind < argc || (explain_data && !explain_tag)) {
        usage(stderr);
        return 64;
    }
    if (explain_tag)
        return explain(path, explain_tag, explain_data);
    return start(path, pidfile, level);
}
