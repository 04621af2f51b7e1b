// The hints are static inline functions of the header; this file only makes the target a
// C library SwiftPM can build.
#include "memory_hints.h"
