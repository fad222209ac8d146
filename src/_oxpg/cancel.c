/* Cancel requests. libpq 17 has a non-blocking cancel API, driven here like a
 * connection. Older libpq only has PQcancel(), which blocks for as long as the
 * network makes it: it runs on a short-lived thread so the caller's wait is bounded
 * whatever happens to the request. */
#include "oxpg/cancel.h"

#include <pthread.h>
#include <time.h>

#ifdef LIBPQ_HAS_ASYNC_CANCEL

#include <poll.h>

int oxpg_cancel_request(PGconn *conn, double timeout)
{
    PGcancelConn *cancel = PQcancelCreate(conn);
    if (cancel == NULL)
        return -1;
    double deadline = oxpg_monotonic() + timeout;
    int ok = PQcancelStart(cancel);
    PostgresPollingStatusType status = ok ? PGRES_POLLING_WRITING : PGRES_POLLING_FAILED;
    while (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING) {
        int fd = PQcancelSocket(cancel);
        double left = deadline - oxpg_monotonic();
        if (fd < 0 || left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = poll(&pfd, 1, (int)(left * 1000) + 1);
        status = rc < 0 ? PGRES_POLLING_FAILED : PQcancelPoll(cancel);
        Py_END_ALLOW_THREADS
    }
    PQcancelFinish(cancel);
    return status == PGRES_POLLING_OK ? 0 : -1;
}

#else

/* Shared by the caller and the worker; the last one to leave frees it. */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t done_cond;
    PGcancel *cancel;
    int done;
    int delivered;
    int refs;
} CancelJob;

static void release(CancelJob *job)
{
    pthread_mutex_lock(&job->mutex);
    int last = --job->refs == 0;
    pthread_mutex_unlock(&job->mutex);
    if (last) {
        PQfreeCancel(job->cancel);
        pthread_cond_destroy(&job->done_cond);
        pthread_mutex_destroy(&job->mutex);
        free(job);
    }
}

static void *run_cancel(void *arg)
{
    CancelJob *job = arg;
    char errbuf[256];
    int delivered = PQcancel(job->cancel, errbuf, sizeof(errbuf));
    pthread_mutex_lock(&job->mutex);
    job->done = 1;
    job->delivered = delivered;
    pthread_cond_signal(&job->done_cond);
    pthread_mutex_unlock(&job->mutex);
    release(job);
    return NULL;
}

int oxpg_cancel_request(PGconn *conn, double timeout)
{
    /* Plain malloc: the worker may free it after the interpreter moved on. */
    CancelJob *job = calloc(1, sizeof(CancelJob));
    if (job == NULL)
        return -1;
    if ((job->cancel = PQgetCancel(conn)) == NULL) {
        free(job);
        return -1;
    }
    pthread_mutex_init(&job->mutex, NULL);
    pthread_cond_init(&job->done_cond, NULL);
    job->refs = 2;
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&thread, &attr, run_cancel, job) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        job->refs = 1;
        release(job);
        return -1;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long nanos = until.tv_nsec + (long long)(timeout * 1e9);
    until.tv_sec += (time_t)(nanos / 1000000000LL);
    until.tv_nsec = (long)(nanos % 1000000000LL);
    int delivered = 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&job->mutex);
    while (!job->done) {
        if (pthread_cond_timedwait(&job->done_cond, &job->mutex, &until) != 0)
            break;
    }
    delivered = job->done && job->delivered;
    pthread_mutex_unlock(&job->mutex);
    Py_END_ALLOW_THREADS
    release(job);
    return delivered ? 0 : -1;
}

#endif
