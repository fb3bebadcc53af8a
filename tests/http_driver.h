/* http_driver.h - the real HTTP layer (src/http.c) driven without a
 * socket, for tests and fuzzers that go through the request handlers.
 *
 * Included in place of http.c (as fuzz_pdf includes extract_pdf.c): the
 * few libmicrohttpd calls a request makes (header lookup, responses,
 * suspend/resume, connection info) are renamed to the stubs below, and
 * hd_request() drives a request as libmicrohttpd would: on_request once
 * for the headers (routing, the check hook), once with the body, once at
 * its end (the handler), again after each http_resume, until it is
 * answered; hd_finish() then runs on_completed, the one place request
 * memory is freed, and drops the answer.
 *
 * The stubs stand for libmicrohttpd, not lode: an includer that wraps
 * malloc (tests/test_faults.c) defines HTTP_DRIVER_MALLOC to the real
 * one so that its faults stay in lode's code.  A stub that sees a
 * response libmicrohttpd would refuse (a header that would split it)
 * notes it in hd.violation.  One request at a time. */
#ifndef LODE_HTTP_DRIVER_H
#define LODE_HTTP_DRIVER_H

#define MHD_lookup_connection_value hd_lookup_connection_value
#define MHD_get_connection_info hd_get_connection_info
#define MHD_create_response_from_buffer hd_create_response_from_buffer
#define MHD_create_response_from_callback hd_create_response_from_callback
#define MHD_add_response_header hd_add_response_header
#define MHD_queue_response hd_queue_response
#define MHD_destroy_response hd_destroy_response
#define MHD_suspend_connection hd_suspend_connection
#define MHD_resume_connection hd_resume_connection
#include "../src/http.c"

#ifndef HTTP_DRIVER_MALLOC
#define HTTP_DRIVER_MALLOC malloc
#endif

struct MHD_Response {
    char *data;                      /* buffer responses */
    size_t len;
    bool owned;                      /* data is ours to free */
    MHD_ContentReaderFreeCallback free_cb;   /* streamed responses */
    void *cls;
    bool queued;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool resumed;
    struct MHD_Response *answer;     /* the queued response */
    unsigned status;
    int n_answers;
    char violation[256];             /* "" unless a stub saw a bad call */
    http_request *req;               /* the request being driven */
} hd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL, 0, 0, "", NULL};

static struct MHD_Response *hd_new_response(void)
{
    struct MHD_Response *r = HTTP_DRIVER_MALLOC(sizeof *r);
    if (r)
        memset(r, 0, sizeof *r);
    return r;
}

const char *hd_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                       const char *key)
{
    (void)c;
    if (kind == MHD_HEADER_KIND && strcasecmp(key, "Content-Type") == 0)
        return "application/json";
    return NULL;
}

const union MHD_ConnectionInfo *hd_get_connection_info(struct MHD_Connection *c,
                                                       enum MHD_ConnectionInfoType type, ...)
{
    (void)c;
    (void)type;
    return NULL;   /* no socket: fd -1 */
}

struct MHD_Response *hd_create_response_from_buffer(size_t size, void *buffer,
                                                    enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = hd_new_response();
    if (!r)
        return NULL;
    r->len = size;
    if (mode == MHD_RESPMEM_MUST_COPY) {
        r->data = HTTP_DRIVER_MALLOC(size ? size : 1);
        if (!r->data) {
            free(r);
            return NULL;
        }
        memcpy(r->data, buffer, size);
        r->owned = true;
    } else {
        r->data = buffer;
        r->owned = mode == MHD_RESPMEM_MUST_FREE;
    }
    return r;
}

struct MHD_Response *hd_create_response_from_callback(uint64_t size, size_t block,
                                                      MHD_ContentReaderCallback crc,
                                                      void *crc_cls,
                                                      MHD_ContentReaderFreeCallback crfc)
{
    (void)size;
    (void)block;
    (void)crc;
    struct MHD_Response *r = hd_new_response();
    if (!r)
        return NULL;
    r->free_cb = crfc;
    r->cls = crc_cls;
    return r;
}

