#include "core/huge_pages.h"

#include <fstream>

namespace redblue {

std::string HugeTlbMount() {
  std::ifstream m("/proc/mounts");
  std::string dev, dir, type, rest;
  while (m >> dev >> dir >> type && std::getline(m, rest)) {
    if (type == "hugetlbfs" && rest.find("pagesize=1G") == std::string::npos) return dir;
  }
  return "";
}

size_t FreeHugePages() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t value = 0, freePages = 0, reserved = 0;
  while (f >> key >> value) {
    if (key == "HugePages_Free:") freePages = value;
    if (key == "HugePages_Rsvd:") reserved = value;
    std::string rest;
    std::getline(f, rest);
  }
  return freePages > reserved ? freePages - reserved : 0;
}

std::vector<std::string> SharedMemoryDirs() {
  std::vector<std::string> dirs;
  std::string huge = HugeTlbMount();
  if (!huge.empty()) dirs.push_back(huge);
  dirs.push_back("/dev/shm");
  return dirs;
}

}  // namespace redblue
