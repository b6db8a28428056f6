/* Must NOT compile: proves the flags of the header checks are in effect. An
 * empty declaration at file scope is accepted by default but diagnosed by
 * -pedantic ("ISO C does not allow extra ';' outside of a function"), which
 * -Werror turns into an error. */
#include "h2pool.h"
;
int main(void) { return 0; }
