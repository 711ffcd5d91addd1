/* ipydock-pid1: a container's pid 1 until it execs the container's command.
 *
 * A spare supervisor forks a candidate pid 1 ahead of need (spawn.Prepared): in a new pid
 * namespace, in its cgroup, with a network namespace of its own whose lo is up. The candidate
 * then execs this program, while it still waits, so that the start itself neither runs Python
 * in a fresh fork (page copies on every object it touches) nor tears down a fork of a Python
 * supervisor when it execs the command. A start without a prepared pid 1 (spawn.spawn: an
 * ordinary user's, a build step's) execs it right after its fork. This program waits on fd
 * SOCK for the plan, builds the container's world from it and execs; it does what
 * spawn._child_main does for a plan that pid1.fits() accepts, step by step, with the same
 * report lines and exit codes.
 *
 *   ipydock-pid1 SOCK CAME_FROM_NETNS
 *
 * SOCK: a SOCK_SEQPACKET socket; one message: the plan (pid1.encode: netstrings, "LEN:BYTES")
 * and, as SCM_RIGHTS, the fds its slots name (report pipe, stdin, stdout, stderr, go pipe,
 * console socket).
 * CAME_FROM_NETNS: the network namespace the candidate came from (-1: none was made ahead).
 * EOF on SOCK (the spare was discarded) ends it with exit code 0.
 *
 * Report pipe: EOF when the command was exec'd (it is close-on-exec); {"ready": true} when
 * paused before exec; else one error line {"step", "errno", "detail", "exit_code"}.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#include <grp.h>
#include <limits.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif
#define MAX_MESSAGE (1 << 20)
#define MAX_FDS 8
#define MAX_LINKS 255
#define PRESERVED (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static int report_fd = -1;

/* --- report lines and failure ------------------------------------------------------------- */

/* The length of the UTF-8 sequence at P (2-4 bytes) as Python's strict decoder takes it (no
 * overlong form, no surrogate, nothing above U+10FFFF), or 0 if it is not one. */
