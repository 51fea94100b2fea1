/* pthreads are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L
/* Fork-join pool over claimed chunks. crisp_pool_run publishes a task of
 * `chunks` chunks; every thread - the caller included - claims chunks one at
 * a time from a shared counter and runs them, and the run ends when every
 * chunk is done. Why claiming and not one fixed share per thread: on a busy
 * machine a worker is often descheduled or still waking when an op starts.
 * With fixed shares the caller then waited for that worker's share (a
 * scheduler time slice, milliseconds, for an op of 100 us: 2 threads ran
 * ResNet-50 2.5x slower than 1 at a load of 10 on 2 cores); with claims the
 * caller takes the chunks nobody took and waits only for chunks already
 * running. A worker that arrives late finds nothing left and never touches
 * the finished task's context.
 *
 * The caller claims chunks from the front and the workers from the back,
 * so with two threads each keeps to its own end of every op: the caller runs
 * the first output channels (or pixel tiles) of each op and the worker the
 * last, and the next op finds most of its input in its own core's cache (a
 * depthwise conv reads the channels the expand conv before it wrote). With
 * one shared counter either thread took any chunk, so half of every input
 * came from the other core's cache.
 *
 * The claim word carries the run's tag (the low 32 bits of its generation)
 * beside the front and back chunk indices, so a claim succeeds only for the
 * run it was read from: a late worker's compare-and-swap fails once the
 * caller has moved on, and the task's fields are read only after a claim
 * succeeded, while that run cannot end. Each thread adds the chunks it ran
 * to `done` once, when it finds none left (one atomic add per thread and
 * run instead of one per chunk: MobileNetV2 at 2 threads about -2 %), so a
 * run cannot end while a thread that claimed chunks is still counting. Waiting: both sides first spin on
 * the atomics for a bounded while (SPIN_NS; a futex wake-up costs tens of
 * microseconds natively and far more in a VM whose idle vCPU has halted,
 * while two ops are rarely further apart than this), then sleep on the
 * condition variables, under the mutex, with `sleepers` / `caller_asleep`
 * saying who needs a wake-up. The atomics sit on cache lines of their own:
 * the counter both sides write must not share a line with the generation the
 * idle workers poll. */
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

#define TAG_SHIFT 32
#define NO_TAG UINT64_C(0xFFFFFFFF) /* the claim word while a run is set up */
/* Claim word: tag << 32 | front << 16 | back (chunks [front, back) are left). */
#define FRONT_SHIFT 16
#define MAX_ROUND_CHUNKS 0xFFFFu /* a run of more chunks goes in rounds of this many */

