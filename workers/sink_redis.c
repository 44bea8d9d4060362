/* sink_redis: placeholder until the redis sink lands. */
#include "sink.h"

#include <stdio.h>

static int redis_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    (void) cfg;
    snprintf(err, errlen, "sink 'redis' is not implemented yet");
    return -1;
}

static sink_t *redis_open(const worker_config_t *cfg, const char *master_id, char *err,
                         size_t errlen)
{
    (void) master_id;
    redis_check(cfg, err, errlen);
    return NULL;
}

static sink_result_t redis_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                      size_t *bad_index, char *err, size_t errlen)
{
    (void) self; (void) events; (void) n; (void) bad_index;
    snprintf(err, errlen, "not implemented");
    return SINK_FATAL;
}

static void redis_close(sink_t **self_p)
{
    (void) self_p;
}

const sink_ops_t sink_redis_ops = {
    .name = "redis",
    .check = redis_check,
    .open = redis_open,
    .write_batch = redis_write_batch,
    .close = redis_close,
};
