/* The native `ipydock` command: launcher.py's client side, without starting Python.
 *
 * It speaks launcher.py's protocol with the warm command server (ipydock/cli/server.py) and
 * does what launcher.run_remote does, so that the ~12 ms of a CPython start is not paid by
 * every command that the server runs anyway:
 *
 *   connect <runtime dir>/cmd-<key>.sock (SOCK_SEQPACKET)
 *   send "ipydock-1\0cwd\0umask\0argc\0argv...\0NAME=value..." + fds 0,1,2 (SCM_RIGHTS)
 *   <- "pid N": from now on INT TERM HUP QUIT WINCH USR1 USR2 are passed on to N
 *   <- "exit CODE": our exit code (> 128: killed, so the terminal's settings are restored);
 *      anything else (the server died under the worker): the "went away" line, exit 1
 *
 * Whenever launcher.py would run the command in its own process (IPYDOCK_SERVER off,
 * `system server ...`, no server, "stale"), this program execs the Python client with the
 * same arguments instead, and that runs it there (and starts a server if there is none).
 *
 * Built by ipydock/native_launcher.py, which bakes in (as C string literals):
 *   IPYDOCK_PYTHON     the interpreter of the installation (the Python client's)
 *   IPYDOCK_KEY        launcher.socket_key() as that interpreter computes it
 * C99 and POSIX (plus SCM_RIGHTS and SOCK_CLOEXEC) only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#ifndef IPYDOCK_PYTHON
#error "build with -DIPYDOCK_PYTHON=\"...\" (see ipydock/native_launcher.py)"
#endif
#ifndef IPYDOCK_KEY
#error "build with -DIPYDOCK_KEY=\"...\" (see ipydock/native_launcher.py)"
#endif

extern char **environ;

/* What `python -c` runs in the fallback: the console script's two lines, without the
 * working directory that -c puts first on sys.path (a checkout there would shadow ours). */
static const char BOOT[] =
    "import sys\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"
    "sys.argv[0] = 'ipydock'\n"
    "from ipydock.launcher import main\n"
    "sys.exit(main())\n";

static const int FORWARDED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2};

static volatile pid_t worker;

/* A growable byte buffer; on allocation failure it is marked broken and stays so. */
struct buf {
    char *data;
    size_t len, cap;
    int broken;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->broken)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->broken = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* A field of the request: NUL-separated, as "\0".join(fields). */
static void field(struct buf *b, const char *s)
{
    if (b->len > 0)
        put(b, "", 1);
    put(b, s, strlen(s));
}

static void field_number(struct buf *b, long n)
{
    char text[32];
    snprintf(text, sizeof text, "%ld", n);
    field(b, text);
}

/* The Python client with our arguments: it runs the command in its own process. */
static void run_here(char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args != NULL) {
        args[0] = IPYDOCK_PYTHON;
        args[1] = "-c";
        args[2] = (char *)BOOT;
        for (int i = 1; i < argc; i++)
            args[i + 2] = argv[i];
        execv(IPYDOCK_PYTHON, args);
    }
    fprintf(stderr, "Error: cannot start ipydock's Python client %s: %s; reinstall ipydock "
            "(scripts/setup.sh, or pip install -e .)\n", IPYDOCK_PYTHON, strerror(errno));
    exit(1);
}

static int enabled(void)
{
    const char *v = getenv("IPYDOCK_SERVER");
    if (v == NULL)
        return 1;
    return strcmp(v, "0") && strcmp(v, "no") && strcmp(v, "false") && strcmp(v, "off");
}

/* os.path.join(a, b) for a relative b. */
static void join(struct buf *b, const char *a, const char *name)
{
    size_t n = strlen(a);
    put(b, a, n);
    if (n > 0 && a[n - 1] != '/')
        put(b, "/", 1);
    put(b, name, strlen(name));
}

/* launcher.socket_path(): runtime_dir() and this installation's key. */
static int socket_path(struct sockaddr_un *addr)
{
    struct buf dir = {0}, path = {0};
    const char *chosen = getenv("IPYDOCK_RUNTIME_DIR");
    if (chosen != NULL && *chosen) {
        put(&dir, chosen, strlen(chosen));
    } else if (geteuid() == 0) {
        put(&dir, "/run/ipydock", strlen("/run/ipydock"));
    } else {
        const char *base = getenv("XDG_RUNTIME_DIR");
        char name[32];
        snprintf(name, sizeof name, "ipydock-%lu", (unsigned long)geteuid());
        join(&dir, base != NULL && *base ? base : "/tmp", name);
    }
    put(&dir, "", 1);
    if (!dir.broken)
        join(&path, dir.data, "cmd-" IPYDOCK_KEY ".sock");
    int ok = !path.broken && path.len < sizeof addr->sun_path;
    if (ok) {
        memset(addr, 0, sizeof *addr);
        addr->sun_family = AF_UNIX;
        memcpy(addr->sun_path, path.data, path.len);
    }
    free(dir.data);
    free(path.data);
    return ok;
}