enum MHD_Result hd_add_response_header(struct MHD_Response *r, const char *name,
                                       const char *value)
{
    if (!r || !name || !name[0] || !value)
        snprintf(hd.violation, sizeof hd.violation, "a bad response header");
    else if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        snprintf(hd.violation, sizeof hd.violation,
                 "header %.80s: %.80s would split the response", name, value);
    return MHD_YES;
}

enum MHD_Result hd_queue_response(struct MHD_Connection *c, unsigned int status,
                                  struct MHD_Response *r)
{
    (void)c;
    pthread_mutex_lock(&hd.lock);
    if (++hd.n_answers == 1) {
        hd.status = status;
        hd.answer = r;
        r->queued = true;
    }
    pthread_mutex_unlock(&hd.lock);
    return MHD_YES;
}

static void hd_response_free(struct MHD_Response *r)
{
    if (r->free_cb)
        r->free_cb(r->cls);
    if (r->owned)
        free(r->data);
    free(r);
}

void hd_destroy_response(struct MHD_Response *r)
{
    if (!r->queued)    /* a queued one lives until the request ends */
        hd_response_free(r);
}

void hd_suspend_connection(struct MHD_Connection *c) { (void)c; }

void hd_resume_connection(struct MHD_Connection *c)
{
    (void)c;
    pthread_mutex_lock(&hd.lock);
    hd.resumed = true;
    pthread_cond_broadcast(&hd.cond);
    pthread_mutex_unlock(&hd.lock);
}

/* The connection handed to http.c: any pointer that is not NULL. */
static struct MHD_Connection *hd_conn(http_server *srv)
{
    return (struct MHD_Connection *)srv;
}

/* Drive one request up to its answer (hd.status, hd.answer; hd.n_answers
 * should be 1).  False when it was suspended and not resumed within
 * timeout_s, or not even begun (out of memory: libmicrohttpd would close
 * the connection). */
static bool hd_request(http_server *srv, const char *method, const char *url,
                       const char *body, size_t len, int timeout_s)
{
    struct MHD_Connection *conn = hd_conn(srv);
    hd.n_answers = 0;
    hd.answer = NULL;
    hd.status = 0;
    hd.resumed = false;
    hd.violation[0] = '\0';
    hd.req = NULL;
    void *cls = NULL;
    size_t up = 0;
    if (on_request(srv, conn, url, method, "HTTP/1.1", NULL, &up, &cls) != MHD_YES || !cls)
        return false;
    http_request *req = hd.req = cls;
    if (len) {
        up = len;
        on_request(srv, conn, url, method, "HTTP/1.1", body, &up, &cls);
    }
    up = 0;
    on_request(srv, conn, url, method, "HTTP/1.1", NULL, &up, &cls);
    while (!req->status && req->suspended) {
        pthread_mutex_lock(&hd.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_s;
        while (!hd.resumed)
            if (pthread_cond_timedwait(&hd.cond, &hd.lock, &until) != 0) {
                pthread_mutex_unlock(&hd.lock);
                return false;
            }
        hd.resumed = false;
        pthread_mutex_unlock(&hd.lock);
        on_request(srv, conn, url, method, "HTTP/1.1", NULL, &up, &cls);
    }
    return true;
}

/* The request ends (on_completed); the answer is dropped. */
static void hd_finish(http_server *srv)
{
    void *cls = hd.req;
    if (cls)
        on_completed(srv, hd_conn(srv), &cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    hd.req = NULL;
    pthread_mutex_lock(&hd.lock);
    struct MHD_Response *r = hd.answer;
    hd.answer = NULL;
    pthread_mutex_unlock(&hd.lock);
    if (r)
        hd_response_free(r);
}

#endif
