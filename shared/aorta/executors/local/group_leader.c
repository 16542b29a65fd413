/*
 * The native group leader: the same contract as group_leader.py (read its docstring), in a
 * static binary that starts in well under a millisecond where the Python leader's interpreter
 * takes tens (docs/performance.md, "Operators"). `make setup` builds it next to this file; the
 * executor uses the Python leader when the binary is missing or not trustworthy.
 *
 *   group_leader PARENT_PID STATUS_FILE [--as UID:GID] -- COMMAND...
 *
 * With `--as`, this process starts as root and becomes UID:GID itself before anything else
 * (no supplementary group, then the group, then the user, each checked, and root checked to be
 * out of reach), so the platform starts it without changing ids and Python's subprocess may use
 * vfork instead of copying the platform's address space. The death signal is armed after the
 * change of ids, which would clear it, and the status file is only ever opened as that user.
 *
 * Signals are taken synchronously (sigwaitinfo): SIGCHLD means the operator may have ended,
 * SIGTERM is ignored while the platform lives (the executor's SIGTERM reaches the operator
 * through the group) and, once it is gone, kills the operator unless it exited already,
 * records how it ended, and kills the whole group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define COMMAND_NOT_STARTED 127
#define USAGE "usage: group_leader PARENT_PID STATUS_FILE [--as UID:GID] -- COMMAND...\n"

extern char **environ;

static int parse_id(const char *text, char end, const char **rest, unsigned long *id) {
    char *stop;
    errno = 0;
    if (*text < '0' || *text > '9') return -1;
    *id = strtoul(text, &stop, 10);
    if (errno != 0 || *stop != end || *id >= (unsigned long)(uid_t)-1) return -1;
    *rest = stop + 1;
    return 0;
}

/* setgroups, setgid, setuid, in that order, each checked; then checks that root is gone. */
static int become(uid_t uid, gid_t gid) {
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
        return -1;
    if (getresgid(&rgid, &egid, &sgid) != 0 || getresuid(&ruid, &euid, &suid) != 0) return -1;
    if (rgid != gid || egid != gid || sgid != gid || ruid != uid || euid != uid || suid != uid)
        return -1;
    if (getgroups(0, NULL) != 0) return -1;
    if ((uid != 0 && setuid(0) == 0) || (gid != 0 && setgid(0) == 0)) return -1;
    return 0;
}

static void write_status(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return;
    size_t length = strlen(text), done = 0;
    while (done < length) {
        ssize_t written = write(fd, text + done, length - done);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) break;
        done += (size_t)written;
    }
    close(fd);
}

/* Writes how the operator ended (`exit N`, `signal N`) and returns the exit status. */
static int record(const char *status_file, const siginfo_t *ended) {
    char text[32];
    int code;
    if (ended->si_code == CLD_EXITED) {
        snprintf(text, sizeof text, "exit %d\n", ended->si_status);
        code = ended->si_status;
    } else {
        snprintf(text, sizeof text, "signal %d\n", ended->si_status);
        code = 128 + ended->si_status;
    }
    write_status(status_file, text);
    return code;
}

/* The operator's end when it has one (not reaped: its pid cannot be reused meanwhile). */
static int has_ended(pid_t pid, siginfo_t *ended) {
    memset(ended, 0, sizeof *ended);
    while (waitid(P_PID, (id_t)pid, ended, WEXITED | WNOHANG | WNOWAIT) != 0)
        if (errno != EINTR) return 0;
    return ended->si_pid == pid;
}

/* Python's repr() of a program name, as group_leader.describe_start_error quotes it. */
static void quote(const char *text, char *out, size_t size) {
    char mark = strchr(text, '\'') && !strchr(text, '"') ? '"' : '\'';
    size_t at = 0;
    out[at++] = mark;
    for (const unsigned char *c = (const unsigned char *)text; *c && at + 6 < size; c++) {
        if (*c == '\\' || *c == (unsigned char)mark) {
            out[at++] = '\\';
            out[at++] = (char)*c;
        } else if (*c == '\n' || *c == '\r' || *c == '\t') {
            out[at++] = '\\';
            out[at++] = *c == '\n' ? 'n' : *c == '\r' ? 'r' : 't';
        } else if (*c < 0x20 || *c == 0x7f) {
            at += (size_t)snprintf(out + at, size - at, "\\x%02x", *c);
        } else {
            out[at++] = (char)*c;
        }
    }
    out[at++] = mark;
    out[at] = '\0';
}

static void start_error(const char *status_file, const char *program, int error) {
    char name[1024], text[1400];
    quote(program, name, sizeof name);
    if (error == ENOENT)
        snprintf(text, sizeof text, "error command %s not found%s\n", name,
                 strchr(program, '/') ? "" : " on PATH");
    else if (error == EACCES || error == EPERM)
        snprintf(text, sizeof text,
                 "error command %s cannot be run: permission denied (is it executable?)\n", name);
    else if (error == ENOEXEC)
        snprintf(text, sizeof text,
                 "error command %s cannot be run: exec format error (a script needs a #! line)\n",
                 name);
    else
        snprintf(text, sizeof text, "error command %s cannot be run: %s\n", name, strerror(error));
    write_status(status_file, text);
}

int main(int argc, char **argv) {
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGCHLD);
    /* Blocked first: a death signal arriving from here on waits for the loop below. */
    sigprocmask(SIG_BLOCK, &waited, NULL);

    unsigned long parent_id, uid = 0, gid = 0;
    const char *rest;
    int separator = 3, switch_ids = 0;
    if (argc > 4 && strcmp(argv[3], "--as") == 0) {
        const char *gid_text;
        if (parse_id(argv[4], ':', &gid_text, &uid) != 0 ||
            parse_id(gid_text, '\0', &rest, &gid) != 0) {
            fputs(USAGE, stderr);
            return 2;
        }
        switch_ids = 1;
        separator = 5;
    }
    if (argc < separator + 2 || strcmp(argv[separator], "--") != 0 ||
        parse_id(argv[1], '\0', &rest, &parent_id) != 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *status_file = argv[2];
    char **command = argv + separator + 1;
    pid_t parent = (pid_t)parent_id;

    if (switch_ids && become((uid_t)uid, (gid_t)gid) != 0) {
        fprintf(stderr, "group leader: could not become uid %lu gid %lu: %s\n", uid, gid,
                strerror(errno));
        return COMMAND_NOT_STARTED;
    }
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) {
        fprintf(stderr, "group leader: prctl(PR_SET_PDEATHSIG) failed: %s\n", strerror(errno));
        return 1;
    }
    if (getppid() != parent) return 1; /* the platform died before the signal was armed */

    /* The operator gets default signal dispositions and an empty mask (Python's leader gives
       back SIGPIPE and SIGXFSZ, which its interpreter ignores; here nothing else was changed). */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGCHLD);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int error = posix_spawnp(&pid, command[0], NULL, &attributes, command, environ);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
        start_error(status_file, command[0], error);
        return COMMAND_NOT_STARTED;
    }

    siginfo_t ended;
    for (;;) {
        if (has_ended(pid, &ended)) {
            int code = record(status_file, &ended);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            return code;
        }
        siginfo_t received;
        if (sigwaitinfo(&waited, &received) < 0) continue;
        if (received.si_signo == SIGTERM && getppid() != parent) {
            if (!has_ended(pid, &ended)) {
                kill(pid, SIGKILL);
                memset(&ended, 0, sizeof ended);
                while (waitid(P_PID, (id_t)pid, &ended, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
                }
            }
            if (ended.si_pid == pid) record(status_file, &ended);
            kill(0, SIGKILL);
        }
    }
}
