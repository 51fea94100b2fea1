/* pthreads are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
/* Fork-join pool: one generation counter under one mutex. crisp_pool_run
 * publishes a task and bumps the generation; each worker runs its share
 * once per generation and the last one to finish wakes the caller. The
 * mutex hand-offs order the workers' output writes before the caller's
 * next reads. */
#include "thread_pool.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

typedef struct worker {
    crisp_pool *pool;
    size_t index;
} worker;

struct crisp_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    size_t threads, started;
    uint64_t generation;
    size_t pending;
    int stop;
    crisp_pool_task task;
    void *context;
    pthread_t *handles; /* [threads - 1] */
    worker *workers;    /* [threads - 1] */
};

static void *worker_main(void *arg) {
    const worker *w = arg;
    crisp_pool *p = w->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        const crisp_pool_task task = p->task;
        void *context = p->context;
        pthread_mutex_unlock(&p->lock);
        task(context, w->index, p->threads);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void stop_and_join(crisp_pool *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->started; i++) pthread_join(p->handles[i], NULL);
    p->started = 0;
}

static void destroy(crisp_pool *p, int sync_objects) {
    if (sync_objects) {
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
    }
    free(p->handles);
    free(p->workers);
    free(p);
}

crisp_status crisp_pool_create(size_t threads, crisp_thread_create_fn create, crisp_pool **out) {
    *out = NULL;
    if (threads < 2 || threads > CRISP_MAX_THREADS)
        return crisp_error(CRISP_ERR_INTERNAL, "thread pool: %zu threads requested", threads);
    if (create == NULL) create = pthread_create;
    crisp_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return crisp_error(CRISP_ERR_NOMEM, "thread pool: out of memory");
    p->threads = threads;
    p->handles = calloc(threads - 1, sizeof *p->handles);
    p->workers = calloc(threads - 1, sizeof *p->workers);
    if (p->handles == NULL || p->workers == NULL) {
        destroy(p, 0);
        return crisp_error(CRISP_ERR_NOMEM, "thread pool: out of memory for %zu threads", threads);
    }
    int e = pthread_mutex_init(&p->lock, NULL);
    if (e == 0 && (e = pthread_cond_init(&p->wake, NULL)) != 0) pthread_mutex_destroy(&p->lock);
    if (e == 0 && (e = pthread_cond_init(&p->done, NULL)) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
    }
    if (e != 0) {
        destroy(p, 0);
        return crisp_error(e == ENOMEM || e == EAGAIN ? CRISP_ERR_NOMEM : CRISP_ERR_INTERNAL,
                           "thread pool: cannot initialise its mutex/condition: %s", strerror(e));
    }
    for (size_t i = 0; i + 1 < threads; i++) {
        p->workers[i] = (worker){p, i + 1};
        e = create(&p->handles[i], NULL, worker_main, &p->workers[i]);
        if (e != 0) {
            stop_and_join(p);
            destroy(p, 1);
            return crisp_error(e == EAGAIN || e == ENOMEM ? CRISP_ERR_NOMEM : CRISP_ERR_INTERNAL,
                               "session: cannot start worker thread %zu of %zu: %s", i + 1,
                               threads - 1, strerror(e));
        }
        p->started++;
    }
    *out = p;
    return CRISP_OK;
}

void crisp_pool_run(crisp_pool *p, crisp_pool_task task, void *context) {
    if (p == NULL) {
        task(context, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->task = task;
    p->context = context;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    task(context, 0, p->threads);
    pthread_mutex_lock(&p->lock);
    while (p->pending != 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

size_t crisp_pool_threads(const crisp_pool *p) { return p == NULL ? 1 : p->threads; }

void crisp_pool_free(crisp_pool *p) {
    if (p == NULL) return;
    stop_and_join(p);
    destroy(p, 1);
}
