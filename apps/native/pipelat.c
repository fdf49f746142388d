/* Pipe hand-off latency between two programs: `pipelat send N | pipelat recv`. The sender
 * writes its monotonic time N times, pausing 2 ms between messages so the receiver is asleep in
 * read() each time; the receiver prints the median, minimum and maximum delay from write to
 * wake-up, in microseconds. The same on Linux and in Keel (one clock for both sides). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "send")) {
        int n = argc > 2 ? atoi(argv[2]) : 200;
        struct timespec pause = {0, 2 * 1000 * 1000};
        for (int i = 0; i < n; i++) {
            nanosleep(&pause, NULL);
            long long t = now_ns();
            if (write(1, &t, sizeof t) != sizeof t)
                return 1;
        }
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "recv")) {
        static long long d[100000];
        int n = 0;
        long long t;
        while (n < 100000 && read(0, &t, sizeof t) == sizeof t)
            d[n++] = now_ns() - t;
        if (n == 0)
            return 1;
        qsort(d, n, sizeof *d, cmp);
        printf("pipe hand-off: median %lld us, min %lld us, max %lld us, %d messages\n", d[n / 2] / 1000,
               d[0] / 1000, d[n - 1] / 1000, n);
        return 0;
    }
    fprintf(stderr, "usage: pipelat send [N] | pipelat recv\n");
    return 2;
}