static int utf8_length(const unsigned char *p) {
    int n;
    unsigned char low = 0x80, high = 0xbf; /* the second byte's range */
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        low = p[0] == 0xe0 ? 0xa0 : 0x80;
        high = p[0] == 0xed ? 0x9f : 0xbf;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        low = p[0] == 0xf0 ? 0x90 : 0x80;
        high = p[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (p[1] < low || p[1] > high)
        return 0;
    for (int i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* TEXT as a JSON string, as Python's json.dumps writes a str: bytes that are not UTF-8 as
 * the surrogates os.fsdecode makes of them ("\udcff"). */
static void json_string(char *out, size_t size, const char *text) {
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 8 < size; p++) {
        int len;
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", *p);
        } else if (*p < 0x80) {
            out[n++] = (char)*p;
        } else if ((len = utf8_length(p)) > 0) {
            if (n + (size_t)len + 8 >= size)
                break;
            memcpy(out + n, p, (size_t)len);
            n += (size_t)len;
            p += len - 1;
        } else {
            n += (size_t)snprintf(out + n, size - n, "\\udc%02x", *p);
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        data += w;
        len -= (size_t)w;
    }
}

/* Report a failed step and end: what spawn.StepError.to_dict() writes. */
__attribute__((noreturn, format(printf, 4, 5))) static void fail(const char *step, int err,
                                                                  int code, const char *fmt, ...) {
    char detail[4096], quoted_step[1024], quoted_detail[8192], line[10240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_string(quoted_step, sizeof quoted_step, step);
    json_string(quoted_detail, sizeof quoted_detail, detail);
    int n = snprintf(line, sizeof line,
                     "{\"step\": %s, \"errno\": %d, \"detail\": %s, \"exit_code\": %d}\n",
                     quoted_step, err, quoted_detail, code);
    if (report_fd >= 0 && n > 0)
        write_all(report_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    _exit(code);
}

/* The current step, for errors of the calls made in it (spawn._step's "{step}: ..."). */
static char step[1200];

static void set_step(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(step, sizeof step, fmt, ap);
    va_end(ap);
}

/* An OSError from a plain os call: "{step}: {strerror}". */
__attribute__((noreturn)) static void fail_errno(void) {
    int err = errno;
    fail(step, err, 125, "%s: %s", step, strerror(err));
}

/* An OSError from one of spawn's wrappers: "{step}: {what}: {strerror}". */
__attribute__((noreturn, format(printf, 1, 2))) static void fail_call(const char *fmt, ...) {
    int err = errno;
    char what[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fail(step, err, 125, "%s: %s: %s", step, what, strerror(err));
}

/* --- the plan ------------------------------------------------------------------------------ */

struct cursor {
    const char *p, *end;
};

__attribute__((noreturn)) static void bad_plan(void) {
    fail("setup", EINVAL, 125, "ipydock-pid1: a malformed plan");
}

static char *next_bytes(struct cursor *c, size_t *len_out) {
    size_t len = 0;
    if (c->p >= c->end || !isdigit((unsigned char)*c->p))
        bad_plan();
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        len = len * 10 + (size_t)(*c->p++ - '0');
        if (len > MAX_MESSAGE)
            bad_plan();
    }
    if (c->p >= c->end || *c->p++ != ':' || (size_t)(c->end - c->p) < len)
        bad_plan();
    char *s = malloc(len + 1);
    if (!s)
        bad_plan();
    memcpy(s, c->p, len);
    s[len] = '\0';
    c->p += len;
    if (len_out)
        *len_out = len;
    return s;
}

static char *next_str(struct cursor *c) {
    return next_bytes(c, NULL);
}

static long long next_int(struct cursor *c) {
    char *s = next_str(c), *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0')
        bad_plan();
    free(s);
    return v;
}

static unsigned long long next_u64(struct cursor *c) {
    char *s = next_str(c), *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0')
        bad_plan();
    free(s);
    return v;
}

static void *zeroed(size_t count, size_t size) {
    void *items = calloc(count + 1, size); /* one more: never an empty allocation */
    if (!items)
        bad_plan();
    return items;
}

/* A count (at most MAX) of items that follow, and zeroed room for them. */
static void *next_array(struct cursor *c, long long *count, long long max, size_t size) {
    *count = next_int(c);
    if (*count < 0 || *count > max)
        bad_plan();
    return zeroed((size_t)*count, size);
}

static char **next_list(struct cursor *c, long long *count) {
    char **items = next_array(c, count, 65536, sizeof *items);
    for (long long i = 0; i < *count; i++)
        items[i] = next_str(c);
    return items;
}

struct mount_step {
    char *target, *fstype, *source, *data, *kind;
    unsigned long flags;
    int readonly;
};

struct device {
    char *path, *type, *source;
    long long major, minor, mode, uid, gid;
};

#define N_SLOTS 6
struct plan {
    /* report, stdin, stdout, stderr, go, console: indexes of the received fds, or -1 */
    int slots[N_SLOTS];
    char *root;
    struct mount_step root_mount;
    long long clone_flags;
    char *netns_path, *hostname;
    long long n_mounts, n_devices, n_symlinks, n_masked, n_readonly, n_args, n_env, n_groups;
    long long n_rlimits, n_cgroup_procs;
    struct mount_step *mounts;
    struct device *devices;
    char **symlinks; /* source, link, source, link... */
    char **masked, **readonly_paths, **args, **env, **cgroup_procs;
    int readonly_rootfs, no_new_privs, die_with_parent, rootless;
    char *cwd;
    long long uid, gid;
    gid_t *groups;
    unsigned long long cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    char *seccomp;
    size_t seccomp_len;
    long long seccomp_flags;
    long long (*rlimits)[3];
    int terminal;
    long long rows, cols;
};

static void read_mount_step(struct cursor *c, struct mount_step *m) {
    m->target = next_str(c);
    m->fstype = next_str(c);
    m->source = next_str(c);
    m->flags = (unsigned long)next_u64(c);
    m->data = next_str(c);
    m->readonly = (int)next_int(c);
    m->kind = next_str(c);
}

static void read_plan(struct cursor *c, struct plan *pl) {
    char *version = next_str(c);
    if (strcmp(version, "ipydock-pid1 1") != 0)
        fail("setup", EINVAL, 125, "ipydock-pid1: a plan for another version (%s)", version);
    for (int i = 0; i < N_SLOTS; i++)
        pl->slots[i] = (int)next_int(c);
    pl->root = next_str(c);
    read_mount_step(c, &pl->root_mount);
    pl->clone_flags = next_int(c);
    pl->netns_path = next_str(c);
    pl->hostname = next_str(c);
    pl->mounts = next_array(c, &pl->n_mounts, 65536, sizeof *pl->mounts);
    for (long long i = 0; i < pl->n_mounts; i++)
        read_mount_step(c, &pl->mounts[i]);
    pl->devices = next_array(c, &pl->n_devices, 65536, sizeof *pl->devices);
    for (long long i = 0; i < pl->n_devices; i++) {
        struct device *d = &pl->devices[i];
        d->path = next_str(c);
        d->major = next_int(c);
        d->minor = next_int(c);
        d->mode = next_int(c);
        d->type = next_str(c);
        d->uid = next_int(c);
        d->gid = next_int(c);
        d->source = next_str(c);
    }
    pl->symlinks = next_list(c, &pl->n_symlinks);
    if (pl->n_symlinks % 2)
        bad_plan();
    pl->n_symlinks /= 2;
    pl->masked = next_list(c, &pl->n_masked);
    pl->readonly_paths = next_list(c, &pl->n_readonly);
    pl->readonly_rootfs = (int)next_int(c);
    pl->cwd = next_str(c);
    pl->args = next_list(c, &pl->n_args);
    if (pl->n_args < 1)
        bad_plan();
    pl->env = next_list(c, &pl->n_env);
    pl->uid = next_int(c);
    pl->gid = next_int(c);
    char **groups = next_list(c, &pl->n_groups);
    pl->groups = zeroed((size_t)pl->n_groups, sizeof *pl->groups);
    for (long long i = 0; i < pl->n_groups; i++)
        pl->groups[i] = (gid_t)strtoul(groups[i], NULL, 10);
    pl->cap_bounding = next_u64(c);
    pl->cap_effective = next_u64(c);
    pl->cap_permitted = next_u64(c);
    pl->cap_inheritable = next_u64(c);
    pl->cap_ambient = next_u64(c);
    pl->no_new_privs = (int)next_int(c);
    pl->die_with_parent = (int)next_int(c);
    pl->seccomp = next_bytes(c, &pl->seccomp_len);
    pl->seccomp_flags = next_int(c);
    pl->rlimits = next_array(c, &pl->n_rlimits, 64, sizeof *pl->rlimits);
    for (long long i = 0; i < pl->n_rlimits; i++)
        for (int j = 0; j < 3; j++)
            pl->rlimits[i][j] = next_int(c);
    pl->cgroup_procs = next_list(c, &pl->n_cgroup_procs);
    pl->rootless = (int)next_int(c);
    pl->terminal = (int)next_int(c);
    pl->rows = next_int(c);
    pl->cols = next_int(c);
    if (c->p != c->end)
        bad_plan();
}

/* --- paths (paths.py) ---------------------------------------------------------------------- */

static char *join(const char *a, const char *b) {
    size_t la = strlen(a);
    char *out = malloc(la + strlen(b) + 2);
    if (!out)
        bad_plan();
    strcpy(out, a);
    if (la == 0 || a[la - 1] != '/')
        strcat(out, "/");
    strcat(out, b);
    return out;
}

/* The host path of container PATH under ROOT, resolving symlinks with ROOT as "/" (..  and
 * absolute links stay inside); missing parts are kept literally: paths.secure_join. */
static char *secure_join(const char *root, const char *path) {
    char *rest = strdup(path);  /* the components still to walk, "/"-separated */
    char *resolved = strdup(""); /* walked, "/"-separated, relative to root */
    int links = 0;
    if (!rest || !resolved)
        bad_plan();
    for (;;) {
        char *p = rest;
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char part[NAME_MAX + 2];
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
            fail_errno();
        }
        memcpy(part, p, len);
        part[len] = '\0';
        memmove(rest, p + len, strlen(p + len) + 1);
        if (strcmp(part, ".") == 0)
            continue;
        if (strcmp(part, "..") == 0) {
            char *last = strrchr(resolved, '/');
            if (last)
                *last = '\0';
            else
                resolved[0] = '\0';
            continue;
        }
        char *within = resolved[0] ? join(resolved, part) : strdup(part);
        char *candidate = join(root, within);
        struct stat st;
        if (lstat(candidate, &st) != 0) {
            if (errno != ENOENT)
                fail_errno();
            free(resolved);
            resolved = within;
            free(candidate);
            continue;
        }
        if (!S_ISLNK(st.st_mode)) {
            free(resolved);
            resolved = within;
            free(candidate);
            continue;
        }
        if (++links > MAX_LINKS) {
            errno = ELOOP;
            fail(step, ELOOP, 125, "%s: too many levels of symbolic links in %s", step, path);
        }
        char target[PATH_MAX + 1];
        ssize_t n = readlink(candidate, target, PATH_MAX);
        if (n < 0)
            fail_errno();
        target[n] = '\0';
        free(candidate);
        free(within);
        if (target[0] == '/')
            resolved[0] = '\0';
        char *next = malloc((size_t)n + strlen(rest) + 2);
        if (!next)
            bad_plan();
        strcpy(next, target);
        strcat(next, "/");
        strcat(next, rest);
        free(rest);
        rest = next;
    }
    char *out = resolved[0] ? join(root, resolved) : strdup(root);
    free(rest);
    free(resolved);
    return out;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int lexists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* os.makedirs(path, mode, exist_ok=True): the parents only when the path's own mkdir finds
 * one missing (the usual target exists, or only its last part is missing: one call). */
static void makedirs(const char *path, mode_t mode) {
    if (mkdir(path, mode) == 0)
        return;
    if (errno == ENOENT) {
        char *copy = strdup(path), *slash;
        if (!copy)
            bad_plan();
        while ((slash = strrchr(copy, '/')) && slash[1] == '\0' && slash != copy)
            *slash = '\0'; /* "a/b/" is "a/b" */
        slash = strrchr(copy, '/');
        if (slash && slash != copy) {
            *slash = '\0';
            makedirs(copy, mode);
        }
        free(copy);
        if (mkdir(path, mode) == 0)
            return;
    }
    if (errno != EEXIST)
        fail_errno();
    if (!is_dir(path)) {
        errno = EEXIST;
        fail_errno();
    }
}

static char *dirname_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* paths.ensure_target: resolve PATH under ROOT, create it as a "dir" or an empty "file". */
static char *ensure_target(const char *root, const char *path, const char *kind) {
    char *host = secure_join(root, path);
    if (strcmp(kind, "dir") == 0) {
        makedirs(host, 0755);
    } else if (!lexists(host)) {
        char *parent = dirname_of(path);
        makedirs(secure_join(root, parent), 0755);
        int fd = open(host, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            fail_errno();
        close(fd);
    }
    return host;
}

/* --- the steps (spawn._build, spawn._finish) ----------------------------------------------- */

static const char *or_null(const char *s) {
    return s[0] ? s : NULL;
}

static void do_mount(const char *source, const char *target, const char *fstype,
                     unsigned long flags, const char *data) {
    if (mount(source, target, fstype, flags, data) != 0)
        fail_call("mount %s", target);
}

static void mount_step(const struct mount_step *m, const char *target) {
    unsigned long flags = m->flags | (m->readonly && !(m->flags & MS_BIND) ? MS_RDONLY : 0);
    do_mount(m->source, target, or_null(m->fstype), flags, or_null(m->data));
    if (m->readonly && (m->flags & MS_BIND)) {
        struct statvfs sv;
        if (statvfs(target, &sv) != 0)
            fail_errno();
        do_mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | (sv.f_flag & PRESERVED),
                 NULL);
    }
}

static void loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strcpy(req.ifr_name, "lo");
    if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &req) != 0)
        fail_errno();
    req.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &req) != 0)
        fail_errno();
    close(sock);
}

