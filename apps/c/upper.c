/* upper: copies files (or stdin) to stdout in upper case; `upper -c FILE...` counts letters
 * instead. A C program built with clang and wasi-libc, to show C works as well as Rust. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

static int process(FILE *in, const char *name, int count) {
    long letters = 0;
    int c;
    while ((c = fgetc(in)) != EOF) {
        if (count) {
            if (isalpha(c)) letters++;
        } else {
            putchar(toupper(c));
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "upper: %s: read error\n", name);
        return 1;
    }
    if (count) printf("%ld %s\n", letters, name);
    return 0;
}

int main(int argc, char **argv) {
    int count = 0, first = 1, status = 0;
    if (argc > 1 && strcmp(argv[1], "-c") == 0) {
        count = 1;
        first = 2;
    }
    if (first >= argc) return process(stdin, "-", count);
    for (int i = first; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            fprintf(stderr, "upper: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        status |= process(f, argv[i], count);
        fclose(f);
    }
    return status;
}