/* os.getcwd(), whatever its length; NULL if it is gone. */
static char *current_dir(void)
{
    for (size_t size = 256; size <= ((size_t)1 << 20); size *= 2) {
        char *cwd = malloc(size);
        if (cwd == NULL)
            return NULL;
        if (getcwd(cwd, size) != NULL)
            return cwd;
        free(cwd);
        if (errno != ERANGE)
            return NULL;
    }
    return NULL;
}

/* The environment as os.environ has it: entries with a '=', the first of each name. */
static void environment(struct buf *b)
{
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        size_t name = (size_t)(eq - *e) + 1; /* with the '=' */
        int seen = 0;
        for (char **f = environ; f != e && !seen; f++)
            seen = strncmp(*f, *e, name) == 0;
        if (!seen)
            field(b, *e);
    }
}

/* launcher.encode_request(argv); 0 if the working directory is gone or memory is short. */
static int encode_request(struct buf *b, int argc, char **argv)
{
    char *cwd = current_dir();
    if (cwd == NULL)
        return 0;
    mode_t umask_now = umask(0);
    umask(umask_now);
    field(b, "ipydock-1");
    field(b, cwd);
    field_number(b, (long)umask_now);
    field_number(b, argc);
    for (int i = 0; i < argc; i++)
        field(b, argv[i]);
    environment(b);
    free(cwd);
    return !b->broken;
}

static int send_request(int sock, int argc, char **argv)
{
    struct buf request = {0};
    if (!encode_request(&request, argc, argv)) {
        free(request.data);
        return 0;
    }
    int fds[3] = {0, 1, 2};
    union {
        char space[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {.iov_base = request.data, .iov_len = request.len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    free(request.data);
    return sent == (ssize_t)request.len;
}

/* One reply, as a string; "" at EOF or on an error. */
static void receive(int sock, char *reply, size_t size)
{
    ssize_t n;
    do
        n = recv(sock, reply, size - 1, 0);
    while (n < 0 && errno == EINTR); /* a signal we passed on */
    reply[n > 0 ? n : 0] = '\0';
}

static void forward(int signum)
{
    int saved = errno;
    kill(worker, signum);
    errno = saved;
}

static void forward_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++)
        sigaction(FORWARDED[i], &action, NULL);
}

/* The command's exit code from the server, or -1 if it cannot take it (run it here). */
static int run_remote(int argc, char **argv)
{
    struct sockaddr_un addr;
    if (!socket_path(&addr))
        return -1;
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(sock);
        return -1;
    }
    struct termios terminal;
    int saved = isatty(0) && tcgetattr(0, &terminal) == 0;
    char reply[256];
    /* The worker may write to our stdout before it has told us its pid: a Ctrl-C meanwhile
     * waits (blocked) and then goes to it, instead of killing us under a running command. */
    sigset_t forwarded, mask;
    sigemptyset(&forwarded);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++)
        sigaddset(&forwarded, FORWARDED[i]);
    sigprocmask(SIG_BLOCK, &forwarded, &mask);
    if (!send_request(sock, argc, argv)) {
        sigprocmask(SIG_SETMASK, &mask, NULL);
        close(sock);
        return -1;
    }
    receive(sock, reply, sizeof reply);
    if (strncmp(reply, "pid ", 4) != 0) { /* "stale" (the sources changed) or gone */
        sigprocmask(SIG_SETMASK, &mask, NULL); /* the Python client, exec'd next, runs it */
        close(sock);
        return -1;
    }
    /* From here on the command runs there, never again here. */
    worker = (pid_t)strtol(reply + 4, NULL, 10);
    forward_signals();
    sigprocmask(SIG_SETMASK, &mask, NULL);
    receive(sock, reply, sizeof reply);
    close(sock);
    if (strncmp(reply, "exit ", 5) == 0) {
        int code = (int)strtol(reply + 5, NULL, 10);
        if (code > 128 && saved) /* killed: maybe in raw mode (run -it) */
            tcsetattr(0, TCSADRAIN, &terminal);
        return code;
    }
    if (saved)
        tcsetattr(0, TCSADRAIN, &terminal);
    /* The server (or the connection) died under the worker: the command's effect is
     * unknown, so do not repeat it. */
    static const char gone[] = "Error: the ipydock command server went away; see `ipydock "
                               "system server status`, or set IPYDOCK_SERVER=0\n";
    ssize_t written = write(2, gone, sizeof gone - 1);
    (void)written;
    return 1;
}

int main(int argc, char **argv)
{
    int local = argc >= 3 && strcmp(argv[1], "system") == 0 && strcmp(argv[2], "server") == 0;
    if (enabled() && !local) {
        int code = run_remote(argc - 1, argv + 1);
        if (code >= 0)
            return code;
    }
    run_here(argv);
    return 1;
}
