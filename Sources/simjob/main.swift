import SimjobBLAS
import SimjobCLI

// OpenBLAS chose its kernels when it loaded; if the environment forced slow ones on this CPU,
// start again without that setting before doing any work.
BLASRuntime.relaunchIfSlowKernelsAreForced()
SimjobCommand.runMain()