static void namespaces(const struct plan *pl, int came_from, long long *flags_out) {
    long long flags = pl->clone_flags;
    set_step("namespaces");
    if (came_from >= 0) { /* the candidate's own network namespace, lo up */
        if ((flags & CLONE_NEWNET) && !(flags & CLONE_NEWUSER) && !pl->netns_path[0]) {
            flags &= ~(long long)CLONE_NEWNET; /* it is the new one the plan wants */
        } else if (setns(came_from, CLONE_NEWNET) != 0) {
            fail_call("setns");
        }
        close(came_from);
    }
    if (pl->netns_path[0]) {
        int fd = open(pl->netns_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fail_errno();
        if (setns(fd, CLONE_NEWNET) != 0)
            fail_call("setns");
        close(fd);
    }
    if (unshare((int)flags) != 0)
        fail_call("unshare");
    if (flags & CLONE_NEWNET) {
        set_step("loopback");
        loopback_up();
    }
    *flags_out = flags;
}

static void make_devices(const struct plan *pl) {
    set_step("devices");
    for (long long i = 0; i < pl->n_devices; i++) {
        const struct device *d = &pl->devices[i];
        char *path = secure_join(pl->root, d->path);
        char *parent = dirname_of(path);
        if (!is_dir(parent))
            makedirs(parent, 0755);
        if (pl->rootless) { /* no mknod in a user namespace: the host's node, bound */
            if (!lexists(path)) {
                int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                if (fd < 0)
                    fail_errno();
                close(fd);
            }
            do_mount(d->source[0] ? d->source : d->path, path, NULL, MS_BIND, NULL);
            continue;
        }
        if (!lexists(path)) {
            mode_t kind = strcmp(d->type, "b") == 0 ? S_IFBLK : S_IFCHR;
            if (mknod(path, kind | (mode_t)d->mode,
                      makedev((unsigned)d->major, (unsigned)d->minor)) != 0)
                fail_errno();
        }
        if (chmod(path, (mode_t)d->mode) != 0)
            fail_errno();
        if ((d->uid != 0 || d->gid != 0) && chown(path, (uid_t)d->uid, (gid_t)d->gid) != 0)
            fail_errno();
    }
    for (long long i = 0; i < pl->n_symlinks; i++) {
        char *path = secure_join(pl->root, pl->symlinks[2 * i + 1]);
        if (!lexists(path) && symlink(pl->symlinks[2 * i], path) != 0)
            fail_errno();
    }
}

static void harden_paths(const struct plan *pl) {
    struct stat st;
    for (long long i = 0; i < pl->n_masked; i++) {
        const char *path = pl->masked[i];
        set_step("mask %s", path);
        if (is_dir(path))
            do_mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL);
        else if (stat(path, &st) == 0)
            do_mount("/dev/null", path, NULL, MS_BIND, NULL);
    }
    for (long long i = 0; i < pl->n_readonly; i++) {
        const char *path = pl->readonly_paths[i];
        if (stat(path, &st) != 0)
            continue;
        set_step("readonly %s", path);
        struct mount_step m = {.target = (char *)path, .fstype = "", .source = (char *)path,
                               .data = "", .kind = "dir", .flags = MS_BIND | MS_REC,
                               .readonly = 1};
        mount_step(&m, path);
    }
    if (pl->readonly_rootfs) {
        set_step("readonly rootfs");
        do_mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    }
}

