/* pthreads are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
/* Fork-join pool. crisp_pool_run publishes a task and bumps an atomic
 * generation; each worker runs its share once per generation and the last
 * one to finish brings `pending` to zero. A model runs one task per op, a
 * hundred per inference, so waiting on a condition variable alone (a futex
 * wake-up each time, tens of microseconds in a VM) would cost milliseconds:
 * both sides first spin on the atomics for a bounded while (SPIN_NS), and
 * only then sleep on the
 * condition variables, under the mutex, with `sleepers` / `caller_asleep`
 * saying who needs a wake-up. Release/acquire on generation and pending
 * order the task's fields before the workers' reads, and the workers'
 * output writes before the caller's next reads. */
#include "thread_pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"

typedef struct worker {
    crisp_pool *pool;
    size_t index;
} worker;

struct crisp_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    size_t threads, started;
    _Atomic uint64_t generation;
    _Atomic size_t pending;
    atomic_int stop;
    size_t sleepers;   /* workers waiting on `wake` (under lock) */
    int caller_asleep; /* the caller waits on `done` (under lock) */
    crisp_pool_task task;
    void *context;
    pthread_t *handles; /* [threads - 1] */
    worker *workers;    /* [threads - 1] */
};

/* How long a side polls before it sleeps. A wake-up from sleep costs tens
 * of microseconds natively and far more in a VM whose idle vCPU has halted,
 * while two ops of a model are rarely further apart than this. */
#define SPIN_NS 200000L

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Polls `done(p)` for up to SPIN_NS, reading the clock every 64 rounds. */
static int spin_until(crisp_pool *p, int (*done)(crisp_pool *, uint64_t), uint64_t arg) {
    const uint64_t start = now_ns();
    for (unsigned i = 1;; i++) {
        if (done(p, arg)) return 1;
        if (i % 64 == 0 && now_ns() - start > (uint64_t)SPIN_NS) return 0;
        cpu_relax();
    }
}


static int work_arrived(crisp_pool *p, uint64_t seen) {
    return atomic_load_explicit(&p->generation, memory_order_acquire) != seen ||
           atomic_load_explicit(&p->stop, memory_order_acquire);
}

static int all_done(crisp_pool *p, uint64_t unused) {
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

/* Waits until the generation moves past `seen` or the pool stops. */
static void wait_for_work(crisp_pool *p, uint64_t seen) {
    if (spin_until(p, work_arrived, seen)) return;
    pthread_mutex_lock(&p->lock);
    p->sleepers++;
    while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen &&
           !atomic_load_explicit(&p->stop, memory_order_acquire))
        pthread_cond_wait(&p->wake, &p->lock);
    p->sleepers--;
    pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg) {
    const worker *w = arg;
    crisp_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        p->task(p->context, w->index, p->threads);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            /* The last one: wake the caller if it went to sleep. */
            pthread_mutex_lock(&p->lock);
            if (p->caller_asleep) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

static void stop_and_join(crisp_pool *p) {
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->stop, 1, memory_order_release);
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
    /* Every worker has finished the previous task (pending reached 0), so
     * nobody reads task/context while they change. */
    p->task = task;
    p->context = context;
    atomic_store_explicit(&p->pending, p->threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    /* A worker that started to sleep before the bump re-checks the
     * generation under the lock, so this broadcast cannot be missed. */
    pthread_mutex_lock(&p->lock);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    task(context, 0, p->threads);
    if (spin_until(p, all_done, 0)) return;
    pthread_mutex_lock(&p->lock);
    p->caller_asleep = 1;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->lock);
    p->caller_asleep = 0;
    pthread_mutex_unlock(&p->lock);
}

size_t crisp_pool_threads(const crisp_pool *p) { return p == NULL ? 1 : p->threads; }

void crisp_pool_free(crisp_pool *p) {
    if (p == NULL) return;
    stop_and_join(p);
    destroy(p, 1);
}
