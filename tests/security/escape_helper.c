/* Escape attempts that busybox has no applet for: each makes one raw system call (or a short
 * sequence) and says what the kernel answered.  Built statically by the suite at test time
 * (gcc -static), bind-mounted read-only into the container.
 *
 *   escape_helper NAME [ARG]   prints "NAME: ok" and exits 0 when the call worked (an escape),
 *                              "NAME: ERRNO_NAME" and exits 1 when it was refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int report(const char *name, long ret) {
    if (ret >= 0) {
        printf("%s: ok\n", name);
        return 0;
    }
    printf("%s: %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    return 1;
}

/* chroot into a subdirectory, climb out with "..", chroot there: the classic breakout.  It
 * reaches only the container's own root when pivot_root left nothing above it. */
static int chroot_breakout(const char *target) {
    mkdir("/tmp/.breakout", 0700);
    if (chroot("/tmp/.breakout") < 0)
        return report("chroot", -1);
    for (int i = 0; i < 64; i++)
        chdir("..");
    chroot(".");
    int fd = open(target, O_RDONLY);
    if (fd < 0)
        return report("chroot-breakout", -1);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("read: %s\n", buf);
    return report("chroot-breakout", 0);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *what = argv[1];
    const char *arg = argc > 2 ? argv[2] : "";
    if (!strcmp(what, "keyctl"))
        return report(what, syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID,
                                    KEY_SPEC_SESSION_KEYRING, 1));
    if (!strcmp(what, "add_key"))
        return report(what, syscall(SYS_add_key, "user", "ipds", "x", 1,
                                    KEY_SPEC_PROCESS_KEYRING));
    if (!strcmp(what, "bpf")) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        return report(what, syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
    }
    if (!strcmp(what, "perf_event_open")) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.type = PERF_TYPE_SOFTWARE;
        attr.size = sizeof attr;
        attr.config = PERF_COUNT_SW_CPU_CLOCK;
        attr.exclude_kernel = 1;
        return report(what, syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
    }
    if (!strcmp(what, "init_module"))
        return report(what, syscall(SYS_init_module, NULL, 0, ""));
    if (!strcmp(what, "finit_module"))
        return report(what, syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(what, "open_by_handle_at")) { /* "shocker": open a host inode by handle */
        struct { unsigned int bytes; int type; unsigned char f[8]; } h = {8, 1, {2}};
        return report(what, syscall(SYS_open_by_handle_at, AT_FDCWD, &h, O_RDONLY));
    }
    if (!strcmp(what, "unshare-user-mount")) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
            return report("unshare", -1);
        return report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    }
    if (!strcmp(what, "clone-newuser")) { /* the same through clone(2) flags */
        pid_t pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(0);
        return report(what, pid);
    }
    if (!strcmp(what, "mount"))
        return report(what, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(what, "sethostname"))
        return report(what, sethostname("ipds-escaped", 12));
    if (!strcmp(what, "clock_settime")) { /* sets the time it reads: harmless if it works */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        return report(what, clock_settime(CLOCK_REALTIME, &now));
    }
    if (!strcmp(what, "ptrace"))
        return report(what, ptrace(PTRACE_ATTACH, atoi(arg), 0, 0));
    if (!strcmp(what, "kill"))
        return report(what, kill(atoi(arg), SIGKILL));
    if (!strcmp(what, "chroot-breakout"))
        return chroot_breakout(arg);
    fprintf(stderr, "unknown attempt %s\n", what);
    return 2;
}
