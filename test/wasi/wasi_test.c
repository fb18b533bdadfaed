/* hb_beamr's WASI test program: one command per feature, chosen by argv[1].
 * Built by scripts/build-fixtures.sh into test/wasi/wasi_test.wasm. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int args(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    return 0;
}

static int env(void) {
    for (char **e = environ; *e; e++) printf("%s\n", *e);
    const char *home = getenv("HOME");
    printf("HOME is %s\n", home ? home : "unset");
    return 0;
}

/* Copies stdin to stdout, upper-cased, and counts the bytes on stderr. */
static int cat(void) {
    char buf[100];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
        fwrite(buf, 1, n, stdout);
        total += n;
    }
    fprintf(stderr, "%zu bytes\n", total);
    return 0;
}

static int fail(const char *what) {
    printf("%s: %s\n", what, strerror(errno));
    return 1;
}

/* Reads /data/in.txt, writes /data/out.txt (its reverse), appends, seeks,
 * checks sizes. */
static int files(void) {
    FILE *in = fopen("/data/in.txt", "r");
    if (!in) return fail("open in.txt");
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[n] = 0;
    printf("in.txt: %s\n", buf);
    FILE *out = fopen("/data/out.txt", "w");
    if (!out) return fail("open out.txt");
    for (size_t i = 0; i < n; i++) fputc(buf[n - 1 - i], out);
    fclose(out);
    out = fopen("/data/out.txt", "a");
    if (!out) return fail("append out.txt");
    fputs("!", out);
    fclose(out);
    int fd = open("/data/out.txt", O_RDWR);
    if (fd < 0) return fail("open rw");
    if (lseek(fd, 1, SEEK_SET) != 1) return fail("lseek");
    if (write(fd, "__", 2) != 2) return fail("write");
    if (pwrite(fd, "@", 1, 0) != 1) return fail("pwrite");
    char first[3] = {0};
    if (pread(fd, first, 2, 0) != 2) return fail("pread");
    printf("pread: %s\n", first);
    struct stat st;
    if (fstat(fd, &st) != 0) return fail("fstat");
    printf("size: %lld\n", (long long)st.st_size);
    close(fd);
    errno = 0;
    if (fopen("/data/missing.txt", "r") == NULL) printf("missing: %s\n", strerror(errno));
    if (fopen("/etc/passwd", "r") == NULL) printf("outside: %s\n", strerror(errno));
    if (fopen("/data/../../etc/passwd", "r") == NULL) printf("escape: %s\n", strerror(errno));
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list(const char *path) {
    DIR *d = opendir(path);
    if (!d) { printf("opendir %s: %s\n", path, strerror(errno)); return; }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("%s:", path);
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
}

/* Directories: mkdir, nested files, listing, rename, unlink, rmdir. */
static int dirs(void) {
    if (mkdir("/data/sub", 0755) != 0) return fail("mkdir sub");
    if (mkdir("/data/sub", 0755) != 0) printf("mkdir again: %s\n", strerror(errno));
    if (mkdir("/data/sub/deeper", 0755) != 0) return fail("mkdir deeper");
    FILE *f = fopen("/data/sub/deeper/a.txt", "w");
    if (!f) return fail("create a.txt");
    fputs("alpha", f);
    fclose(f);
    f = fopen("/data/sub/b.txt", "w");
    if (!f) return fail("create b.txt");
    fputs("beta", f);
    fclose(f);
    list("/data");
    list("/data/sub");
    if (rmdir("/data/sub") != 0) printf("rmdir sub: %s\n", strerror(errno));
    if (rename("/data/sub/b.txt", "/data/sub/deeper/c.txt") != 0) return fail("rename file");
    if (rename("/data/sub/deeper", "/data/moved") != 0) return fail("rename dir");
    if (unlink("/data/old.txt") != 0) return fail("unlink");
    if (unlink("/data/old.txt") != 0) printf("unlink again: %s\n", strerror(errno));
    list("/data");
    list("/data/moved");
    struct stat st;
    if (stat("/data/moved", &st) == 0) printf("moved is a directory: %d\n", S_ISDIR(st.st_mode));
    if (stat("/data/moved/a.txt", &st) == 0) printf("a.txt size: %lld\n", (long long)st.st_size);
    return 0;
}

static int clock_random(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("realtime: %lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
    struct timespec nap = {0, 2000000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("after sleep: %lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
    unsigned char r[8];
    arc4random_buf(r, sizeof r);
    printf("random:");
    for (int i = 0; i < 8; i++) printf(" %02x", r[i]);
    printf("\n");
    return 0;
}

/* Writes COUNT chunks of SIZE bytes to stdout: with write(2) each, or with
 * printf through stdio's buffer. */
static int spew(int use_stdio, long count, long size) {
    static char buf[65536];
    if (size > (long)sizeof buf) size = sizeof buf;
    for (long i = 0; i < size; i++) buf[i] = 'a' + i % 26;
    buf[size - 1] = '\n';
    for (long i = 0; i < count; i++) {
        if (use_stdio) {
            fwrite(buf, 1, size, stdout);
        } else if (write(1, buf, size) != size) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "args")) return args(argc, argv);
    if (!strcmp(cmd, "env")) return env();
    if (!strcmp(cmd, "cat")) return cat();
    if (!strcmp(cmd, "files")) return files();
    if (!strcmp(cmd, "dirs")) return dirs();
    if (!strcmp(cmd, "clock")) return clock_random();
    if (!strcmp(cmd, "exit") && argc > 2) {
        printf("exiting with %s\n", argv[2]);
        exit(atoi(argv[2]));
    }
    if (!strcmp(cmd, "sleep") && argc > 2) {
        sleep(atoi(argv[2]));
        printf("slept\n");
        return 0;
    }
    if (!strcmp(cmd, "abort")) {
        printf("about to abort\n");
        fflush(stdout);
        abort();
    }
    if (!strcmp(cmd, "write") && argc > 3) return spew(0, atol(argv[2]), atol(argv[3]));
    if (!strcmp(cmd, "printf") && argc > 3) return spew(1, atol(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: wasi_test args|env|cat|files|dirs|clock|exit N|sleep S|abort|write N SIZE|printf N SIZE\n");
    return 2;
}
