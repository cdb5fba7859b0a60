// OpenBLAS's CBLAS interface (Linux). Apple platforms use Accelerate instead.
#include <cblas.h>