static const char *env_value(const struct plan *pl, const char *name) {
    size_t len = strlen(name);
    for (long long i = pl->n_env - 1; i >= 0; i--)
        if (strncmp(pl->env[i], name, len) == 0 && pl->env[i][len] == '=')
            return pl->env[i] + len + 1;
    return "";
}

/* The command's path as Go's exec.LookPath finds it in runc, with docker's error texts. */
static char *lookup(const struct plan *pl) {
    const char *command = pl->args[0];
    struct stat st;
    if (strchr(command, '/')) {
        if (stat(command, &st) != 0)
            fail("exec", ENOENT, 127, "exec: \"%s\": stat %s: no such file or directory",
                 command, command);
        return strdup(command);
    }
    char *path_var = strdup(env_value(pl, "PATH"));
    char *save = path_var;
    for (;;) {
        char *colon = strchr(save, ':');
        if (colon)
            *colon = '\0';
        char *candidate = join(save[0] ? save : ".", command);
        if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
            return candidate;
        free(candidate);
        if (!colon)
            break;
        save = colon + 1;
    }
    fail("exec", ENOENT, 127, "exec: \"%s\": executable file not found in $PATH", command);
}

static void load_seccomp(const struct plan *pl) {
    struct sock_fprog prog = {.len = (unsigned short)(pl->seccomp_len / 8),
                              .filter = (struct sock_filter *)pl->seccomp};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned)pl->seccomp_flags, &prog) != 0) {
        int err = errno;
        fail("seccomp", err, 125, "loading the seccomp filter: seccomp: %s", strerror(err));
    }
}

