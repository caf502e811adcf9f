#include "core/binding.h"

#include <dirent.h>
#include <numa.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/errors.h"
#include "core/node_memory.h"

namespace redblue {
namespace {
std::vector<pid_t> ThreadIds() {
  std::vector<pid_t> tids;
  DIR* d = opendir("/proc/self/task");
  if (!d) return tids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    tids.push_back(static_cast<pid_t>(std::stol(e->d_name)));
  }
  closedir(d);
  return tids;
}

std::vector<int> MaskToCpus(const cpu_set_t& set) {
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}
}  // namespace

void BindProcess(const std::vector<int>& cpus, int memNode) {
  if (cpus.empty()) throw UserError("cannot bind to an empty set of cpus");
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c < 0 || c >= ncpu)
      throw UserError("cpu " + std::to_string(c) + " does not exist: this machine has cpus 0-" + std::to_string(ncpu - 1));
    CPU_SET(c, &set);
  }
  int nodes = ConfiguredNodes();
  if (memNode < 0 || memNode >= nodes)
    throw UserError("node " + std::to_string(memNode) + " does not exist: this machine has " + NodeRangeText(nodes));
  // sched_setaffinity acts on one thread: apply it to every thread of the process (V8's and
  // libuv's included). Threads started later inherit it from the thread that creates them.
  for (pid_t tid : ThreadIds()) {
    if (sched_setaffinity(tid, sizeof(set), &set) != 0 && errno != ESRCH)
      throw UserError(std::string("cannot bind thread ") + std::to_string(tid) + ": " + std::strerror(errno));
  }
  if (numa_available() >= 0) {
    bitmask* bm = numa_allocate_nodemask();
    numa_bitmask_setbit(bm, static_cast<unsigned>(memNode));
    numa_set_membind(bm);
    numa_bitmask_free(bm);
  }
}

std::vector<int> CurrentAffinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) throw UserError("sched_getaffinity failed");
  return MaskToCpus(set);
}

std::vector<std::vector<int>> AllThreadAffinities() {
  std::vector<std::vector<int>> out;
  for (pid_t tid : ThreadIds()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(tid, sizeof(set), &set) == 0) out.push_back(MaskToCpus(set));
  }
  return out;
}

}  // namespace redblue
