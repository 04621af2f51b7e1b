import SimjobBLAS
import SimjobCLI

// OpenBLAS chose its kernels and thread pool when it loaded; if either costs speed here, start
// again with better settings before doing any work.
BLASRuntime.relaunchIfNeeded()
SimjobCommand.runMain()
