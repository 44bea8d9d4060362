/* eventsd-counts: prints the Event Count Logger counters of one group as `id:count` lines,
 * like ECL's ecl_reader, so Munin plugins written for ecl_reader work with either.
 *
 *   eventsd-counts CONFIG -g GROUP [-i INTERVAL] [--last|--current|--both] [--no-rotate]
 *
 * The Redis connection, the intervals and the declared ids come from the redis worker of
 * CONFIG (an eventsd config) whose `group` is GROUP. As ecl_reader: --last (the default)
 * prints the last complete interval, --current the current one, --both prints "Last:",
 * those lines, "Current:", those lines; ids are the declared ones plus, when the group
 * auto-declares, those found in Redis; sorted; -i may be left out when the group has one
 * interval.
 * Unlike ecl_reader it first rotates the interval when its boundary has passed and nobody
 * rotated it yet (no event was synced since, or eventsd is stopped): the same idempotent
 * script the sink runs, so `last` is never a stale interval. --no-rotate reads only.
 *
 * Exit status: 0 printed; 1 the config, group or interval is wrong (as ecl_reader);
 * 2 usage error (as ecl_reader's argparse); 3 Redis is unreachable or failed.
 * Owns: everything it allocates, freed before exit.
 */
#include "config.h"
#include "ecl_group.h"
#include "ecl_key.h"
#include "ecl_read.h"
#include "ecl_rotate.h"
#include "redis_conn.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME "eventsd-counts"
#define VERSION "0.1.0"

enum { EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_REDIS = 3 };

typedef enum { SHOW_LAST, SHOW_CURRENT, SHOW_BOTH } show_t;

typedef struct {
    const char *config, *group, *interval;
    show_t show;
    bool rotate;
} options_t;

static void usage(FILE *out)
{
    fprintf(out,
        "usage: " NAME " CONFIG -g GROUP [-i INTERVAL] [--last|--current|--both] [--no-rotate]\n"
        "\n"
        "Prints the Event Count Logger counters of GROUP as id:count lines, like ecl_reader.\n"
        "CONFIG is an eventsd config; its redis worker with `group = GROUP` gives the Redis\n"
        "server, the intervals and the declared ids.\n"
        "\n"
        "  -g, --group GROUP        the counter group (required)\n"
        "  -i, --interval INTERVAL  the interval (\"5m\"); needed when the group has several\n"
        "      --last               counts of the last complete interval (default)\n"
        "      --current            counts of the current, incomplete interval\n"
        "      --both               \"Last:\", the last counts, \"Current:\", the current ones\n"
        "      --no-rotate          only read (by default an interval whose end passed\n"
        "                           without a rotation is rotated first, as eventsd would)\n"
        "  -h, --help               this help\n"
        "  -V, --version            the version\n"
        "\n"
        "Exit status: 0 ok, 1 config, group or interval error, 2 usage error, 3 Redis error.\n");
}

/* 0 to go on, 1 when done (help, version), -1 on a usage error (reported). */
static int parse_args(int argc, char **argv, options_t *o)
{
    enum { OPT_LAST = 256, OPT_CURRENT, OPT_BOTH, OPT_NO_ROTATE };
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' }, { "interval", required_argument, NULL, 'i' },
        { "last", no_argument, NULL, OPT_LAST }, { "current", no_argument, NULL, OPT_CURRENT },
        { "both", no_argument, NULL, OPT_BOTH }, { "no-rotate", no_argument, NULL, OPT_NO_ROTATE },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 } };
    int c, shows = 0;
    *o = (options_t){ .show = SHOW_LAST, .rotate = true };
    while ((c = getopt_long(argc, argv, "g:i:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'g': o->group = optarg; break;
        case 'i': o->interval = optarg; break;
        case OPT_LAST: o->show = SHOW_LAST; shows++; break;
        case OPT_CURRENT: o->show = SHOW_CURRENT; shows++; break;
        case OPT_BOTH: o->show = SHOW_BOTH; shows++; break;
        case OPT_NO_ROTATE: o->rotate = false; break;
        case 'h': usage(stdout); return 1;
        case 'V': printf(NAME " " VERSION "\n"); return 1;
        default: usage(stderr); return -1;
        }
    }
    const char *problem = optind + 1 < argc ? "one CONFIG only" : optind >= argc ? "CONFIG is required"
                        : !o->group ? "-g GROUP is required"
                        : shows > 1 ? "--last, --current and --both exclude each other" : NULL;
    if (problem) {
        fprintf(stderr, NAME ": %s\n", problem);
        usage(stderr);
        return -1;
    }
    o->config = argv[optind];
    return 0;
}

