/* The smallest native program: arguments, the environment, the process id, stdio. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    printf("hello from a native program (pid %d)\n", (int)getpid());
    for (int i = 0; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    const char *who = getenv("WHO");
    printf("WHO=%s\n", who ? who : "(unset)");
    printf("%d %s %.3f\n", 42, "printf works", 3.14159);
    return argc > 1 && argv[1][0] == 'x' ? 3 : 0;
}
