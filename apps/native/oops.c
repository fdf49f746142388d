/* Ways for a program to go wrong; each must end only this program. `oops KIND`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Winfinite-recursion"
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
    } else if (!strcmp(kind, "fuzz")) {
        /* Random system calls with random arguments (half of the pointers into a scratch
         * buffer of random bytes): the kernel must stay up, whatever this program does to
         * itself. Calls that would end it, wait forever or pull the ground from under it
         * (its own code, stack, heap and thread pointer) are left out. */
        static const int skip[] = {10, 11, 12, 15, 22, 23, 25, 34, 35, 60, 61, 62, 158, 200, 202, 230, 231, 234, 270, 293};
        unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
        unsigned long long x = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
        static unsigned char scratch[1 << 16];
        close(0);
        unsigned long done = 0;
        for (unsigned long i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (i % 64 == 0)
                for (size_t k = 0; k < sizeof scratch; k += 8)
                    *(unsigned long long *)(scratch + k) = x * (k + 1);
            long nr = (long)(x % 340);
            int bad = 0;
            for (size_t k = 0; k < sizeof skip / sizeof *skip; k++)
                bad |= skip[k] == nr;
            if (bad)
                continue;
            long a[6];
            for (int k = 0; k < 6; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                switch (x % 4) {
                case 0: a[k] = (long)(scratch + x % (sizeof scratch - 64)); break;
                case 1: a[k] = (long)(x % 64); break;
                case 2: a[k] = (long)(x >> 3); break;
                default: a[k] = -(long)(x % 8); break;
                }
            }
            if (nr == 1 || nr == 20 || nr == 18)
                a[0] = 1 + (long)(x % 2); /* writes go to stdout/stderr, not to random files */
            if (nr == 9)
                a[3] &= ~0x100010L; /* no MAP_FIXED over its own code */
            syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            done++;
        }
        printf("fuzz: %lu calls made\n", done);
        return 0;
    } else if (!strcmp(kind, "spin")) {
        for (volatile unsigned long i = 0;; i++) {
        }
    } else if (!strcmp(kind, "sleep")) {
        struct timespec t = {100, 0};
        nanosleep(&t, NULL);
        return 0;
    }
    fprintf(stderr, "usage: oops null|text|ill|div|stack|priv|kernel|abort|syscall|bomb|spin|sleep|fuzz [N [SEED]]\n");
    return 2;
}
