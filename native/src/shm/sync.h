// Cross-process synchronisation primitives on shared memory: futex wait/wake (shared, not
// PRIVATE, so they work between processes mapping the same file), a monotonic clock, and a
// liveness check of a process that guards against pid reuse and zombies.
#pragma once
#include <atomic>
#include <cstdint>

namespace redblue::shm {

uint64_t NowNs();

// Blocks while *word == expected, at most timeoutNs; returns on wake, timeout, signal or value
// change (callers re-check their condition).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeoutNs);
void FutexWakeAll(std::atomic<uint32_t>* word);

// Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22); 0 if it does not
// exist or is a zombie (killed but not yet reaped: as good as dead for us).
uint64_t ProcessStartTime(int pid);

// True while `pid` runs and is the same process that had `startTime` (not a reused pid).
bool ProcessAlive(int pid, uint64_t startTime);

inline void CpuRelax() { __builtin_ia32_pause(); }

// Sequence numbers wrap: a has reached b when the signed distance is non-negative.
inline bool SeqReached(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

}  // namespace redblue::shm
