/* The cmake_consumer example builds examples/minimal.c unchanged. */
#include "../minimal.c"
