// Turns a SIGBUS raised by an access to a mapped set whose file was truncated into one error line
// naming that file (see memory_hints.h). The handler finds the mapping by the faulting address,
// so a process with several sets mapped (train and test, two indexes) names the right one.
#include "memory_hints.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIMJOB_GUARD_SLOTS 256

struct simjob_guard_slot {
    _Atomic(uintptr_t) base; // 0: free; set last on registration, cleared first on removal
    size_t length;
    char *message;
    size_t count;
};

static struct simjob_guard_slot slots[SIMJOB_GUARD_SLOTS];
static void (*_Atomic cleanup)(void);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int installed;

static void simjob_guard_handler(int signal_number, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int index = 0; index < SIMJOB_GUARD_SLOTS; index++) {
        uintptr_t base = atomic_load_explicit(&slots[index].base, memory_order_acquire);
        if (base != 0 && address >= base && address - base < slots[index].length) {
            void (*remove)(void) = atomic_load(&cleanup);
            if (remove) remove();
            ssize_t written = write(2, slots[index].message, slots[index].count);
            (void)written;
            _exit(1);
        }
    }
    // Not a mapped set's page: a genuine fault. The default action takes over on return, when
    // the faulting access runs again.
    signal(signal_number, SIG_DFL);
}

int simjob_guard_register(const void *base, unsigned long length, const char *message, void (*remove)(void)) {
    atomic_store(&cleanup, remove);
    size_t count = strlen(message);
    char *copy = malloc(count);
    if (!copy) return -1;
    memcpy(copy, message, count);
    pthread_mutex_lock(&lock);
    if (!installed) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = simjob_guard_handler;
        action.sa_flags = SA_SIGINFO;
        sigemptyset(&action.sa_mask);
        installed = sigaction(SIGBUS, &action, NULL) == 0;
    }
    int slot = -1;
    for (int index = 0; index < SIMJOB_GUARD_SLOTS && slot < 0; index++) {
        if (atomic_load(&slots[index].base) == 0) slot = index;
    }
    if (slot >= 0) {
        slots[slot].length = length;
        slots[slot].message = copy;
        slots[slot].count = count;
        atomic_store_explicit(&slots[slot].base, (uintptr_t)base, memory_order_release);
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&lock);
    return slot;
}

void simjob_guard_unregister(const void *base) {
    pthread_mutex_lock(&lock);
    for (int index = 0; index < SIMJOB_GUARD_SLOTS; index++) {
        if (atomic_load(&slots[index].base) == (uintptr_t)base) {
            atomic_store(&slots[index].base, 0);
            // The message is kept, not freed: a handler on another thread may be reading it.
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}
