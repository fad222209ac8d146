/* Cancel requests (see cancel.h): libpq 17's non-blocking cancel driven to a deadline,
 * or, on older libpq, a bounded pool of helper threads around the blocking PQcancel. */
#include "oxpg/cancel.h"

#include <errno.h>
#include <time.h>

int oxpg_cancel_request(PGconn *conn, double timeout)
{
    double deadline = oxpg_monotonic() + timeout;
    OxpgCancel *cancel = oxpg_cancel_prepare(conn);
    return cancel == NULL ? -1 : oxpg_cancel_deliver(cancel, deadline);
}

#ifdef LIBPQ_HAS_ASYNC_CANCEL

#include <poll.h>

struct OxpgCancel {
    PGcancelConn *conn;
};

OxpgCancel *oxpg_cancel_prepare(PGconn *conn)
{
    if (conn == NULL)
        return NULL;
    /* A copy of the connection's address, options and key: usable after conn closes. */
    PGcancelConn *cancel_conn = PQcancelCreate(conn);
    if (cancel_conn == NULL)
        return NULL;
    OxpgCancel *cancel = NULL;
    if (PQcancelStatus(cancel_conn) == CONNECTION_BAD || (cancel = malloc(sizeof(*cancel))) == NULL) {
        PQcancelFinish(cancel_conn);
        return NULL;
    }
    cancel->conn = cancel_conn;
    return cancel;
}

int oxpg_cancel_deliver(OxpgCancel *cancel, double deadline)
{
    PGcancelConn *conn = cancel->conn;
    PostgresPollingStatusType status;
    Py_BEGIN_ALLOW_THREADS
    status = PQcancelStart(conn) ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
    while (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING) {
        int fd = PQcancelSocket(conn);
        double left = deadline - oxpg_monotonic();
        if (fd < 0 || left <= 0) {
            status = PGRES_POLLING_FAILED;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int rc = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR)
            continue; /* a signal for someone else; the deadline still holds */
        if (rc < 0)
            status = PGRES_POLLING_FAILED;
        else if (rc > 0)
            status = PQcancelPoll(conn);
    }
    /* Closes the socket, whether or not the request got through. */
    PQcancelFinish(conn);
    Py_END_ALLOW_THREADS
    free(cancel);
    return status == PGRES_POLLING_OK ? 0 : -1;
}

#else

#include <pthread.h>
#include <signal.h>

/* Longest a helper waits for work before it exits. */
#define IDLE_SECONDS 30.0
/* Requests waiting for a helper; beyond it the oldest is dropped. */
#define QUEUE_MAX 16

typedef enum { JOB_NEW, JOB_QUEUED, JOB_RUNNING, JOB_DELIVERED, JOB_FAILED, JOB_DROPPED } JobState;

/* Shared by its caller and the pool under pool.mutex; the last to let go frees it.
 * Plain malloc: a helper may free it after the interpreter is gone. */
struct OxpgCancel {
    PGcancel *handle;
    double deadline; /* the caller's: a helper never starts the request later */
    JobState state;
    int refs;
    OxpgCancel *next; /* in the queue */
};

static struct {
    pthread_once_t once;
    int ready; /* set up (the condition variables run on the monotonic clock) */
    pthread_mutex_t mutex;
    pthread_cond_t work; /* a request was queued */
    pthread_cond_t done; /* a request ended (delivered, failed or dropped) */
    OxpgCancel *head;
    OxpgCancel *tail;
    int queued;
    int workers; /* helpers alive */
    int idle;    /* helpers waiting for work */
} pool = {.once = PTHREAD_ONCE_INIT, .mutex = PTHREAD_MUTEX_INITIALIZER};

static struct timespec monotonic_at(double when)
{
    struct timespec ts;
    if (when < 0)
        when = 0;
    ts.tv_sec = (time_t)when;
    ts.tv_nsec = (long)((when - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int init_conds(void)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&pool.work, &attr) == 0;
    if (ok && pthread_cond_init(&pool.done, &attr) != 0) {
        pthread_cond_destroy(&pool.work);
        ok = 0;
    }
    pthread_condattr_destroy(&attr);
    return ok ? 0 : -1;
}

/* fork() copies the pool as the forking thread saw it, with none of its helpers: the
 * mutex is held across the fork so the copy is consistent, and the child starts an
 * empty pool. The requests the parent's threads were waiting for are not the child's
 * (their memory is left alone: a few bytes per request). */
static void before_fork(void)
{
    pthread_mutex_lock(&pool.mutex);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.mutex);
}

static void after_fork_child(void)
{
    pool.head = pool.tail = NULL;
    pool.queued = pool.workers = pool.idle = 0;
    /* Waiters of the parent may have been inside the condition variables. */
    pool.ready = init_conds() == 0;
    pthread_mutex_unlock(&pool.mutex);
}

static void init_pool(void)
{
    if (init_conds() < 0)
        return;
    if (pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0) {
        pthread_cond_destroy(&pool.work);
        pthread_cond_destroy(&pool.done);
        return;
    }
    pool.ready = 1;
}

/* pool.mutex held. */
static void release(OxpgCancel *cancel)
{
    if (--cancel->refs == 0) {
        PQfreeCancel(cancel->handle);
        free(cancel);
    }
}

/* pool.mutex held: take cancel out of the queue, wherever it is; the queue's
 * reference becomes the caller's to drop. */
