/* Files, directories, pipes, dup, mmap (anonymous and of a file), mprotect, mremap, brk: each
 * check prints one line, the same on Linux and on Keel (the tests compare the two). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/native-files";
    char path[256], path2[256];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    snprintf(path2, sizeof path2, "%s/b.txt", dir);

    /* stdio and raw calls on a file */
    FILE *f = fopen(path, "w");
    check(f != NULL, "fopen for writing");
    for (int i = 0; i < 1000; i++)
        fprintf(f, "line %d\n", i);
    check(fclose(f) == 0, "fclose");
    struct stat st;
    check(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 8890, "stat size and type");
    int fd = open(path, O_RDONLY);
    char buf[64];
    check(lseek(fd, 70, SEEK_SET) == 70 && read(fd, buf, 8) == 8 && memcmp(buf, "line 10\n", 8) == 0, "lseek + read");
    check(pread(fd, buf, 7, 0) == 7 && memcmp(buf, "line 0\n", 7) == 0, "pread");
    int fd2 = dup(fd);
    check(lseek(fd2, 0, SEEK_CUR) == 78, "dup shares the offset");
    close(fd2);
    check(fstat(fd, &st) == 0 && st.st_size == 8890, "fstat");
    close(fd);
    check(read(fd, buf, 1) == -1 && errno == EBADF, "read of a closed fd: EBADF");
    check(open("/no/such/file", O_RDONLY) == -1 && errno == ENOENT, "open of a missing file: ENOENT");
    check(write(1, (void *)16, 4) == -1 && errno == EFAULT, "write from a bad pointer: EFAULT");

    /* writev, append, rename, unlink */
    fd = open(path2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct iovec iov[2] = {{"abc", 3}, {"defg", 4}};
    check(writev(fd, iov, 2) == 7, "writev");
    close(fd);
    fd = open(path2, O_WRONLY | O_APPEND);
    check(write(fd, "h", 1) == 1, "append");
    close(fd);
    check(stat(path2, &st) == 0 && st.st_size == 8, "size after append");
    snprintf(buf, sizeof buf, "%s/c.txt", dir);
    check(rename(path2, buf) == 0 && access(buf, F_OK) == 0 && access(path2, F_OK) == -1, "rename");

    /* a directory listing */
    snprintf(path2, sizeof path2, "%s/sub", dir);
    check(mkdir(path2, 0755) == 0, "mkdir");
    check(mkdir(path2, 0755) == -1 && errno == EEXIST, "mkdir again: EEXIST");
    DIR *d = opendir(dir);
    char *names[16];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 16)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("listing:");
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");
    check(rmdir(path2) == 0, "rmdir");
    check(unlink(buf) == 0 && unlink(buf) == -1 && errno == ENOENT, "unlink");

    /* cwd */
    char cwd[256];
    check(chdir(dir) == 0 && getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0, "chdir + getcwd");
    check(access("a.txt", R_OK) == 0, "relative path after chdir");

    /* a pipe in one process */
    int p[2];
    check(pipe(p) == 0, "pipe");
    check(write(p[1], "through the pipe", 16) == 16, "write to the pipe");
    memset(buf, 0, sizeof buf);
    check(read(p[0], buf, sizeof buf) == 16 && strcmp(buf, "through the pipe") == 0, "read from the pipe");
    close(p[1]);
    check(read(p[0], buf, sizeof buf) == 0, "end of file once the writer is closed");
    close(p[0]);

    /* dup2 onto stdout */
    fflush(stdout);
    int saved = dup(1);
    fd = open(path, O_WRONLY | O_TRUNC);
    dup2(fd, 1);
    printf("into the file\n");
    fflush(stdout);
    dup2(saved, 1);
    close(fd);
    f = fopen(path, "r");
    check(f && fgets(buf, sizeof buf, f) && strcmp(buf, "into the file\n") == 0, "dup2 redirects stdout");
    fclose(f);

    /* anonymous memory */
    size_t total = 0;
    for (int round = 0; round < 50; round++) {
        size_t len = (size_t)(round + 1) * 40960;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            break;
        int zero = 1;
        for (size_t i = 0; i < len; i += 4096)
            zero &= m[i] == 0;
        memset(m, round, len);
        total += zero && m[len - 1] == round;
        munmap(m, len);
    }
    check(total == 50, "50 mmap/munmap rounds, fresh pages zeroed");
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(m + 4096 * 2, "kept across mremap");
    char *m2 = mremap(m, 3 * 4096, 300 * 4096, MREMAP_MAYMOVE);
    check(m2 != MAP_FAILED && strcmp(m2 + 4096 * 2, "kept across mremap") == 0, "mremap keeps the contents");
    check(mprotect(m2, 4096, PROT_READ) == 0, "mprotect");
    check(munmap(m2, 300 * 4096) == 0, "munmap");
    check(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "mmap of 0 bytes: EINVAL");

    /* a private file mapping */
    fd = open(path, O_RDONLY);
    char *fm = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    check(fm != MAP_FAILED && memcmp(fm, "into the file\n", 14) == 0, "mmap of a file");
    munmap(fm, 4096);
    close(fd);

    /* malloc big and small (brk and mmap underneath) */
    char *big = malloc(8 << 20);
    memset(big, 1, 8 << 20);
    void *small[1000];
    for (int i = 0; i < 1000; i++)
        small[i] = malloc(100 + i);
    for (int i = 0; i < 1000; i++)
        free(small[i]);
    check(big[(8 << 20) - 1] == 1, "malloc of 8 MiB and 1000 small blocks");
    free(big);

    /* time */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    check(ms >= 20 && ms < 2000, "nanosleep of 20 ms");
    check(time(NULL) > 1700000000, "the clock is set");

    unlink(path);
    chdir("/");
    check(rmdir(dir) == 0, "cleanup");
    printf("%s: %d failures\n", argv[0][0] ? "files" : "?", failures);
    return failures != 0;
}
