/* Ways for a program to go wrong; each must end only this program. `oops KIND`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int depth(int n) {
    volatile char pad[4096];
    pad[0] = (char)n;
    return depth(n + 1) + pad[0];
}

int main(int argc, char **argv) {
    const char *kind = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(kind, "null")) {
        volatile int *p = NULL;
        return *p;
    } else if (!strcmp(kind, "text")) {
        /* write into the program's own code */
        *(volatile char *)(void *)main = 0;
    } else if (!strcmp(kind, "ill")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(kind, "div")) {
        volatile int z = 0;
        return 10 / z;
    } else if (!strcmp(kind, "stack")) {
        return depth(0);
    } else if (!strcmp(kind, "priv")) {
        __asm__ volatile("hlt");
    } else if (!strcmp(kind, "kernel")) {
        /* read kernel memory */
        return *(volatile int *)0xffffc00000000000ULL;
    } else if (!strcmp(kind, "abort")) {
        abort();
    } else if (!strcmp(kind, "syscall")) {
        long r = syscall(999, 1, 2, 3);
        printf("syscall 999 returned %ld\n", r);
        return 0;
    } else if (!strcmp(kind, "bomb")) {
        size_t got = 0;
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p)
                break;
            memset(p, 1, 1 << 20);
            got++;
        }
        printf("malloc failed after %zu MiB\n", got);
        return 0;
    } else if (!strcmp(kind, "spin")) {
        for (volatile unsigned long i = 0;; i++) {
        }
    } else if (!strcmp(kind, "sleep")) {
        struct timespec t = {100, 0};
        nanosleep(&t, NULL);
        return 0;
    }
    fprintf(stderr, "usage: oops null|text|ill|div|stack|priv|kernel|abort|syscall|bomb|spin|sleep\n");
    return 2;
}
