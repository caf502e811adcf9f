// Node-local, huge-page-friendly allocations. One NodeBuffer owns one mapping (RAII).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace redblue {

enum class Backing { HugeTlb, TransparentHuge, Normal };
enum class HugePolicy { Auto, Require, TransparentOnly, None };

const char* BackingName(Backing b);
// Accepts "auto" | "require" | "thp" | "none"; throws UserError otherwise.
HugePolicy ParseHugePolicy(const std::string& s);

class NodeBuffer {
 public:
  // Maps `bytes` (rounded up to the page size of the backing) bound to NUMA node `node`,
  // touching every page so it is resident on that node. Throws UserError with a clear reason.
  NodeBuffer(size_t bytes, int node, HugePolicy policy);
  ~NodeBuffer();
  NodeBuffer(const NodeBuffer&) = delete;
  NodeBuffer& operator=(const NodeBuffer&) = delete;

  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }          // what the caller asked for
  size_t mappedSize() const { return mapped_; }   // what was mapped
  Backing backing() const { return backing_; }
  int node() const { return node_; }
  void release();  // unmaps now; idempotent

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  size_t mapped_ = 0;
  Backing backing_ = Backing::Normal;
  int node_ = 0;
};

// The NUMA node holding the pages of [p, p+len) as the kernel reports it (move_pages): that node
// when every page sampled (one per page-size stride, at most 64) is there, -2 when they are on
// different nodes, -1 when unknown (no NUMA support, or a page not resident).
int NodeOfPages(const void* p, size_t len);

// Number of NUMA nodes the kernel knows (numa_max_node()+1), or 1 without NUMA support.
int ConfiguredNodes();

}  // namespace redblue

namespace redblue {
// "node 0 only" or "nodes 0-3", for error messages.
inline std::string NodeRangeText(int nodes) {
  return nodes <= 1 ? std::string("node 0 only") : "nodes 0-" + std::to_string(nodes - 1);
}
}  // namespace redblue
