/* subproc.c - helper programs in their own process (see subproc.h).
 *
 * fork + exec rather than posix_spawn, because the child must set its
 * RLIMIT_AS before exec; between the two only async-signal-safe calls are
 * made (the server forks from a multi-threaded process), and the program
 * path is resolved before the fork so exec needs no $PATH search.  Both
 * pipes are read with poll() against one deadline, so a child that fills
 * stderr while we wait on stdout cannot deadlock us.
 */
#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int subproc_find(const char *name, char *buf, size_t size)
{
    if (strchr(name, '/')) {
        if (access(name, X_OK) != 0)
            return LODE_ENOTFOUND;
        snprintf(buf, size, "%s", name);
        return LODE_OK;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (n && n + 1 + strlen(name) < size) {
            memcpy(buf, path, n);
            buf[n] = '/';
            strcpy(buf + n + 1, name);
            if (access(buf, X_OK) == 0)
                return LODE_OK;
        }
        path += n + (colon ? 1 : 0);
    }
    return LODE_ENOTFOUND;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int subproc_run(char *const argv[], const subproc_limits *limits,
                subproc_output_fn on_output, void *ctx, subproc_result *res,
                lode_error *err)
{
    subproc_limits none = {0};
    if (!limits)
        limits = &none;
    memset(res, 0, sizeof *res);
    res->exit_status = -1;
    int out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return lode_error_set(err, LODE_EIO, "cannot run %s: %s", argv[0],
                              strerror(errno));
    if (pipe2(errp, O_CLOEXEC) != 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        return lode_error_set(err, LODE_EIO, "cannot run %s: %s", argv[0],
                              strerror(e));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
        return lode_error_set(err, LODE_EIO, "cannot run %s: %s", argv[0],
                              strerror(e));
    }
    if (pid == 0) {
        /* the child: async-signal-safe calls only */
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 ||
            dup2(errp[1], 2) < 0)
            _exit(126);
        if (limits->max_memory) {
            struct rlimit rl = {limits->max_memory, limits->max_memory};
            setrlimit(RLIMIT_AS, &rl);
        }
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    close(errp[1]);

    int rc = LODE_OK;
    long long deadline = limits->timeout_ms ? now_ms() + limits->timeout_ms
                                            : 0;
    size_t total = 0, err_len = 0;
    char buf[65536];
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0 && rc == LODE_OK) {
        int wait = -1;
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                res->timed_out = 1;
                rc = LODE_EBUSY;
                break;
            }
            wait = left > 1000000 ? 1000000 : (int)left;
        }
        int n = poll(fds, 2, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = lode_error_set(err, LODE_EIO, "waiting for %s: %s", argv[0],
                                strerror(errno));
            break;
        }
        for (int i = 0; i < 2 && rc == LODE_OK; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            if (i == 1) {
                size_t keep = SUBPROC_STDERR_MAX - 1 - err_len;
                if ((size_t)got < keep)
                    keep = (size_t)got;
                memcpy(res->stderr_text + err_len, buf, keep);
                err_len += keep;
                continue;
            }
            total += (size_t)got;
            if (limits->max_output && total > limits->max_output) {
                res->over_limit = 1;
                rc = LODE_ELIMIT;
            } else if (on_output) {
                rc = on_output(ctx, buf, (size_t)got);
            }
        }
    }
    if (rc != LODE_OK)
        kill(pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status))
        res->exit_status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res->signal = WTERMSIG(status);
    if (rc == LODE_EBUSY)
        lode_error_set(err, rc, "%s took longer than %d ms and was stopped",
                       argv[0], limits->timeout_ms);
    else if (rc == LODE_ELIMIT)
        lode_error_set(err, rc, "%s wrote more than %zu bytes and was "
                       "stopped", argv[0], limits->max_output);
    else if (rc == LODE_OK && res->exit_status == 127)
        rc = lode_error_set(err, LODE_EIO, "cannot run %s", argv[0]);
    return rc;
}
