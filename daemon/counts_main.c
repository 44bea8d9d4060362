/* eventsd-counts: placeholder until the Redis counter reader lands. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "eventsd-counts: not implemented yet\n");
    return 2;
}