/* The first redis worker counting group, or NULL after saying which groups there are. */
static const worker_config_t *find_worker(const eventsd_config_t *cfg, const char *group)
{
    const worker_config_t *found = NULL;
    for (int i = 0; i < cfg->n_workers; i++) {
        const worker_config_t *w = &cfg->workers[i];
        if (!w->sink || strcmp(w->sink, "redis") != 0 || !w->group ||
            strcmp(w->group, group) != 0)
            continue;
        if (!found)
            found = w;
        else if (found->port != w->port || found->db != w->db || strcmp(found->host, w->host))
            fprintf(stderr, NAME ": warning: workers '%s' and '%s' count group '%s' in "
                    "different Redis databases; reading the one of '%s'\n", found->name,
                    w->name, group, found->name);
    }
    if (found)
        return found;
    fprintf(stderr, NAME ": group '%s' not found in %s (groups:", group, cfg->path);
    int n = 0;
    for (int i = 0; i < cfg->n_workers; i++)
        if (cfg->workers[i].sink && strcmp(cfg->workers[i].sink, "redis") == 0)
            fprintf(stderr, " %s", cfg->workers[i].group), n++;
    fprintf(stderr, "%s)\n", n ? "" : " none");
    return NULL;
}

/* The interval index to read, or -1 after saying why. */
static int pick_interval(const ecl_group_t *g, const char *name)
{
    if (name) {
        int i = ecl_group_interval(g, name);
        if (i < 0) {
            fprintf(stderr, NAME ": interval '%s' is not configured for group '%s' (intervals:",
                    name, g->name);
            for (int k = 0; k < g->n_intervals; k++)
                fprintf(stderr, " %s", g->interval_names[k]);
            fprintf(stderr, ")\n");
        }
        return i;
    }
    if (g->n_intervals == 1)
        return 0;
    fprintf(stderr, NAME ": group '%s' has several intervals; choose one with -i\n", g->name);
    return -1;
}

/* Rotates interval i if its boundary passed unrotated. A failure is only a warning: the
 * counts can still be read (a read-only Redis user, a replica). */
static void rotate_if_due(redisContext *c, const ecl_group_t *g, int i)
{
    char err[512];
    int64_t boundary = ecl_boundary((int64_t) time(NULL), g->intervals_s[i]);
    if (ecl_rotate_run(c, g, i, boundary, err, sizeof err) < 0)
        fprintf(stderr, NAME ": warning: cannot rotate (reading anyway): %s\n", err);
}

/* Prints one slot. 0, or -1 after reporting a Redis error. */
static int print_slot(redisContext *c, const ecl_group_t *g, int i, ecl_slot_t slot)
{
    ecl_row_t *rows;
    size_t n;
    char err[512];
    if (ecl_read(c, g, i, slot, &rows, &n, err, sizeof err) < 0) {
        fprintf(stderr, NAME ": %s\n", err);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        if (!rows[k].valid)
            fprintf(stderr, NAME ": warning: %s:%s:%s:%s does not hold an integer; shown as 0\n",
                    g->name, g->interval_names[i], ecl_slot_name(slot), rows[k].id);
        printf("%s:%lld\n", rows[k].id, rows[k].count);
    }
    ecl_read_free(&rows, n);
    return 0;
}

static int show(redisContext *c, const ecl_group_t *g, int i, const options_t *o)
{
    if (o->rotate)
        rotate_if_due(c, g, i);
    if (o->show == SHOW_BOTH)
        printf("Last:\n");
    if (o->show != SHOW_CURRENT && print_slot(c, g, i, ECL_LAST) < 0)
        return EXIT_REDIS;
    if (o->show == SHOW_BOTH)
        printf("Current:\n");
    if (o->show != SHOW_LAST && print_slot(c, g, i, ECL_CUR) < 0)
        return EXIT_REDIS;
    return fflush(stdout) == 0 ? 0 : EXIT_REDIS;
}

/* Everything after the options: config, group, interval, Redis. The exit status. */
static int run(const options_t *o)
{
    static char err[16384];
    eventsd_config_t *cfg = config_load(o->config, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    int rc = EXIT_CONFIG, i;
    ecl_group_t *g = NULL;
    redisContext *c = NULL;
    const worker_config_t *w = find_worker(cfg, o->group);
    if (w && !(g = ecl_group_new(w, err, sizeof err)))
        fprintf(stderr, NAME ": %s\n", err);
    if (g && (i = pick_interval(g, o->interval)) >= 0) {
        c = redis_conn_open(w->host, w->port, w->password, w->db, w->connect_timeout_ms, err,
                            sizeof err);
        if (!c)
            fprintf(stderr, NAME ": %s\n", err);
        rc = c ? show(c, g, i, o) : EXIT_REDIS;
    }
    redis_conn_close(&c);
    ecl_group_destroy(&g);
    eventsd_config_destroy(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    options_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;
    return run(&o);
}
