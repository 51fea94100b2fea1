/* Internal: the small fork-join pthread pool a session owns. */
#ifndef CRISP_THREAD_POOL_H
#define CRISP_THREAD_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "crisp.h"

/* More is refused as an out-of-range option: boards have 4-8 cores. */
#define CRISP_MAX_THREADS 256u

typedef struct crisp_pool crisp_pool;

/* Runs chunk `chunk` of a crisp_pool_run on thread `thread_index` (0 is the
 * caller; each thread runs one chunk at a time, so per-thread scratch can be
 * indexed by it). Which thread runs which chunk changes from run to run. */
typedef void (*crisp_pool_task)(void *context, size_t chunk, size_t thread_index);

/* pthread_create, or a stand-in the tests use to make thread creation fail. */
typedef int (*crisp_thread_create_fn)(pthread_t *thread, const pthread_attr_t *attr,
                                      void *(*start)(void *), void *arg);

/* threads (2..CRISP_MAX_THREADS) includes the caller: threads - 1 workers
 * start now and wait. On failure every started worker is joined, *out is
 * NULL and the status is CRISP_ERR_NOMEM (no resources for a thread) or
 * CRISP_ERR_INTERNAL, with a message. create NULL = pthread_create. */
crisp_status crisp_pool_create(size_t threads, crisp_thread_create_fn create, crisp_pool **out);

/* task(context, c, t) once for every chunk c < chunks, each on whichever
 * thread t claims it first (the caller works too, claiming from the first
 * chunk up; the workers claim from the last down); returns when all are
 * done. A NULL pool runs every chunk on the caller, in order. */
void crisp_pool_run(crisp_pool *pool, size_t chunks, crisp_pool_task task, void *context);

size_t crisp_pool_threads(const crisp_pool *pool); /* 1 for NULL */

/* Stops and joins the workers. NULL is a no-op. */
void crisp_pool_free(crisp_pool *pool);

#endif
