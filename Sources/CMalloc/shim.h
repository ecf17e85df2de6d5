// glibc's heap statistics and trim (<malloc.h> is not in Swift's Glibc module).
#include <malloc.h>
