#include "core/node_memory.h"

#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/errors.h"

namespace redblue {
namespace {
constexpr size_t kHuge = 2u << 20;

size_t RoundUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Binds [p, p+len) to `node` before first touch, so every page is allocated there.
void BindToNode(void* p, size_t len, int node) {
  if (numa_available() < 0) return;
  unsigned long mask[16] = {0};
  if (node >= static_cast<int>(sizeof(mask) * 8)) throw UserError("node id too large for this build");
  mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
  if (mbind(p, len, MPOL_BIND, mask, sizeof(mask) * 8, 0) != 0)
    throw UserError(std::string("mbind to node ") + std::to_string(node) + " failed: " + std::strerror(errno));
}

void Touch(void* p, size_t len, size_t step) {
  volatile char* c = static_cast<volatile char*>(p);
  for (size_t off = 0; off < len; off += step) c[off] = 0;
}
}  // namespace

const char* BackingName(Backing b) {
  switch (b) {
    case Backing::HugeTlb: return "hugetlb";
    case Backing::TransparentHuge: return "thp";
    default: return "normal";
  }
}

HugePolicy ParseHugePolicy(const std::string& s) {
  if (s == "auto") return HugePolicy::Auto;
  if (s == "require") return HugePolicy::Require;
  if (s == "thp") return HugePolicy::TransparentOnly;
  if (s == "none") return HugePolicy::None;
  throw UserError("unknown huge page policy '" + s + "': use auto, require, thp or none");
}

int ConfiguredNodes() { return numa_available() < 0 ? 1 : numa_max_node() + 1; }

NodeBuffer::NodeBuffer(size_t bytes, int node, HugePolicy policy) : bytes_(bytes), node_(node) {
  int nodes = ConfiguredNodes();
  if (node < 0 || node >= nodes)
    throw UserError("node " + std::to_string(node) + " does not exist: this machine has " + NodeRangeText(nodes));
  size_t want = bytes == 0 ? 1 : bytes;

  if (policy == HugePolicy::Auto || policy == HugePolicy::Require) {
    size_t len = RoundUp(want, kHuge);
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p != MAP_FAILED) {
      try {
        BindToNode(p, len, node);
      } catch (...) {
        munmap(p, len);
        throw;
      }
      // Touching a hugetlb page that cannot be supplied raises SIGBUS; MAP_POPULATE-free path:
      // reserve first with mlock-free madvise(MADV_POPULATE_WRITE) where the kernel has it.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
      if (madvise(p, len, MADV_POPULATE_WRITE) == 0) {
        ptr_ = p;
        mapped_ = len;
        backing_ = Backing::HugeTlb;
        return;
      }
      munmap(p, len);  // not enough free huge pages on that node
    }
    if (policy == HugePolicy::Require)
      throw UserError("no huge pages left: " + std::to_string(RoundUp(want, kHuge) / kHuge) +
                      " free 2 MiB pages needed on node " + std::to_string(node) +
                      " (reserve more with: sysctl -w vm.nr_hugepages=N, as root)");
  }

  // Transparent huge pages: map with 2 MiB alignment so the kernel can back it with huge pages.
  bool thp = policy != HugePolicy::None;
  size_t len = thp ? RoundUp(want, kHuge) : RoundUp(want, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  size_t over = thp ? len + kHuge : len;
  void* raw = mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    throw UserError("cannot allocate " + std::to_string(bytes) + " bytes on node " + std::to_string(node) + ": " +
                    std::strerror(errno));
  char* p = static_cast<char*>(raw);
  if (thp) {
    uintptr_t a = reinterpret_cast<uintptr_t>(raw);
    uintptr_t aligned = (a + kHuge - 1) & ~(uintptr_t)(kHuge - 1);
    size_t head = aligned - a;
    if (head) munmap(raw, head);
    size_t tail = over - head - len;
    if (tail) munmap(reinterpret_cast<char*>(aligned) + len, tail);
    p = reinterpret_cast<char*>(aligned);
  }
  try {
    BindToNode(p, len, node);
  } catch (...) {
    munmap(p, len);
    throw;
  }
  bool advised = thp && madvise(p, len, MADV_HUGEPAGE) == 0;
  // Populate now so a shortage shows up here as an error rather than later as a crash.
  if (madvise(p, len, MADV_POPULATE_WRITE) != 0) Touch(p, len, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  ptr_ = p;
  mapped_ = len;
  backing_ = advised ? Backing::TransparentHuge : Backing::Normal;
}

void NodeBuffer::release() {
  if (ptr_) munmap(ptr_, mapped_);
  ptr_ = nullptr;
}

NodeBuffer::~NodeBuffer() { release(); }

int NodeOfPages(const void* p, size_t len) {
  if (numa_available() < 0 || len == 0) return -1;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) / page * page;
  const size_t pages = (reinterpret_cast<uintptr_t>(p) + len - first + page - 1) / page;
  const size_t stride = std::max<size_t>(1, pages / 64);
  void* addrs[65];
  int status[65];
  unsigned long count = 0;
  for (size_t i = 0; i < pages && count < 64; i += stride) addrs[count++] = reinterpret_cast<void*>(first + i * page);
  addrs[count++] = reinterpret_cast<void*>(first + (pages - 1) * page);
  if (move_pages(0, count, addrs, nullptr, status, 0) != 0) return -1;
  int node = status[0];
  for (unsigned long i = 0; i < count; ++i) {
    if (status[i] < 0) return -1;
    if (status[i] != node) return -2;
  }
  return node;
}

}  // namespace redblue
