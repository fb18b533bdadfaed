/* hb_beamr's CLI test program (test/hb_beamr_cli_tests.erl): runs its
 * arguments as a list of file operations, in order:
 *   ls DIR          prints "DIR: NAME NAME..." (sorted, without . and ..)
 *   put PATH TEXT   creates or truncates PATH and writes TEXT
 *   cat PATH        prints "PATH: CONTENTS"
 * and exits with 1 at the first operation that fails (errno on stderr). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static int ls(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("%s:", dir);
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
    return 0;
}

static int put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int cat(const char *path) {
    char buf[256];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("%s: %s\n", path, buf);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        int r, at = i;
        if (!strcmp(argv[i], "ls") && i + 1 < argc) r = ls(argv[++i]);
        else if (!strcmp(argv[i], "put") && i + 2 < argc) r = put(argv[i + 1], argv[i + 2]), i += 2;
        else if (!strcmp(argv[i], "cat") && i + 1 < argc) r = cat(argv[++i]);
        else { fprintf(stderr, "usage: cli_fs [ls DIR | put PATH TEXT | cat PATH]...\n"); return 2; }
        if (r) { fprintf(stderr, "%s %s: %s\n", argv[at], argv[at + 1], strerror(errno)); return 1; }
    }
    return 0;
}
