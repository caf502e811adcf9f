#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace redblue {

struct HugePageInfo {
  uint64_t pageBytes = 0;
  uint64_t total = 0;
  uint64_t free = 0;
};

struct NumaNode {
  int id = 0;                 // OS index, as in /sys/devices/system/node/nodeN
  std::vector<int> cpus;      // OS cpu ids (hardware threads)
  uint64_t memoryBytes = 0;
  std::vector<HugePageInfo> hugePages;
  int package = -1;
};

struct Package {
  int id = 0;
  std::vector<int> cpus;
  std::vector<int> nodes;
};

struct Core {
  int id = 0;  // logical index
  int package = -1;
  std::vector<int> cpus;  // its hardware threads
};

struct Topology {
  std::vector<Package> packages;
  std::vector<NumaNode> nodes;
  std::vector<Core> cores;
  std::vector<std::vector<uint64_t>> distances;  // nodes.size() square, relative (10 = local)
  int hardwareThreads = 0;
  std::string hwlocVersion;
};

// Reads the machine through hwloc (and sysfs for free huge pages). Throws on failure.
Topology ReadTopology();

}  // namespace redblue