static void unlink_queued(OxpgCancel *cancel)
{
    OxpgCancel **at = &pool.head;
    OxpgCancel *prev = NULL;
    while (*at != NULL && *at != cancel) {
        prev = *at;
        at = &(*at)->next;
    }
    if (*at == NULL)
        return;
    *at = cancel->next;
    if (pool.tail == cancel)
        pool.tail = prev;
    cancel->next = NULL;
    pool.queued--;
}

/* pool.mutex held: the request ends with state, and its caller (if still waiting)
 * is told. */
static void finish(OxpgCancel *cancel, JobState state)
{
    cancel->state = state;
    pthread_cond_broadcast(&pool.done);
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.mutex);
    for (;;) {
        while (pool.head == NULL) {
            struct timespec until = monotonic_at(oxpg_monotonic() + IDLE_SECONDS);
            pool.idle++;
            int rc = pthread_cond_timedwait(&pool.work, &pool.mutex, &until);
            pool.idle--;
            if (rc == ETIMEDOUT && pool.head == NULL) {
                pool.workers--;
                pthread_mutex_unlock(&pool.mutex);
                return NULL;
            }
        }
        OxpgCancel *cancel = pool.head;
        pool.head = cancel->next;
        if (pool.head == NULL)
            pool.tail = NULL;
        cancel->next = NULL;
        pool.queued--;
        /* The queue's reference is now this helper's. A request past its deadline is
         * not sent: its caller has moved on, and the connection may already run
         * another statement that a late cancel would hit. */
        if (oxpg_monotonic() >= cancel->deadline) {
            finish(cancel, JOB_DROPPED);
            release(cancel);
            continue;
        }
        cancel->state = JOB_RUNNING;
        pthread_mutex_unlock(&pool.mutex);
        char errbuf[256];
        int delivered = PQcancel(cancel->handle, errbuf, sizeof(errbuf));
        pthread_mutex_lock(&pool.mutex);
        finish(cancel, delivered ? JOB_DELIVERED : JOB_FAILED);
        release(cancel);
    }
}

/* pool.mutex held: one more helper, when none is free and the pool may grow.
 * Returns -1 when there is no helper at all to take the request. */
static int ensure_worker(void)
{
    if (pool.idle >= pool.queued || pool.workers >= OXPG_CANCEL_WORKERS_MAX)
        return pool.workers > 0 ? 0 : -1;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return pool.workers > 0 ? 0 : -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Signals are for the interpreter's threads: the helper starts with all of them
     * blocked (it inherits the mask), so none lands in PQcancel. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    int started = pthread_create(&thread, &attr, worker_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (started)
        pool.workers++;
    return pool.workers > 0 ? 0 : -1;
}

OxpgCancel *oxpg_cancel_prepare(PGconn *conn)
{
    if (conn == NULL)
        return NULL;
    OxpgCancel *cancel = calloc(1, sizeof(*cancel));
    if (cancel == NULL)
        return NULL;
    /* A copy of the address and key: usable after conn closes. */
    if ((cancel->handle = PQgetCancel(conn)) == NULL) {
        free(cancel);
        return NULL;
    }
    cancel->state = JOB_NEW;
    cancel->refs = 1; /* the caller's */
    return cancel;
}

int oxpg_cancel_deliver(OxpgCancel *cancel, double deadline)
{
    JobState state = JOB_FAILED;
    cancel->deadline = deadline;
    Py_BEGIN_ALLOW_THREADS
    pthread_once(&pool.once, init_pool);
    pthread_mutex_lock(&pool.mutex);
    if (pool.ready && oxpg_monotonic() < deadline) {
        if (pool.queued >= QUEUE_MAX) {
            /* Full: helpers are stuck on unreachable servers. The oldest waiter has
             * had the longest chance; it is told its request was not sent. */
            OxpgCancel *oldest = pool.head;
            finish(oldest, JOB_DROPPED);
            unlink_queued(oldest);
            release(oldest);
        }
        cancel->state = JOB_QUEUED;
        cancel->refs++; /* the queue's */
        if (pool.tail != NULL)
            pool.tail->next = cancel;
        else
            pool.head = cancel;
        pool.tail = cancel;
        pool.queued++;
        if (ensure_worker() < 0) {
            state = JOB_FAILED;
            unlink_queued(cancel);
            cancel->refs--; /* the queue's; the caller's is still held */
        } else {
            pthread_cond_signal(&pool.work);
            struct timespec until = monotonic_at(deadline);
            /* Any other return (a spurious wakeup, another request ending) only
             * means looking again; POSIX never returns EINTR here. */
            while ((cancel->state == JOB_QUEUED || cancel->state == JOB_RUNNING) &&
                   pthread_cond_timedwait(&pool.done, &pool.mutex, &until) != ETIMEDOUT) {
            }
            state = cancel->state;
            /* Not taken in time: nobody is left to want it sent. A request already
             * in PQcancel stays with its helper, which frees it. */
            if (state == JOB_QUEUED) {
                unlink_queued(cancel);
                cancel->refs--; /* the queue's; the caller's is still held */
            }
        }
    }
    release(cancel); /* the caller's */
    pthread_mutex_unlock(&pool.mutex);
    Py_END_ALLOW_THREADS
    return state == JOB_DELIVERED ? 0 : -1;
}

#endif