static int last_cap(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    char buf[16] = {0};
    if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
        fail_errno();
    close(fd);
    return atoi(buf);
}

static void credentials(const struct plan *pl, int last) {
    set_step("credentials");
    for (long long i = 0; i < pl->n_rlimits; i++) {
        struct rlimit rl = {
            .rlim_cur = pl->rlimits[i][1] < 0 ? RLIM_INFINITY : (rlim_t)pl->rlimits[i][1],
            .rlim_max = pl->rlimits[i][2] < 0 ? RLIM_INFINITY : (rlim_t)pl->rlimits[i][2]};
        if (setrlimit((int)pl->rlimits[i][0], &rl) != 0)
            fail_errno();
    }
    int early_filter = pl->seccomp_len > 0 && !pl->no_new_privs;
    if (early_filter)
        load_seccomp(pl);
    for (int cap = 0; cap <= last; cap++)
        if (!(pl->cap_bounding >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            fail_call("prctl %d", PR_CAPBSET_DROP);
    /* a user namespace of one mapped id denies setgroups */
    if (setgroups((size_t)pl->n_groups, pl->groups) != 0 && !(pl->rootless && errno == EPERM))
        fail_errno();
    if (setresgid((gid_t)pl->gid, (gid_t)pl->gid, (gid_t)pl->gid) != 0)
        fail_errno();
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
        fail_call("prctl %d", PR_SET_KEEPCAPS);
    if (setresuid((uid_t)pl->uid, (uid_t)pl->uid, (uid_t)pl->uid) != 0)
        fail_errno();
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
        fail_call("prctl %d", PR_SET_KEEPCAPS);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0)
        fail_call("capget");
    unsigned long long permitted = data[0].permitted | (unsigned long long)data[1].permitted << 32;
    unsigned long long eff = pl->cap_effective & permitted, prm = pl->cap_permitted & permitted,
                       inh = pl->cap_inheritable & permitted;
    data[0].effective = (__u32)eff;
    data[1].effective = (__u32)(eff >> 32);
    data[0].permitted = (__u32)prm;
    data[1].permitted = (__u32)(prm >> 32);
    data[0].inheritable = (__u32)inh;
    data[1].inheritable = (__u32)(inh >> 32);
    if (syscall(SYS_capset, &header, data) != 0)
        fail_call("capset");
    for (int cap = 0; cap <= last; cap++)
        if ((pl->cap_ambient >> cap & 1) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
            fail_call("prctl %d", PR_CAP_AMBIENT);
    if (pl->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail_call("prctl %d", PR_SET_NO_NEW_PRIVS);
    if (pl->seccomp_len > 0 && !early_filter)
        load_seccomp(pl);
    if (pl->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        fail_call("prctl %d", PR_SET_PDEATHSIG);
}

/* spawn.default_signals: every disposition back to default, nothing blocked. */
static void default_signals(void) {
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The environment as Python's dict(item.split("=", 1)) keeps it: a name's first place, its
 * last value. */
static char **environment(const struct plan *pl) {
    char **out = zeroed((size_t)pl->n_env, sizeof *out);
    long long n = 0;
    for (long long i = 0; i < pl->n_env; i++) {
        const char *eq = strchr(pl->env[i], '=');
        if (!eq)
            fail("setup", 0, 125, "ValueError('an environment entry without \"=\": %s')",
                 pl->env[i]);
        size_t len = (size_t)(eq - pl->env[i]) + 1;
        int seen = 0;
        for (long long j = 0; j < i && !seen; j++)
            seen = strncmp(pl->env[j], pl->env[i], len) == 0;
        if (seen)
            continue;
        const char *last = pl->env[i];
        for (long long j = i + 1; j < pl->n_env; j++)
            if (strncmp(pl->env[j], pl->env[i], len) == 0)
                last = pl->env[j];
        out[n++] = (char *)last;
    }
    return out;
}

static void setup_stdio(const int stdio[3]) {
    set_step("stdio");
    int high[3];
    for (int i = 0; i < 3; i++) {
        high[i] = stdio[i] >= 0 ? fcntl(stdio[i], F_DUPFD_CLOEXEC, 10)
                                : open("/dev/null", O_RDWR | O_CLOEXEC);
        if (high[i] < 0)
            fail_errno();
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(high[i], i) < 0)
            fail_errno();
        close(high[i]);
    }
}

/* console.setup_in_child: a terminal from the container's own devpts, its master sent back
 * on SOCK, the slave our controlling terminal and stdio, and bound on /dev/console. */
static void terminal(const struct plan *pl, int sock) {
    set_step("terminal");
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), unlock = 0;
    unsigned int number;
    if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) != 0 ||
        ioctl(master, TIOCGPTN, &number) != 0)
        fail_errno();
    char path[64];
    snprintf(path, sizeof path, "/dev/pts/%u", number);
    int slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0)
        fail_errno();
    if (pl->rows > 0 && pl->cols > 0) {
        struct winsize size = {.ws_row = (unsigned short)pl->rows,
                               .ws_col = (unsigned short)pl->cols};
        if (ioctl(slave, TIOCSWINSZ, &size) != 0)
            fail_errno();
    }
    if (pl->uid != 0 && fchown(slave, (uid_t)pl->uid, (gid_t)-1) != 0)
        fail_errno();
    if (!lexists("/dev/console")) {
        int fd = open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            fail_errno();
        close(fd);
    }
    do_mount(path, "/dev/console", NULL, MS_BIND, NULL);
    static const char mark[] = "terminal";
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = (void *)mark, .iov_len = sizeof mark - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
    if (sendmsg(sock, &msg, 0) < 0)
        fail_errno();
    close(sock);
    close(master);
    if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) != 0)
        fail_errno();
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            fail_errno();
    if (slave > 2)
        close(slave);
}

