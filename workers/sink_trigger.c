/* sink_trigger: placeholder until the trigger sink lands (issue 7). */
#include "sink.h"

#include <stdio.h>

static int trigger_check(const worker_config_t *cfg, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s:%d: sink 'trigger' is not implemented yet", cfg->file ? cfg->file : "config",
             cfg->line);
    return -1;
}

static sink_t *trigger_open(const worker_config_t *cfg, const char *master_id, char *err,
                            size_t errlen)
{
    (void) master_id;
    trigger_check(cfg, err, errlen);
    return NULL;
}

static sink_result_t trigger_write_batch(sink_t *self, worker_event_t *const *events, size_t n,
                                         size_t *bad_index, char *err, size_t errlen)
{
    (void) self; (void) events; (void) n; (void) bad_index;
    snprintf(err, errlen, "not implemented");
    return SINK_FATAL;
}

static void trigger_close(sink_t **self_p)
{
    (void) self_p;
}

const sink_ops_t sink_trigger_ops = {
    .name = "trigger",
    .check = trigger_check,
    .open = trigger_open,
    .write_batch = trigger_write_batch,
    .close = trigger_close,
};
