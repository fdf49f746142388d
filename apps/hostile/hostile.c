/* hostile: a C program that tries to misbehave and checks that each attempt is refused with a
 * clear error instead of breaking anything. Run with a scratch directory as "." and the extra
 * files as "ro":  wasm --dir /tmp/h::. --dir /extra_files::ro hostile.wasm < /dev/null
 * Prints one line per check; the exit status is the number of failed checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wasi/api.h>

static int failed = 0;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failed++;
}

int main(void) {
    /* Descriptor exhaustion: opening stops with EMFILE; closing makes room again. */
    int fds[4096];
    int n = 0, err = 0;
    int f = open("probe", O_CREAT | O_WRONLY, 0644);
    close(f);
    while (n < 4096) {
        int fd = open("probe", O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[n++] = fd;
    }
    check(n > 100 && n < 4096 && err == EMFILE, "descriptor exhaustion is EMFILE");
    for (int i = 0; i < n; i++) close(fds[i]);
    f = open("probe", O_RDONLY);
    check(f >= 0, "descriptors come back after closing");

    /* Closed, never-opened and renumbered descriptors. */
    close(f);
    char c;
    check(read(f, &c, 1) < 0 && errno == EBADF, "reading a closed fd is EBADF");
    check(write(9999, "x", 1) < 0 && errno == EBADF, "writing a never-opened fd is EBADF");
    int a = open("probe", O_RDONLY);
    int b = open("probe", O_RDONLY);
    check(__wasi_fd_renumber(a, b) == 0 && read(b, &c, 1) == 0 && read(a, &c, 1) < 0, "a renumbered fd moves");
    close(b);

    /* Escapes. */
    check(open("../secret", O_RDONLY) < 0, "no .. out of the directory");
    check(open("/extra_files/welcome.txt", O_RDONLY) < 0, "no absolute path outside the preopens");
    check(mkdir("../evil", 0755) < 0, "no mkdir outside");
    mkdir("sub", 0755);
    check(rename("sub", "../moved") < 0, "no renaming a directory out");
    check(symlink("../secret", "link") < 0 && errno == EPERM && open("link", O_RDONLY) < 0,
          "no symlink pointing out of the directory (EPERM)");
    check(symlink("/", "root") < 0 && open("root/extra_files", O_RDONLY) < 0, "no absolute symlink");
    check(symlink("sub/../sub", "inside") == 0 && open("inside", O_RDONLY | O_DIRECTORY) >= 0,
          "a symlink that stays inside works");
    check(rename("sub", "sub/inner") < 0, "no moving a directory into itself");

    /* Read-only files. */
    check(open("ro/wasm/hello.wasm", O_WRONLY) < 0 && errno == EROFS, "writing a read-only file is EROFS");
    check(unlink("ro/wasm/hello.wasm") < 0, "removing a read-only file fails");

    /* stdin after its end. */
    check(read(0, &c, 1) == 0 && read(0, &c, 1) == 0, "stdin stays at end of input");

    /* Huge iovec counts and lengths. */
    struct iovec iov = {(void *)"x", 1};
    check(writev(1, &iov, 1 << 30) < 0, "a huge iovec count is an error");
    struct iovec bad = {(void *)0x7ffffff0, 0x7fffffff};
    check(writev(1, &bad, 1) < 0, "an iovec past the end of memory is an error");

    /* Memory: an impossible allocation fails, memory can be exhausted and recovered. */
    /* volatile: otherwise the compiler may assume malloc succeeds and drop the call. */
    void *volatile big = malloc((size_t)1 << 30);
    check(big == NULL, "a 1 GiB malloc over the limit returns NULL");
    void *blocks[4096];
    int nb = 0;
    while (nb < 4096 && (blocks[nb] = malloc(1 << 20)) != NULL) {
        memset(blocks[nb], 1, 1 << 20);
        nb++;
    }
    check(nb > 0 && nb < 4096, "malloc stops at the memory limit");
    for (int i = 0; i < nb; i++) free(blocks[i]);
    void *again = malloc(1 << 20);
    check(again != NULL, "memory comes back after free");

    printf("hostile: %d failed\n", failed);
    return failed;
}
