/* sink_graphite: placeholder until the graphite sink lands. */
#include "sink.h"

#include <stdio.h>

static int graphite_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    (void) cfg;
    snprintf(err, errlen, "sink 'graphite' is not implemented yet");
    return -1;
}

static sink_t *graphite_open(const worker_config_t *cfg, const char *master_id, char *err,
                         size_t errlen)
{
    (void) master_id;
    graphite_check(cfg, err, errlen);
    return NULL;
}

static sink_result_t graphite_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                      size_t *bad_index, char *err, size_t errlen)
{
    (void) self; (void) events; (void) n; (void) bad_index;
    snprintf(err, errlen, "not implemented");
    return SINK_FATAL;
}

static void graphite_close(sink_t **self_p)
{
    (void) self_p;
}

const sink_ops_t sink_graphite_ops = {
    .name = "graphite",
    .check = graphite_check,
    .open = graphite_open,
    .write_batch = graphite_write_batch,
    .close = graphite_close,
};
