/*
 * statesync.h - makes the state file durable without blocking the event
 * loop.
 *
 * state_save() writes the new file and renames it into place: page-cache
 * work of microseconds, done on the loop before a change is announced, so
 * a restarted daemon (crash, kill -9, upgrade) always reads what clients
 * were told.  The fsyncs that make it survive a power loss can take
 * seconds on a busy disk (an ext4 journal commit waits for other files'
 * data), and a failover is the worst moment to stop answering for that.
 * They run here, on one thread of their own.  A power loss before they
 * finish can lose the last change, but it also ends every local client
 * that saw it: pgbeacond is a sidecar.
 */
#ifndef PGB_STATESYNC_H
#define PGB_STATESYNC_H

struct state_syncer;

/* A syncer of path (copied), its thread started; NULL on failure (logged). */
struct state_syncer *state_syncer_new(const char *path)
	__attribute__((warn_unused_result));
/* Asks for path and its directory to be fsynced (once more if one is in
 * progress); never blocks on I/O. */
void state_syncer_kick(struct state_syncer *s);
/* Finishes a requested fsync, stops the thread and frees s; NULL is a
 * no-op. */
void state_syncer_free(struct state_syncer *s);

#endif /* PGB_STATESYNC_H */