static void run(const struct plan *pl, const int fds[N_SLOTS], int came_from, int last) {
    int stdio[3] = {fds[1], fds[2], fds[3]}, go_fd = fds[4];
    setup_stdio(stdio);
    if (pl->die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    long long flags;
    namespaces(pl, came_from, &flags);
    set_step("cgroup");
    int *cgroup_fds = zeroed((size_t)pl->n_cgroup_procs, sizeof *cgroup_fds);
    for (long long i = 0; i < pl->n_cgroup_procs; i++)
        if ((cgroup_fds[i] = open(pl->cgroup_procs[i], O_WRONLY | O_CLOEXEC)) < 0)
            fail_errno();
    set_step("rootfs");
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    mount_step(&pl->root_mount, pl->root_mount.target);
    for (long long i = 0; i < pl->n_mounts; i++) {
        const struct mount_step *m = &pl->mounts[i];
        set_step("mount %s", m->target);
        const char *kind = m->kind;
        if (strcmp(kind, "auto") == 0)
            kind = is_dir(m->source) ? "dir" : "file";
        mount_step(m, ensure_target(pl->root, m->target, kind));
    }
    make_devices(pl);
    if (pl->hostname[0]) {
        set_step("hostname");
        if (sethostname(pl->hostname, strlen(pl->hostname)) != 0)
            fail_call("sethostname");
    }
    set_step("cwd");
    ensure_target(pl->root, pl->cwd, "dir");
    set_step("pivot_root");
    if (chdir(pl->root) != 0)
        fail_errno();
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        fail_call("pivot_root");
    if (umount2(".", MNT_DETACH) != 0)
        fail_call("umount .");
    if (chdir("/") != 0)
        fail_errno();
    if (fds[5] >= 0)
        terminal(pl, fds[5]);
    harden_paths(pl);
    set_step("chdir");
    if (chdir(pl->cwd) != 0)
        fail_errno();
    char *path = lookup(pl);
    set_step("cgroup join");
    for (long long i = 0; i < pl->n_cgroup_procs; i++) {
        if (write(cgroup_fds[i], "0", 1) != 1)
            fail_errno();
        close(cgroup_fds[i]);
    }
    credentials(pl, last);
    if (go_fd >= 0) {
        static const char ready[] = "{\"ready\": true}\n";
        write_all(report_fd, ready, sizeof ready - 1);
        char go = 0;
        if (read(go_fd, &go, 1) != 1 || go != 'g')
            fail("start", 0, 137, "start was cancelled");
    }
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    default_signals();
    char **env = environment(pl);
    execve(path, pl->args, env);
    int err = errno;
    const char *command = pl->args[0];
    if (err == EACCES)
        fail("exec", err, 126, "exec: \"%s\": permission denied", command);
    fail("exec", err, err == ENOENT ? 127 : 126, "exec: \"%s\": %s", command, strerror(err));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ipydock-pid1 SOCK CAME_FROM_NETNS (started by ipydock)\n");
        return 2;
    }
    int sock = atoi(argv[1]), came_from = atoi(argv[2]);
    int last = last_cap(); /* /proc of the host's mount namespace, before any change */
    char *buf = malloc(MAX_MESSAGE);
    char control[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct iovec iov = {.iov_base = buf, .iov_len = MAX_MESSAGE};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    if (!buf)
        return 125;
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n == 0 ? 0 : 125; /* discarded: no container came */
    close(sock);
    int received[MAX_FDS], n_received = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            n_received = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            if (n_received > MAX_FDS)
                return 125;
            memcpy(received, CMSG_DATA(c), (size_t)n_received * sizeof(int));
        }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        return 125;
    struct cursor cursor = {.p = buf, .end = buf + n};
    struct plan pl;
    memset(&pl, 0, sizeof pl);
    /* the report pipe comes first: errors of the plan itself go there */
    if (n_received > 0)
        report_fd = received[0];
    read_plan(&cursor, &pl);
    int fds[N_SLOTS];
    for (int i = 0; i < N_SLOTS; i++) {
        if (pl.slots[i] < -1 || pl.slots[i] >= n_received)
            bad_plan();
        fds[i] = pl.slots[i] >= 0 ? received[pl.slots[i]] : -1;
    }
    report_fd = fds[0];
    run(&pl, fds, came_from, last);
    return 125;
}
