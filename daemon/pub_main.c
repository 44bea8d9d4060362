/* eventsd-pub: plays the Salt master's event publisher so that the demo, the tests and the
 * benchmark have a bus to read.
 *
 * Buses:
 *   salt-ipc  unix stream socket server (Salt 2016.3+ master_event_pub.ipc), mode 0600;
 *   salt-tcp  the same stream framing on TCP (ipc_mode: tcp);
 *   zmq       a ZeroMQ XPUB socket sending one-part messages in the 2015 or 2014 format.
 * Traffic: generated jobs (bare jid, new, one ret per minion), custom events, or the replay of
 * a capture. Every generated event carries "eventsd_n", a unique increasing number, so that
 * end-to-end tests can check exactly-once delivery.
 * Framing is done only by proto/salt_frame (the same encoders the tests use).
 */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <msgpack.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "salt_frame.h"

#define PUB_NAME            "eventsd-pub"
#define PUB_VERSION         "0.1.0"
#define EXIT_WAIT_TIMEOUT   2
#define STREAM_FLUSH_BYTES  (64 * 1024)   /* generated frames are written in batches this big */
#define REPLAY_CHUNK_MAX    4096
#define REPLAY_CHUNK_PAUSE_NS 50000       /* lets the reader see the chunks as separate reads */
#define TRAILER_KEYS        2             /* eventsd_n and _stamp, packed last in every map */

static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */

typedef enum { PUB_BUS_SALT_IPC, PUB_BUS_SALT_TCP, PUB_BUS_ZMQ } pub_bus_t;

typedef struct {
    pub_bus_t        bus;
    const char      *path;           /* salt-ipc socket; zmq: ipc://path when no endpoint */
    const char      *host;           /* salt-tcp, default 127.0.0.1 */
    long             port;           /* salt-tcp, required (0 = any free port) */
    const char      *endpoint;       /* zmq */
    salt_zmq_style_t zmq_style;
    long             jobs, minions;
    const char      *fun;
    long             return_size;    /* -1: the return is the bool true */
    double           success_ratio;
    uint64_t         seed;
    double           rate;           /* events per second, 0 = as fast as possible */
    const char      *custom_tag;
    long             count;
    const char      *replay;
    long             wait_clients;
    double           wait_timeout;   /* seconds */
    long             linger_ms;      /* -1: default for the bus */
    bool             keep_open;
    int64_t          first_n;
    /* job shapes for job-tracking tests: per job, of its M minions (in this order) */
    long             returns_first;  /* the first ones return before the new event */
    long             duplicates;     /* the first ones return twice */
    long             late;           /* these, before the silent ones, return late_ms after
                                        every job's other events were published */
    long             late_ms;
    long             silent;         /* the last ones never return */
    long             salt_missing;   /* names listed in the new event's "missing" only */
} pub_options_t;

enum {
    OPT_BUS = 256, OPT_PATH, OPT_HOST, OPT_PORT, OPT_ENDPOINT, OPT_ZMQ_STYLE, OPT_JOBS,
    OPT_MINIONS, OPT_FUN, OPT_RETURN_SIZE, OPT_SUCCESS_RATIO, OPT_SEED, OPT_RATE, OPT_CUSTOM,
    OPT_COUNT, OPT_REPLAY, OPT_WAIT_CLIENTS, OPT_WAIT_TIMEOUT, OPT_LINGER_MS, OPT_KEEP_OPEN,
    OPT_FIRST_N, OPT_RETURNS_FIRST, OPT_DUPLICATES, OPT_LATE, OPT_LATE_MS, OPT_SILENT,
    OPT_SALT_MISSING
};

/* In the order of the enum above: LONG_OPTIONS[c - OPT_BUS] names option c. */
static const struct option LONG_OPTIONS[] = {
    {"bus", required_argument, NULL, OPT_BUS},
    {"path", required_argument, NULL, OPT_PATH},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"zmq-style", required_argument, NULL, OPT_ZMQ_STYLE},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"minions", required_argument, NULL, OPT_MINIONS},
    {"fun", required_argument, NULL, OPT_FUN},
    {"return-size", required_argument, NULL, OPT_RETURN_SIZE},
    {"success-ratio", required_argument, NULL, OPT_SUCCESS_RATIO},
    {"seed", required_argument, NULL, OPT_SEED},
    {"rate", required_argument, NULL, OPT_RATE},
    {"custom", required_argument, NULL, OPT_CUSTOM},
    {"count", required_argument, NULL, OPT_COUNT},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"wait-clients", required_argument, NULL, OPT_WAIT_CLIENTS},
    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
    {"linger-ms", required_argument, NULL, OPT_LINGER_MS},
    {"keep-open", no_argument, NULL, OPT_KEEP_OPEN},
    {"first-n", required_argument, NULL, OPT_FIRST_N},
    {"returns-first", required_argument, NULL, OPT_RETURNS_FIRST},
    {"duplicates", required_argument, NULL, OPT_DUPLICATES},
    {"late", required_argument, NULL, OPT_LATE},
    {"late-ms", required_argument, NULL, OPT_LATE_MS},
    {"silent", required_argument, NULL, OPT_SILENT},
    {"salt-missing", required_argument, NULL, OPT_SALT_MISSING},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: " PUB_NAME " --bus salt-ipc --path PATH   [traffic] [serving]\n"
        "       " PUB_NAME " --bus salt-tcp --port N [--host 127.0.0.1] [traffic] [serving]\n"
        "       " PUB_NAME " --bus zmq --endpoint E [--zmq-style 2015|2014] [traffic] [serving]\n"
        "Plays the Salt master's event publisher (stream frames of Salt 2016.3+, or ZeroMQ-era\n"
        "one-part messages) for the eventsd demo, tests and benchmark.\n"
        "traffic (generated events carry \"eventsd_n\", numbered from --first-n):\n"
        "  --jobs J --minions M      J jobs: bare-jid event, salt/job/<jid>/new, M returns each\n"
        "  --fun NAME                job function (default test.ping)\n"
        "  --return-size BYTES       string return of about BYTES (default: the bool true)\n"
        "  --success-ratio R         share of successful returns, 0..1 (default 1)\n"
        "  job shapes (per job, of its M minions, in this order; default 0 each):\n"
        "  --returns-first N         the first N return before the job's new event\n"
        "  --duplicates N            the first N return twice\n"
        "  --late N --late-ms MS     N minions (before the silent ones) return MS ms after\n"
        "                            every job's other events were published\n"
        "  --silent N                the last N never return\n"
        "  --salt-missing N          the new event lists N more minions in \"missing\"\n"
        "                            (targeted, not connected); they never return\n"
        "  --seed N                  PRNG seed for failures and replay chunks (default 1)\n"
        "  --custom TAG --count N    N custom events with tag TAG (after the jobs, if any)\n"
        "  --replay FILE             replay a capture: stream .bin (salt-ipc/salt-tcp, sent in\n"
        "                            random chunks of 1..4096 bytes) or length-prefixed zmq .bin\n"
        "  --rate EVENTS_PER_SEC     pace publishing (default 0 = as fast as possible)\n"
        "  --first-n N               first eventsd_n (default 0)\n"
        "serving:\n"
        "  --wait-clients N          wait for N clients / subscriptions first (default 1)\n"
        "  --wait-timeout SEC        give up waiting after SEC seconds, exit 2 (default 30)\n"
        "  --linger-ms MS            keep serving MS after publishing (default zmq 1000,\n"
        "                            stream 0; stream buses first wait until clients read all)\n"
        "  --keep-open               keep serving until SIGTERM/SIGINT\n"
        "  -h, --help                this text;  -V, --version  print the version\n"
        "stdout at the end: sent=N bytes=B seconds=S rate=R first_n=A last_n=B\n"
        "exit: 0 done (also on SIGTERM), 1 error, 2 wait timeout, 64 bad arguments\n");
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return false;
    *out = v;
    return true;
}

