/* worker: the body of one forked worker process.
 *
 * Connects to its slot's socket in the runtime directory, receives events from the master,
 * batches them by size (batch.size) and time (batch.interval_ms), writes each batch through
 * its sink in one transaction and acks only what the sink committed (or dead-lettered).
 * A priority event flushes at once, carrying the pending batch with it. A sink that asks to
 * retry gets the same batch again after an exponential backoff (100 ms .. 10 s, jittered);
 * a rejected row goes to the dead-letter file (or the log) with the database's message and the
 * rest of the batch is written again. STOP (shutdown, reload) commits everything and exits 0.
 * Owns: its sink connection, the batch, the dead-letter file.
 */
#ifndef EVENTSD_WORKER_H
#define EVENTSD_WORKER_H

#include "config.h"

/* Never returns: exits the process (0 after STOP or master EOF, 1 on a fatal sink error). */
__attribute__((noreturn))
void worker_run(const worker_config_t *cfg, const char *master_id, int max_depth,
                const char *socket_path);

#endif