struct crisp_pool {
    _Alignas(64) _Atomic uint64_t generation; /* bumped once a run is published */
    atomic_int stop;
    _Alignas(64) _Atomic uint64_t claim; /* tag << 32 | front << 16 | back */
    _Alignas(64) _Atomic size_t done;    /* chunks finished in this run */
    _Alignas(64) _Atomic size_t chunks;  /* of this run (atomic: read before a claim) */
    crisp_pool_task task;
    void *context;
    size_t base; /* the run's first chunk (rounds of a larger crisp_pool_run) */
    pthread_mutex_t lock;
    pthread_cond_t wake, done_cond;
    size_t threads, started;
    size_t sleepers;   /* workers waiting on `wake` (under lock) */
    int caller_asleep; /* the caller waits on `done_cond` (under lock) */
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

static int all_done(crisp_pool *p, uint64_t chunks) {
    return atomic_load_explicit(&p->done, memory_order_acquire) == chunks;
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

/* Claims and runs chunks of the run tagged `tag` until none is left: the
 * caller (thread 0) from the front, the workers from the back. */
static void run_chunks(crisp_pool *p, uint64_t tag, size_t thread) {
    uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
    size_t mine = 0, chunks = 0;
    for (;;) {
        if (v >> TAG_SHIFT != tag) break; /* another run, or one being set up */
        chunks = atomic_load_explicit(&p->chunks, memory_order_relaxed);
        const size_t front = (size_t)(v >> FRONT_SHIFT) & MAX_ROUND_CHUNKS;
        const size_t back = (size_t)v & MAX_ROUND_CHUNKS;
        if (front >= back) break;
        const uint64_t taken = thread == 0 ? v + ((uint64_t)1 << FRONT_SHIFT) : v - 1;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, taken, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* v now holds the current value */
        /* Claimed: the run cannot end before this chunk is done, so its
         * fields (and `chunks` read above, same tag) are this run's. */
        p->task(p->context, p->base + (thread == 0 ? front : back - 1), thread);
        mine++;
        v = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
    if (mine == 0) return;
    if (atomic_fetch_add_explicit(&p->done, mine, memory_order_acq_rel) + mine == chunks &&
        thread != 0) {
        /* The last chunks: wake the caller if it went to sleep. */
        pthread_mutex_lock(&p->lock);
        if (p->caller_asleep) pthread_cond_signal(&p->done_cond);
        pthread_mutex_unlock(&p->lock);
    }
}

static void *worker_main(void *arg) {
    const worker *w = arg;
    crisp_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        run_chunks(p, seen & 0xFFFFFFFFu, w->index);
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
        pthread_cond_destroy(&p->done_cond);
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
    /* 64-aligned for the atomics' own cache lines. */
    const size_t size = (sizeof(crisp_pool) + 63) / 64 * 64;
    crisp_pool *p = aligned_alloc(64, size);
    if (p == NULL) return crisp_error(CRISP_ERR_NOMEM, "thread pool: out of memory");
    memset(p, 0, size);
    atomic_init(&p->generation, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->claim, NO_TAG << TAG_SHIFT);
    atomic_init(&p->done, 0);
    atomic_init(&p->chunks, 0);
    p->threads = threads;
    p->handles = calloc(threads - 1, sizeof *p->handles);
    p->workers = calloc(threads - 1, sizeof *p->workers);
    if (p->handles == NULL || p->workers == NULL) {
        destroy(p, 0);
        return crisp_error(CRISP_ERR_NOMEM, "thread pool: out of memory for %zu threads", threads);
    }
    int e = pthread_mutex_init(&p->lock, NULL);
    if (e == 0 && (e = pthread_cond_init(&p->wake, NULL)) != 0) pthread_mutex_destroy(&p->lock);
    if (e == 0 && (e = pthread_cond_init(&p->done_cond, NULL)) != 0) {
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

/* One round: chunks base .. base + chunks - 1, chunks <= MAX_ROUND_CHUNKS. */
static void run_round(crisp_pool *p, size_t base, size_t chunks, crisp_pool_task task,
                      void *context) {
    /* Every chunk of the previous run is done, so nobody reads task/context
     * while they change; a late worker's claim fails on the tag (NO_TAG
     * while the fields change, then the new run's). */
    uint64_t generation = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    if ((generation & 0xFFFFFFFFu) == NO_TAG) generation++;
    const uint64_t tag = generation & 0xFFFFFFFFu;
    atomic_store_explicit(&p->claim, NO_TAG << TAG_SHIFT, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    p->task = task;
    p->context = context;
    p->base = base;
    atomic_store_explicit(&p->chunks, chunks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, tag << TAG_SHIFT | (uint64_t)chunks, memory_order_release);
    atomic_store_explicit(&p->generation, generation, memory_order_release);
    /* A worker that started to sleep before the bump re-checks the
     * generation under the lock, so this broadcast cannot be missed. */
    pthread_mutex_lock(&p->lock);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_chunks(p, tag, 0);
    if (spin_until(p, all_done, chunks)) return;
    pthread_mutex_lock(&p->lock);
    p->caller_asleep = 1;
    while (atomic_load_explicit(&p->done, memory_order_acquire) != chunks)
        pthread_cond_wait(&p->done_cond, &p->lock);
    p->caller_asleep = 0;
    pthread_mutex_unlock(&p->lock);
}

void crisp_pool_run(crisp_pool *p, size_t chunks, crisp_pool_task task, void *context) {
    if (p == NULL) {
        for (size_t c = 0; c < chunks; c++) task(context, c, 0);
        return;
    }
    for (size_t base = 0; base < chunks; base += MAX_ROUND_CHUNKS) {
        const size_t n = chunks - base < MAX_ROUND_CHUNKS ? chunks - base : MAX_ROUND_CHUNKS;
        run_round(p, base, n, task, context);
    }
}

size_t crisp_pool_threads(const crisp_pool *p) { return p == NULL ? 1 : p->threads; }

void crisp_pool_free(crisp_pool *p) {
    if (p == NULL) return;
    stop_and_join(p);
    destroy(p, 1);
}
