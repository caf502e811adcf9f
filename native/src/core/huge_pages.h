// The host's hugetlbfs pool as files see it: where 2 MiB pages can be had as shared files, and how
// many are free. Shared segments (shm/) and staging areas (SharedFile) live there when they fit:
// besides fewer TLB misses, in virtual machines whose page tables the hypervisor shadows, the
// first touch of each 4 KiB page of a new mapping costs microseconds even after MAP_POPULATE
// (a fresh /dev/shm mapping was written at 0.8 GB/s and read at 2.7 GB/s on the 2-vCPU dev VM,
// hugetlbfs at 20-36 and 15), one fault per 2 MiB page instead.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace redblue {

constexpr size_t kHugePageBytes = size_t{2} << 20;

// A hugetlbfs mount with 2 MiB pages, if the administrator made one ("" otherwise).
std::string HugeTlbMount();
// Free 2 MiB pages less those already reserved by other mappings (which a new mapping cannot get).
size_t FreeHugePages();
// Where shared files may be, in the order to look: the hugetlbfs mount (if any), then /dev/shm.
std::vector<std::string> SharedMemoryDirs();

}  // namespace redblue
