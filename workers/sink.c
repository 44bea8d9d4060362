/* sink: the table of known sinks. Adding a backend = one ops struct + one line here
 * (config.c keeps its own list of names for --check-config messages). */
#include "sink.h"

#include <string.h>

static const sink_ops_t *const sinks[] = { &sink_sqlite_ops, &sink_file_ops, &sink_mysql_ops,
                                           &sink_pgsql_ops, &sink_graphite_ops,
                                           &sink_redis_ops, &sink_trigger_ops };

const sink_ops_t *sink_lookup(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++)
        if (strcmp(sinks[i]->name, name) == 0)
            return sinks[i];
    return NULL;
}
