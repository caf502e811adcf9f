#pragma once
#include <vector>

namespace redblue {
// Binds every thread of this process to `cpus`, and the calling thread's future allocations to
// `memNode` (node-local buffers bind explicitly anyway). Throws UserError with the reason.
void BindProcess(const std::vector<int>& cpus, int memNode);
// The cpus the calling thread may run on, as the kernel reports them.
std::vector<int> CurrentAffinity();
// cpus of every thread of this process (tid -> cpus), read from the kernel.
std::vector<std::vector<int>> AllThreadAffinities();
}  // namespace redblue