static bool parse_bus(const char *s, pub_bus_t *out)
{
    if (!strcmp(s, "salt-ipc"))
        *out = PUB_BUS_SALT_IPC;
    else if (!strcmp(s, "salt-tcp"))
        *out = PUB_BUS_SALT_TCP;
    else if (!strcmp(s, "zmq"))
        *out = PUB_BUS_ZMQ;
    else
        return false;
    return true;
}

static bool parse_zmq_style(const char *s, salt_zmq_style_t *out)
{
    if (!strcmp(s, "2015"))
        *out = SALT_ZMQ_2015;
    else if (!strcmp(s, "2014"))
        *out = SALT_ZMQ_2014;
    else
        return false;
    return true;
}

/* Applies one option; returns false when its argument is invalid. */
static bool apply_option(pub_options_t *o, int c, const char *arg)
{
    long first_n;
    switch (c) {
    case OPT_BUS:           return parse_bus(arg, &o->bus);
    case OPT_PATH:          o->path = arg; return *arg != '\0';
    case OPT_HOST:          o->host = arg; return *arg != '\0';
    case OPT_PORT:          return parse_long(arg, 0, 65535, &o->port);
    case OPT_ENDPOINT:      o->endpoint = arg; return *arg != '\0';
    case OPT_ZMQ_STYLE:     return parse_zmq_style(arg, &o->zmq_style);
    case OPT_JOBS:          return parse_long(arg, 0, LONG_MAX, &o->jobs);
    case OPT_MINIONS:       return parse_long(arg, 0, 10000000, &o->minions);
    case OPT_FUN:           o->fun = arg; return *arg != '\0';
    case OPT_RETURN_SIZE:   return parse_long(arg, 0, 1L << 30, &o->return_size);
    case OPT_SUCCESS_RATIO: return parse_double(arg, 0.0, 1.0, &o->success_ratio);
    case OPT_SEED:          return parse_u64(arg, &o->seed);
    case OPT_RATE:          return parse_double(arg, 0.0, 1e9, &o->rate);
    case OPT_CUSTOM:        o->custom_tag = arg; return *arg != '\0';
    case OPT_COUNT:         return parse_long(arg, 0, LONG_MAX, &o->count);
    case OPT_REPLAY:        o->replay = arg; return *arg != '\0';
    case OPT_WAIT_CLIENTS:  return parse_long(arg, 0, 100000, &o->wait_clients);
    case OPT_WAIT_TIMEOUT:  return parse_double(arg, 0.0, 1e7, &o->wait_timeout);
    case OPT_LINGER_MS:     return parse_long(arg, 0, INT_MAX, &o->linger_ms);
    case OPT_KEEP_OPEN:     o->keep_open = true; return true;
    case OPT_RETURNS_FIRST: return parse_long(arg, 0, 10000000, &o->returns_first);
    case OPT_DUPLICATES:    return parse_long(arg, 0, 10000000, &o->duplicates);
    case OPT_LATE:          return parse_long(arg, 0, 10000000, &o->late);
    case OPT_LATE_MS:       return parse_long(arg, 0, 86400000, &o->late_ms);
    case OPT_SILENT:        return parse_long(arg, 0, 10000000, &o->silent);
    case OPT_SALT_MISSING:  return parse_long(arg, 0, 10000000, &o->salt_missing);
    case OPT_FIRST_N:
        if (!parse_long(arg, 0, LONG_MAX, &first_n))
            return false;
        o->first_n = first_n;
        return true;
    default:                return false;
    }
}

/* Cross-option checks; returns a message or NULL. */
static const char *check_options(const pub_options_t *o, bool count_given)
{
    if (o->bus == PUB_BUS_SALT_IPC && !o->path)
        return "--bus salt-ipc needs --path";
    if (o->bus == PUB_BUS_SALT_TCP && o->port < 0)
        return "--bus salt-tcp needs --port";
    if (o->bus == PUB_BUS_ZMQ && !o->endpoint && !o->path)
        return "--bus zmq needs --endpoint (or --path for ipc://PATH)";
    if (o->replay && (o->jobs > 0 || o->custom_tag))
        return "--replay cannot be combined with --jobs or --custom";
    if (count_given && !o->custom_tag)
        return "--count needs --custom";
    if (o->jobs > 0 && o->minions < 1)
        return "--jobs needs --minions of at least 1";
    if (o->late + o->silent > o->minions || o->returns_first > o->minions - o->late - o->silent ||
        o->duplicates > o->minions - o->late - o->silent)
        return "--returns-first/--duplicates, --late and --silent must fit in --minions "
               "(first + late + silent <= M, duplicates + late + silent <= M)";
    return NULL;
}

