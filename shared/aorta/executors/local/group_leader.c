/*
 * The native group leader: the same contract as group_leader.py (read its docstring), in a
 * static binary that starts in well under a millisecond where the Python leader's interpreter
 * takes tens (docs/performance.md, "Operators"). `make setup` builds it next to this file; the
 * executor uses the Python leader when the binary is missing or not trustworthy.
 *
 *   group_leader PARENT_PID STATUS_FILE [--as UID:GID] -- COMMAND...
 *   group_leader PARENT_PID --standby [--as UID:GID]
 *
 * With `--as`, this process starts as root and becomes UID:GID itself before anything else
 * (no supplementary group, then the group, then the user, each checked, and root checked to be
 * out of reach), so the platform starts it without changing ids and Python's subprocess may use
 * vfork instead of copying the platform's address space. The death signal is armed after the
 * change of ids, which would clear it, and the status file is only ever opened as that user.
 *
 * With `--standby`, it is started ahead of its run (standby_leader.py): once it is the user
 * and its death signal is armed, it reads the run from stdin to its end, `LENGTH\n` and then
 * LENGTH bytes of NUL-terminated fields: the status file, the folder to run in, the
 * environment's `NAME=VALUE` entries, an empty field, the command's arguments. A run that is
 * not whole (the platform died while writing it, or closed the pipe unused) starts nothing.
 * The operator's stdin is then /dev/null, its folder and environment those of the run; the
 * rest is as in the first form.
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
#define USAGE                                                                               \
    "usage: group_leader PARENT_PID STATUS_FILE [--as UID:GID] -- COMMAND...\n"                \
    "       group_leader PARENT_PID --standby [--as UID:GID]\n"
#define MAX_RUN_BYTES (16 << 20)

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

/* A run handed over on stdin (the `--standby` form). */
struct run {
    char *buffer;
    const char *status_file, *folder;
    char **environment, **command;
};

/* Reads stdin to its end; NULL unless it held `LENGTH\n` and exactly LENGTH more bytes. */
static char *read_whole(size_t *length) {
    size_t size = 4096, used = 0;
    char *buffer = malloc(size);
    for (;;) {
        if (buffer == NULL) return NULL;
        if (used == size) {
            char *grown = size < MAX_RUN_BYTES ? realloc(buffer, size * 2) : NULL;
            if (grown == NULL) break;
            buffer = grown;
            size *= 2;
        }
        ssize_t got = read(STDIN_FILENO, buffer + used, size - used);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        if (got == 0) {
            char *body = memchr(buffer, '\n', used);
            unsigned long declared;
            const char *rest;
            if (body == NULL) break;
            *body = '\0';
            if (parse_id(buffer, '\0', &rest, &declared) != 0 ||
                declared != used - (size_t)(body + 1 - buffer))
                break;
            *length = declared;
            memmove(buffer, body + 1, declared);
            return buffer;
        }
        used += (size_t)got;
    }
    free(buffer);
    return NULL;
}

/* The fields of a whole run; -1 when they are not those of the module comment. */
static int read_run(struct run *run) {
    size_t length, fields = 0;
    char *buffer = read_whole(&length);
    if (buffer == NULL || length == 0 || buffer[length - 1] != '\0') {
        free(buffer);
        return -1;
    }
    for (size_t at = 0; at < length; at++) fields += buffer[at] == '\0';
    char **list = calloc(fields + 2, sizeof *list);
    if (list == NULL) return -1;
    size_t count = 0, separator = 0;
    for (char *field = buffer; field < buffer + length; field += strlen(field) + 1) {
        if (*field == '\0' && separator == 0 && count >= 2) {
            separator = count;
            list[count++] = NULL; /* ends the environment */
        } else {
            list[count++] = field;
        }
    }
    list[count] = NULL;
    if (separator == 0 || separator + 1 >= count || *list[0] == '\0' || *list[1] == '\0') {
        free(list);
        free(buffer);
        return -1;
    }
    run->buffer = buffer;
    run->status_file = list[0];
    run->folder = list[1];
    run->environment = list + 2;
    run->command = list + separator + 1;
    return 0;
}

/* Stdin from /dev/null and the run's folder, as the first form gets them from the platform;
   the environment is this process's own, so that posix_spawnp searches the run's PATH. */
static int enter_run(const struct run *run) {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0) return -1;
    close(null);
    if (chdir(run->folder) != 0) {
        char name[1024], text[1200];
        quote(run->folder, name, sizeof name);
        snprintf(text, sizeof text, "error the folder %s cannot be entered: %s\n", name,
                 strerror(errno));
        write_status(run->status_file, text);
        return -1;
    }
    environ = run->environment;
    return 0;
}

/* Starts `command`, waits for it and records how it ended; returns the exit status. */
static int lead(pid_t parent, const char *status_file, char **command, const sigset_t *waited) {
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
        if (sigwaitinfo(waited, &received) < 0) continue;
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

int main(int argc, char **argv) {
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGCHLD);
    /* Blocked first: a death signal arriving from here on waits for the loop in `lead`. */
    sigprocmask(SIG_BLOCK, &waited, NULL);

    unsigned long parent_id, uid = 0, gid = 0;
    const char *rest;
    int standby = argc > 2 && strcmp(argv[2], "--standby") == 0;
    int options = 3, switch_ids = 0;
    if (argc > options + 1 && strcmp(argv[options], "--as") == 0) {
        const char *gid_text;
        if (parse_id(argv[options + 1], ':', &gid_text, &uid) != 0 ||
            parse_id(gid_text, '\0', &rest, &gid) != 0) {
            fputs(USAGE, stderr);
            return 2;
        }
        switch_ids = 1;
        options += 2;
    }
    int malformed = standby ? argc != options
                            : argc < options + 2 || strcmp(argv[options], "--") != 0;
    if (malformed || parse_id(argv[1], '\0', &rest, &parent_id) != 0) {
        fputs(USAGE, stderr);
        return 2;
    }
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
    if (!standby) return lead(parent, argv[2], argv + options + 1, &waited);

    struct run run;
    if (read_run(&run) != 0) return 2;
    /* The platform may have died while this process waited: a whole run written just before
       starts nothing either (a death from here on is handled in `lead`). */
    if (getppid() != parent) return 1;
    if (enter_run(&run) != 0) return COMMAND_NOT_STARTED;
    return lead(parent, run.status_file, run.command, &waited);
}