/* Returns -1 to go on, or the exit status (0 for --help/--version, EX_USAGE). */
static int parse_options(int argc, char **argv, pub_options_t *o)
{
    *o = (pub_options_t){
        .bus = PUB_BUS_SALT_IPC, .host = "127.0.0.1", .port = -1, .zmq_style = SALT_ZMQ_2015,
        .minions = 1, .fun = "test.ping", .return_size = -1, .success_ratio = 1.0, .seed = 1,
        .count = 1, .wait_clients = 1, .wait_timeout = 30.0, .linger_ms = -1,
    };
    bool count_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "hV", LONG_OPTIONS, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf(PUB_NAME " " PUB_VERSION "\n");
            return 0;
        }
        if (c == '?') {
            usage(stderr);
            return EX_USAGE;
        }
        count_given |= (c == OPT_COUNT);
        if (!apply_option(o, c, optarg)) {
            fprintf(stderr, PUB_NAME ": invalid value for --%s: '%s'\n",
                    LONG_OPTIONS[c - OPT_BUS].name, optarg);
            usage(stderr);
            return EX_USAGE;
        }
    }
    const char *problem = optind < argc ? "unexpected argument" : check_options(o, count_given);
    if (problem) {
        fprintf(stderr, PUB_NAME ": %s%s%s\n", problem, optind < argc ? ": " : "",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return EX_USAGE;
    }
    if (o->linger_ms < 0)
        o->linger_ms = o->bus == PUB_BUS_ZMQ ? 1000 : 0;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Time                                                                                        */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps until the CLOCK_MONOTONIC instant `ns`, or until a stop signal. */
static void sleep_until_ns(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
    while (!g_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ------------------------------------------------------------------------------------------ */
/* The bus: a stream server with its clients, or a ZeroMQ XPUB socket                          */

typedef struct {
    pub_bus_t      kind;
    char           name[320];        /* path, host:port or endpoint, for messages */
    int            listen_fd;
    char          *unix_path;        /* unlinked on close */
    int           *clients;
    size_t         n_clients, cap_clients;
    struct pollfd *pfds;             /* cap_clients + 1 */
    zsock_t       *xpub;
    long           subscribers;      /* subscriptions seen minus unsubscriptions */
} bus_t;

static int bus_listen_unix(bus_t *bus, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, PUB_NAME ": unix socket path too long (max %zu bytes): %s\n",
                sizeof sa.sun_path - 1, path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, PUB_NAME ": %s exists and is not a socket; not removing it\n", path);
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        fprintf(stderr, PUB_NAME ": cannot remove stale socket %s: %s\n", path, strerror(errno));
        return -1;
    }
    bus->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (bus->listen_fd < 0) {
        fprintf(stderr, PUB_NAME ": socket(AF_UNIX) for %s: %s\n", path, strerror(errno));
        return -1;
    }
    mode_t old_mask = umask(0177);   /* what the Salt master does: owner only */
    int rc = bind(bus->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old_mask);
    if (rc != 0 || chmod(path, 0600) != 0 || listen(bus->listen_fd, 128) != 0) {
        fprintf(stderr, PUB_NAME ": cannot listen on unix socket %s: %s\n", path, strerror(errno));
        return -1;
    }
    bus->unix_path = strdup(path);
    snprintf(bus->name, sizeof bus->name, "%s", path);
    return 0;
}

static int bind_tcp_address(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
        return fd;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int bus_listen_tcp(bus_t *bus, const char *host, long port)
{
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%ld", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res;
    int gai = getaddrinfo(host, port_text, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, PUB_NAME ": cannot resolve %s: %s\n", host, gai_strerror(gai));
        return -1;
    }
    bus->listen_fd = -1;
    for (struct addrinfo *ai = res; ai && bus->listen_fd < 0; ai = ai->ai_next)
        bus->listen_fd = bind_tcp_address(ai);
    int saved = errno;
    freeaddrinfo(res);
    if (bus->listen_fd < 0) {
        fprintf(stderr, PUB_NAME ": cannot listen on tcp %s:%ld: %s\n", host, port,
                strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char num[64], serv[16];   /* numeric forms only */
    if (getsockname(bus->listen_fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, num, sizeof num, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(bus->name, sizeof bus->name, "%s:%s", num, serv);
    else
        snprintf(bus->name, sizeof bus->name, "%s:%ld", host, port);
    return 0;
}

static int bus_open_zmq(bus_t *bus, const pub_options_t *o)
{
    if (o->endpoint)
        snprintf(bus->name, sizeof bus->name, "%s", o->endpoint);
    else
        snprintf(bus->name, sizeof bus->name, "ipc://%s", o->path);
    bus->xpub = zsock_new(ZMQ_XPUB);
    if (!bus->xpub) {
        fprintf(stderr, PUB_NAME ": cannot create a ZeroMQ socket: %s\n", zmq_strerror(errno));
        return -1;
    }
    zsock_set_xpub_verboser(bus->xpub, 1);   /* see every (un)subscription: count clients */
    zsock_set_xpub_nodrop(bus->xpub, 1);     /* block at the HWM instead of dropping */
    zsock_set_sndhwm(bus->xpub, 10000);
    zsock_set_sndtimeo(bus->xpub, 100);      /* so that a blocked send notices SIGTERM */
    mode_t old_mask = umask(0177);
    int rc = zsock_bind(bus->xpub, "%s", bus->name);
    int saved = zmq_errno();
    umask(old_mask);
    if (rc < 0) {
        fprintf(stderr, PUB_NAME ": cannot bind ZeroMQ endpoint %s: %s\n", bus->name,
                zmq_strerror(saved));
        return -1;
    }
    if (!strncmp(bus->name, "ipc://", 6))
        bus->unix_path = strdup(bus->name + 6);
    return 0;
}

static const char *bus_kind_name(pub_bus_t kind)
{
    return kind == PUB_BUS_ZMQ ? "zmq" : kind == PUB_BUS_SALT_TCP ? "salt-tcp" : "salt-ipc";
}

static int bus_open(bus_t *bus, const pub_options_t *o)
{
    *bus = (bus_t){ .kind = o->bus, .listen_fd = -1 };
    int rc;
    if (o->bus == PUB_BUS_SALT_IPC)
        rc = bus_listen_unix(bus, o->path);
    else if (o->bus == PUB_BUS_SALT_TCP)
        rc = bus_listen_tcp(bus, o->host, o->port);
    else
        rc = bus_open_zmq(bus, o);
    if (rc == 0)
        fprintf(stderr, PUB_NAME ": listening bus=%s address=%s\n", bus_kind_name(bus->kind),
                bus->name);
    return rc;
}

static void bus_close(bus_t *bus)
{
    for (size_t i = 0; i < bus->n_clients; i++)
        close(bus->clients[i]);
    if (bus->listen_fd >= 0)
        close(bus->listen_fd);
    zsock_destroy(&bus->xpub);
    if (bus->unix_path)
        unlink(bus->unix_path);
    free(bus->unix_path);
    free(bus->clients);
    free(bus->pfds);
}

static long bus_client_count(const bus_t *bus)
{
    return bus->kind == PUB_BUS_ZMQ ? bus->subscribers : (long)bus->n_clients;
}

static void bus_add_client(bus_t *bus, int fd)
{
    if (bus->n_clients == bus->cap_clients) {
        size_t cap = bus->cap_clients ? 2 * bus->cap_clients : 8;
        int *clients = realloc(bus->clients, cap * sizeof *clients);
        struct pollfd *pfds = realloc(bus->pfds, (cap + 1) * sizeof *pfds);
        if (clients)
            bus->clients = clients;
        if (pfds)
            bus->pfds = pfds;
        if (!clients || !pfds) {
            fprintf(stderr, PUB_NAME ": out of memory: refusing a client\n");
            close(fd);
            return;
        }
        bus->cap_clients = cap;
    }
    bus->clients[bus->n_clients++] = fd;
}

/* Closes the clients marked -1 and packs the array. */
static void bus_compact_clients(bus_t *bus)
{
    size_t kept = 0;
    for (size_t i = 0; i < bus->n_clients; i++)
        if (bus->clients[i] >= 0)
            bus->clients[kept++] = bus->clients[i];
    bus->n_clients = kept;
}

static void bus_drop_client(bus_t *bus, size_t i, const char *why)
{
    fprintf(stderr, PUB_NAME ": client left (%s)\n", why);
    close(bus->clients[i]);
    bus->clients[i] = -1;
}

static void bus_accept_clients(bus_t *bus)
{
    int fd;
    int one = 1;
    while ((fd = accept4(bus->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (bus->kind == PUB_BUS_SALT_TCP)   /* replay chunks leave as separate segments */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bus_add_client(bus, fd);
        fprintf(stderr, PUB_NAME ": client connected; %zu connected\n", bus->n_clients);
    }
}

/* Reads and discards what a client sent; returns false when it is gone (EOF or error). */
static bool client_still_there(int fd)
{
    char junk[4096];
    for (;;) {
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* Stream: accepts new clients and notices clients that left; waits at most timeout_ms. */
static void stream_service(bus_t *bus, int timeout_ms)
{
    if (!bus->pfds && !(bus->pfds = malloc(sizeof *bus->pfds)))
        return;
    bus->pfds[0] = (struct pollfd){ .fd = bus->listen_fd, .events = POLLIN };
    for (size_t i = 0; i < bus->n_clients; i++)
        bus->pfds[i + 1] = (struct pollfd){ .fd = bus->clients[i], .events = POLLIN };
    size_t n_clients = bus->n_clients;
    if (poll(bus->pfds, n_clients + 1, timeout_ms) <= 0)
        return;
    for (size_t i = 0; i < n_clients; i++)
        if (bus->pfds[i + 1].revents && !client_still_there(bus->clients[i]))
            bus_drop_client(bus, i, "EOF");
    bus_compact_clients(bus);
    if (bus->pfds[0].revents & POLLIN)
        bus_accept_clients(bus);
}

/* ZeroMQ: counts the subscription messages the XPUB received; waits at most timeout_ms. */
static void zmq_service(bus_t *bus, int timeout_ms)
{
    void *handle = zsock_resolve(bus->xpub);
    zmq_pollitem_t item = { .socket = handle, .events = ZMQ_POLLIN };
    if (timeout_ms > 0 && zmq_poll(&item, 1, timeout_ms) <= 0)
        return;
    unsigned char msg[256];
    int n;
    while ((n = zmq_recv(handle, msg, sizeof msg, ZMQ_DONTWAIT)) >= 0) {
        if (n >= 1 && msg[0] == 1)
            bus->subscribers++;
        else if (n >= 1 && msg[0] == 0 && bus->subscribers > 0)
            bus->subscribers--;
    }
}

static void bus_service(bus_t *bus, int timeout_ms)
{
    if (bus->kind == PUB_BUS_ZMQ)
        zmq_service(bus, timeout_ms);
    else
        stream_service(bus, timeout_ms);
}

/* Serves the bus (accepts, notices EOF) for `ms` milliseconds or until a stop signal. */
static void bus_serve_for(bus_t *bus, int64_t ms)
{
    int64_t deadline = mono_ns() + ms * 1000000;
    for (int64_t left; !g_stop && (left = deadline - mono_ns()) > 0;)
        bus_service(bus, (int)(left / 1000000 < 200 ? left / 1000000 + 1 : 200));
}

/* Returns 0 when enough clients are there (or on a stop signal), EXIT_WAIT_TIMEOUT else. */
static int bus_wait_clients(bus_t *bus, long wanted, double timeout_s)
{
    int64_t deadline = mono_ns() + (int64_t)(timeout_s * 1e9);
    bus_service(bus, 0);
    while (!g_stop && bus_client_count(bus) < wanted) {
        int64_t left = deadline - mono_ns();
        if (left <= 0) {
            fprintf(stderr, PUB_NAME ": timed out after %g s waiting for %ld %s on %s "
                    "(%ld there)\n", timeout_s, wanted,
                    bus->kind == PUB_BUS_ZMQ ? "subscription(s)" : "client(s)", bus->name,
                    bus_client_count(bus));
            return EXIT_WAIT_TIMEOUT;
        }
        bus_service(bus, left / 1000000 < 200 ? (int)(left / 1000000) + 1 : 200);
    }
    return 0;
}

/* Writes all bytes to one client, blocking in poll. 0 done, -1 client error (errno),
 * 1 abandoned because of a stop signal. */
static int client_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0) {
            p += w;
            len -= (size_t)w;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (g_stop)
                return 1;
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, 100);
        } else {
            return -1;
        }
    }
    return 0;
}

static int stream_write(bus_t *bus, const uint8_t *data, size_t len)
{
    int result = 0;
    for (size_t i = 0; i < bus->n_clients; i++) {
        int rc = client_write_all(bus->clients[i], data, len);
        if (rc < 0)
            bus_drop_client(bus, i, strerror(errno));
        else if (rc > 0)
            result = 1;
    }
    bus_compact_clients(bus);
    return result;
}

/* One ZeroMQ message. 0 sent, 1 abandoned (stop signal), -1 error. */
static int zmq_write(bus_t *bus, const uint8_t *data, size_t len)
{
    void *handle = zsock_resolve(bus->xpub);
    while (zmq_send(handle, data, len, 0) < 0) {
        int err = zmq_errno();
        if (err != EAGAIN && err != EINTR) {
            fprintf(stderr, PUB_NAME ": send on %s: %s\n", bus->name, zmq_strerror(err));
            return -1;
        }
        if (g_stop)
            return 1;
        zmq_service(bus, 0);
    }
    return 0;
}

/* Publishes bytes: to every stream client, or as one ZeroMQ message.
 * 0 done, 1 abandoned because of a stop signal, -1 fatal error. */
static int bus_write(bus_t *bus, const uint8_t *data, size_t len)
{
    return bus->kind == PUB_BUS_ZMQ ? zmq_write(bus, data, len) : stream_write(bus, data, len);
}

/* Stream: clients that have not read everything written to them yet (SIOCOUTQ: unix, data
 * still queued at the reader, counted with kernel overhead; TCP, not yet acknowledged). */
static size_t stream_clients_behind(const bus_t *bus)
{
    size_t behind = 0;
    for (size_t i = 0; i < bus->n_clients; i++) {
        int queued = 0;
        if (ioctl(bus->clients[i], SIOCOUTQ, &queued) == 0 && queued > 0)
            behind++;
    }
    return behind;
}

/* Stream: keeps serving until the clients have read everything (bounded by timeout_s). */
static void stream_drain(bus_t *bus, double timeout_s)
{
    int64_t deadline = mono_ns() + (int64_t)(timeout_s * 1e9);
    size_t behind;
    while (!g_stop && (behind = stream_clients_behind(bus)) > 0) {
        if (mono_ns() >= deadline) {
            fprintf(stderr, PUB_NAME ": %zu client(s) of %s still have unread data after %g s\n",
                    behind, bus->name, timeout_s);
            return;
        }
        bus_service(bus, 10);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The publisher: builds payloads, frames them, paces, counts                                 */

typedef struct {
    const pub_options_t *opt;
    bus_t          *bus;
    msgpack_sbuffer payload;          /* msgpack of the event being built */
    msgpack_packer  pk;               /* packs into payload */
    msgpack_sbuffer out;              /* stream: frames not yet written; zmq: one message */
    uint64_t        sent, bytes;      /* delivered to the bus */
    uint64_t        pending_events, pending_bytes;
    uint64_t        index;            /* events published or pending (pacing schedule) */
    int64_t         next_n;           /* eventsd_n of the next generated event */
    int64_t         start_ns, end_ns, progress_ns, service_ns;
    uint64_t        rng;
    int64_t         last_jid_us;
    int64_t         stamp_sec;        /* cache of the formatted date and time of _stamp */
    char            stamp_prefix[32];
    bool            failed;
} pub_t;

static void pub_init(pub_t *p, const pub_options_t *opt, bus_t *bus)
{
    *p = (pub_t){ .opt = opt, .bus = bus, .next_n = opt->first_n, .stamp_sec = -1,
                  .rng = opt->seed };
    msgpack_sbuffer_init(&p->payload);
    msgpack_sbuffer_init(&p->out);
    msgpack_packer_init(&p->pk, &p->payload, msgpack_sbuffer_write);
    p->start_ns = p->end_ns = p->progress_ns = p->service_ns = mono_ns();
}

static void pub_fini(pub_t *p)
{
    msgpack_sbuffer_destroy(&p->payload);
    msgpack_sbuffer_destroy(&p->out);
}

static bool pub_running(const pub_t *p)
{
    return !g_stop && !p->failed;
}

/* splitmix64: small, fast and deterministic for a given --seed. */
static uint64_t pub_random(pub_t *p)
{
    uint64_t z = (p->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double pub_random_unit(pub_t *p)
{
    return (double)(pub_random(p) >> 11) / 9007199254740992.0;   /* [0, 1) */
}

/* Between events: every 10 ms serve the bus (accept clients, notice EOF, count ZeroMQ
 * subscriptions), every second print progress. */
static void pub_tick(pub_t *p)
{
    int64_t now = mono_ns();
    if (now - p->service_ns >= 10000000) {
        bus_service(p->bus, 0);
        p->service_ns = now;
    }
    if (now - p->progress_ns < 1000000000)
        return;
    p->progress_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    fprintf(stderr, "sent=%" PRIu64 " bytes=%" PRIu64 " rate=%.1f\n", p->sent, p->bytes,
            secs > 0 ? (double)p->sent / secs : 0.0);
}

/* Stream: writes the batched frames. */
static void pub_flush(pub_t *p)
{
    if (p->out.size > 0) {
        int rc = bus_write(p->bus, (const uint8_t *)p->out.data, p->out.size);
        if (rc == 0) {
            p->sent += p->pending_events;
            p->bytes += p->pending_bytes;
        }
        p->failed |= rc < 0;
    }
    msgpack_sbuffer_clear(&p->out);
    p->pending_events = p->pending_bytes = 0;
}

/* Waits for the slot of the next event on the absolute schedule start + index / rate. */
static void pub_pace(pub_t *p)
{
    if (p->opt->rate > 0) {
        int64_t due = p->start_ns + (int64_t)((double)p->index * 1e9 / p->opt->rate);
        if (mono_ns() < due) {
            pub_flush(p);
            sleep_until_ns(due);
        }
    }
    pub_tick(p);
}

/* Paces, then starts a new payload. Returns false when publishing must stop. */
static bool pub_begin(pub_t *p)
{
    if (!pub_running(p))
        return false;
    pub_pace(p);
    msgpack_sbuffer_clear(&p->payload);
    return pub_running(p);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pk_key_str(msgpack_packer *pk, const char *key, const char *value)
{
    pk_str(pk, key);
    pk_str(pk, value);
}

/* Naive UTC ISO-8601 the way Python's isoformat() writes it: no fraction when usec is 0. */
static void pub_stamp(pub_t *p, char *buf, size_t len)
{
    int64_t us = real_us();
    int64_t sec = us / 1000000;
    int usec = (int)(us % 1000000);
    if (sec != p->stamp_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(p->stamp_prefix, sizeof p->stamp_prefix, "%Y-%m-%dT%H:%M:%S", &tm);
        p->stamp_sec = sec;
    }
    if (usec)
        snprintf(buf, len, "%s.%06d", p->stamp_prefix, usec);
    else
        snprintf(buf, len, "%s", p->stamp_prefix);
}

/* The last TRAILER_KEYS entries of every generated map: eventsd_n, then _stamp. */
static void pub_pack_trailer(pub_t *p)
{
    char stamp[48];
    pub_stamp(p, stamp, sizeof stamp);
    pk_str(&p->pk, "eventsd_n");
    msgpack_pack_int64(&p->pk, p->next_n);
    pk_key_str(&p->pk, "_stamp", stamp);
}

/* Frames the payload with `tag` and publishes it (stream: batched). */
static void pub_emit(pub_t *p, const char *tag)
{
    size_t before = p->out.size;
    int rc = p->bus->kind == PUB_BUS_ZMQ
        ? salt_frame_encode_zmq(&p->out, p->opt->zmq_style, tag, p->payload.data,
                                p->payload.size)
        : salt_frame_encode_stream(&p->out, tag, p->payload.data, p->payload.size);
    if (rc != 0) {
        fprintf(stderr, PUB_NAME ": cannot encode the event with tag %s\n", tag);
        p->failed = true;
        return;
    }
    p->pending_events++;
    p->pending_bytes += p->out.size - before;
    p->index++;
    p->next_n++;
    if (p->bus->kind == PUB_BUS_ZMQ || p->out.size >= STREAM_FLUSH_BYTES)
        pub_flush(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Traffic: jobs                                                                               */

typedef struct {
    char  **minions;         /* minion-0000 ... */
    long    n_minions;
    char  **absent;          /* absent-0000 ...: Salt's "missing" list (--salt-missing) */
    long    n_absent;
    char   *return_text;     /* NULL: the return is true */
    char    jid[24];
} job_t;

/* Names "<prefix>-0000" ..., NULL on allocation failure. */
static char **make_names(const char *prefix, long n)
{
    char **names = calloc((size_t) n + 1, sizeof *names);
    for (long i = 0; names && i < n; i++)
        if (asprintf(&names[i], "%s-%04ld", prefix, i) < 0) {
            while (i-- > 0)
                free(names[i]);
            free(names);
            return NULL;
        }
    return names;
}

static char *make_return_text(long size)
{
    static const char line[] = "eventsd-pub synthetic return line, padding to the wanted size";
    char *text = malloc((size_t)size + 1);
    if (!text)
        return NULL;
    size_t line_len = sizeof line - 1;
    for (long i = 0; i < size; i++) {
        size_t col = (size_t)i % (line_len + 1);
        text[i] = col == line_len ? '\n' : line[col];
    }
    text[size] = '\0';
    return text;
}

static int job_init(job_t *job, const pub_options_t *o)
{
    *job = (job_t){ .n_minions = o->minions, .n_absent = o->salt_missing };
    job->minions = make_names("minion", o->minions);
    job->absent = make_names("absent", o->salt_missing);
    if (!job->minions || !job->absent)
        return -1;
    if (o->return_size >= 0 && !(job->return_text = make_return_text(o->return_size)))
        return -1;
    return 0;
}

static void free_names(char **names, long n)
{
    for (long i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static void job_fini(job_t *job)
{
    free_names(job->minions, job->n_minions);
    free_names(job->absent, job->n_absent);
    free(job->return_text);
}

/* 20 digits %Y%m%d%H%M%S%f of the current UTC time, strictly increasing within the run. */
static void pub_next_jid(pub_t *p, char jid[24])
{
    int64_t us = real_us();
    if (us <= p->last_jid_us)
        us = p->last_jid_us + 1;
    p->last_jid_us = us;
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(jid, 24, "%Y%m%d%H%M%S", &tm);
    snprintf(jid + n, 24 - n, "%06d", (int)(us % 1000000));
}

static void pk_names(msgpack_packer *pk, char *const *names, long n)
{
    msgpack_pack_array(pk, (size_t)n);
    for (long i = 0; i < n; i++)
        pk_str(pk, names[i]);
}

static void pk_minion_list(msgpack_packer *pk, const job_t *job)
{
    pk_names(pk, job->minions, job->n_minions);
}

/* Tag <jid>: {minions, eventsd_n, _stamp} */
static void publish_bare_jid(pub_t *p, const job_t *job)
{
    if (!pub_begin(p))
        return;
    msgpack_pack_map(&p->pk, 1 + TRAILER_KEYS);
    pk_str(&p->pk, "minions");
    pk_minion_list(&p->pk, job);
    pub_pack_trailer(p);
    pub_emit(p, job->jid);
}

/* Tag salt/job/<jid>/new */
static void publish_job_new(pub_t *p, const job_t *job)
{
    char tag[64];
    if (!pub_begin(p))
        return;
    msgpack_packer *pk = &p->pk;
    msgpack_pack_map(pk, 8 + TRAILER_KEYS);
    pk_key_str(pk, "jid", job->jid);
    pk_key_str(pk, "tgt_type", "glob");
    pk_key_str(pk, "tgt", "*");
    pk_key_str(pk, "user", "root");
    pk_key_str(pk, "fun", p->opt->fun);
    pk_str(pk, "arg");
    msgpack_pack_array(pk, 0);
    pk_str(pk, "minions");
    pk_minion_list(pk, job);
    pk_str(pk, "missing");
    pk_names(pk, job->absent, job->n_absent);
    pub_pack_trailer(p);
    snprintf(tag, sizeof tag, "salt/job/%s/new", job->jid);
    pub_emit(p, tag);
}

/* Tag salt/job/<jid>/ret/<minion> */
static void publish_job_ret(pub_t *p, const job_t *job, const char *minion)
{
    if (!pub_begin(p))
        return;
    bool success = p->opt->success_ratio >= 1.0 || pub_random_unit(p) < p->opt->success_ratio;
    msgpack_packer *pk = &p->pk;
    msgpack_pack_map(pk, 9 + TRAILER_KEYS);
    pk_key_str(pk, "cmd", "_return");
    pk_key_str(pk, "id", minion);
    pk_str(pk, "success");
    success ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pk_str(pk, "return");
    if (job->return_text)
        pk_str(pk, job->return_text);
    else
        success ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pk_str(pk, "retcode");
    msgpack_pack_int(pk, success ? 0 : 1);
    pk_key_str(pk, "jid", job->jid);
    pk_key_str(pk, "fun", p->opt->fun);
    pk_str(pk, "fun_args");
    msgpack_pack_array(pk, 0);
    pk_key_str(pk, "user", "root");
    pub_pack_trailer(p);
    char *tag;
    if (asprintf(&tag, "salt/job/%s/ret/%s", job->jid, minion) < 0) {
        p->failed = true;
        return;
    }
    pub_emit(p, tag);
    free(tag);
}

/* One job in the shape the options ask for; the late minions are left for later. */
static void publish_one_job(pub_t *p, job_t *job)
{
    const pub_options_t *o = p->opt;
    long answering = job->n_minions - o->late - o->silent;
    pub_next_jid(p, job->jid);
    for (long m = 0; m < o->returns_first && pub_running(p); m++)
        publish_job_ret(p, job, job->minions[m]);
    publish_bare_jid(p, job);
    publish_job_new(p, job);
    for (long m = o->returns_first; m < answering && pub_running(p); m++)
        publish_job_ret(p, job, job->minions[m]);
    for (long m = 0; m < o->duplicates && pub_running(p); m++)
        publish_job_ret(p, job, job->minions[m]);
}

static void publish_jobs(pub_t *p)
{
    const pub_options_t *o = p->opt;
    job_t job;
    char (*late_jids)[24] = o->late ? calloc((size_t) o->jobs + 1, sizeof *late_jids) : NULL;
    if (job_init(&job, o) != 0 || (o->late && !late_jids)) {
        fprintf(stderr, PUB_NAME ": out of memory preparing %ld minions\n", o->minions);
        p->failed = true;
        job_fini(&job);
        free(late_jids);
        return;
    }
    for (long j = 0; j < o->jobs && pub_running(p); j++) {
        publish_one_job(p, &job);
        if (late_jids)
            memcpy(late_jids[j], job.jid, sizeof job.jid);
    }
    if (late_jids) {
        pub_flush(p);
        sleep_until_ns(mono_ns() + (int64_t) o->late_ms * 1000000);
        long first_late = job.n_minions - o->late - o->silent;
        for (long j = 0; j < o->jobs && pub_running(p); j++) {
            memcpy(job.jid, late_jids[j], sizeof job.jid);
            for (long m = first_late; m < first_late + o->late && pub_running(p); m++)
                publish_job_ret(p, &job, job.minions[m]);
        }
    }
    free(late_jids);
    job_fini(&job);
}

/* ------------------------------------------------------------------------------------------ */
/* Traffic: custom events (event.send / fire_master)                                           */

static void publish_custom(pub_t *p)
{
    const char *tag = p->opt->custom_tag;
    for (long i = 0; i < p->opt->count && pub_begin(p); i++) {
        msgpack_packer *pk = &p->pk;
        msgpack_pack_map(pk, 5 + TRAILER_KEYS);
        pk_key_str(pk, "id", PUB_NAME);
        pk_key_str(pk, "cmd", "_minion_event");
        pk_str(pk, "pretag");
        msgpack_pack_nil(pk);
        pk_str(pk, "data");
        msgpack_pack_map(pk, 1);
        pk_str(pk, "n");
        msgpack_pack_long(pk, i);
        pk_key_str(pk, "tag", tag);
        pub_pack_trailer(p);
        pub_emit(p, tag);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Traffic: replay of a capture                                                                */

static int read_whole_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, PUB_NAME ": cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        uint8_t *bigger = n == cap ? realloc(buf, cap *= 2) : buf;
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    int failed = !buf || ferror(f);
    if (failed)
        fprintf(stderr, PUB_NAME ": cannot read %s: %s\n", path,
                buf ? strerror(errno) : "out of memory");
    fclose(f);
    if (failed) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Offsets where the top-level msgpack objects (stream frames) of a capture end. */
static size_t stream_frame_ends(const uint8_t *data, size_t len, size_t **ends_out)
{
    size_t n = 0, cap = 64, off = 0;
    size_t *ends = malloc(cap * sizeof *ends);
    msgpack_unpacked obj;
    msgpack_unpacked_init(&obj);
    while (ends && off < len &&
           msgpack_unpack_next(&obj, (const char *)data, len, &off) == MSGPACK_UNPACK_SUCCESS) {
        size_t *bigger = n == cap ? realloc(ends, (cap *= 2) * sizeof *ends) : ends;
        if (!bigger)
            free(ends);
        if ((ends = bigger))
            ends[n++] = off;
    }
    msgpack_unpacked_destroy(&obj);
    if (ends && n > 0 && ends[n - 1] < len)
        fprintf(stderr, PUB_NAME ": replay: %zu bytes after the last complete frame are sent "
                "as they are\n", len - ends[n - 1]);
    *ends_out = ends;
    return ends ? n : 0;
}

/* Sends data[*pos, end) in chunks of random size 1..REPLAY_CHUNK_MAX, pausing briefly after
 * each so that a reader gets split reads rather than one coalesced buffer. */
static void replay_chunks(pub_t *p, const uint8_t *data, size_t *pos, size_t end)
{
    while (*pos < end && pub_running(p)) {
        size_t chunk = 1 + (size_t)(pub_random(p) % REPLAY_CHUNK_MAX);
        if (chunk > end - *pos)
            chunk = end - *pos;
        int rc = bus_write(p->bus, data + *pos, chunk);
        p->failed |= rc < 0;
        if (rc != 0)
            return;
        *pos += chunk;
        p->bytes += chunk;
        pub_tick(p);
        sleep_until_ns(mono_ns() + REPLAY_CHUNK_PAUSE_NS);
    }
}

/* Stream capture: with --rate, frame by frame (chunks end at frame boundaries); without,
 * the whole file in chunks that also straddle frames. */
static void replay_stream(pub_t *p, const uint8_t *data, size_t len)
{
    size_t *ends, pos = 0;
    size_t n = stream_frame_ends(data, len, &ends);
    for (size_t i = 0; p->opt->rate > 0 && i < n && pub_running(p); i++, p->index++) {
        pub_pace(p);
        replay_chunks(p, data, &pos, ends[i]);
        p->sent += pos == ends[i];
    }
    replay_chunks(p, data, &pos, len);   /* everything (rate 0), or the unparsed tail */
    for (size_t i = p->sent; i < n && ends[i] <= pos; i++)
        p->sent++;
    free(ends);
}

static void replay_zmq(pub_t *p, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && pub_running(p)) {
        if (len - off < 4) {
            fprintf(stderr, PUB_NAME ": replay: %zu stray bytes at the end\n", len - off);
            return;
        }
        size_t n = (size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
                   (size_t)data[off + 2] << 8 | data[off + 3];
        if (n > len - off - 4) {
            fprintf(stderr, PUB_NAME ": replay: record at offset %zu is truncated\n", off);
            return;
        }
        pub_pace(p);
        int rc = bus_write(p->bus, data + off + 4, n);
        p->failed |= rc < 0;
        if (rc != 0)
            return;
        p->sent++;
        p->index++;
        p->bytes += n;
        off += 4 + n;
    }
}

/* ------------------------------------------------------------------------------------------ */

static void publish_all(pub_t *p, const uint8_t *replay, size_t replay_len)
{
    p->start_ns = p->progress_ns = p->service_ns = mono_ns();
    if (p->opt->replay && p->bus->kind == PUB_BUS_ZMQ)
        replay_zmq(p, replay, replay_len);
    else if (p->opt->replay)
        replay_stream(p, replay, replay_len);
    if (p->opt->jobs > 0)
        publish_jobs(p);
    if (p->opt->custom_tag)
        publish_custom(p);
    pub_flush(p);
    p->end_ns = mono_ns();
}

static void print_summary(const pub_t *p)
{
    double secs = (double)(p->end_ns - p->start_ns) / 1e9;
    printf("sent=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f rate=%.1f first_n=%" PRId64
           " last_n=%" PRId64 "\n", p->sent, p->bytes, secs,
           secs > 0 ? (double)p->sent / secs : 0.0, p->opt->first_n,
           p->opt->first_n + (int64_t)p->sent - 1);
    fflush(stdout);
}

/* After publishing: let the bytes leave, linger, and with --keep-open serve until a signal. */
static void finish_serving(bus_t *bus, const pub_options_t *o)
{
    if (bus->kind != PUB_BUS_ZMQ)
        stream_drain(bus, o->wait_timeout);
    bus_serve_for(bus, o->linger_ms);
    while (o->keep_open && !g_stop)
        bus_service(bus, 500);
}

static void install_signal_handlers(void)
{
    struct sigaction sa = { .sa_handler = on_stop_signal };   /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    pub_options_t opt;
    int status = parse_options(argc, argv, &opt);
    if (status >= 0)
        return status;
    uint8_t *replay = NULL;
    size_t replay_len = 0;
    if (opt.replay && read_whole_file(opt.replay, &replay, &replay_len) != 0)
        return 1;
    zsys_handler_set(NULL);   /* czmq must not take SIGINT/SIGTERM */
    install_signal_handlers();

    bus_t bus;
    if (bus_open(&bus, &opt) != 0) {
        bus_close(&bus);
        free(replay);
        return 1;
    }
    pub_t pub;
    pub_init(&pub, &opt, &bus);
    status = bus_wait_clients(&bus, opt.wait_clients, opt.wait_timeout);
    if (status == 0 && !g_stop) {
        publish_all(&pub, replay, replay_len);
        status = pub.failed ? 1 : 0;
        if (!pub.failed)
            finish_serving(&bus, &opt);
    }
    print_summary(&pub);
    pub_fini(&pub);
    bus_close(&bus);
    free(replay);
    return status;
}
