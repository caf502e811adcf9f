// A named file mapped shared, for data that several executor processes of one host read and write
// (inputs, outputs and partial results of a run): on the hugetlbfs mount when its free 2 MiB
// pages hold it (core/huge_pages.h), else in /dev/shm. RAII: unmaps on destruction; the file
// itself is removed by whoever created it (Unlink), or by stale-file cleanup.
#pragma once
#include <cstddef>
#include <string>

namespace redblue {

class SharedFile {
 public:
  // create=true makes (or replaces) the file with `bytes`; create=false attaches to an existing
  // one and maps its first `bytes` (0: its whole length, which on hugetlbfs is rounded up to 2 MiB,
  // so attachers that know the area's size give it). Names are [A-Za-z0-9._-]+.
  SharedFile(const std::string& name, size_t bytes, bool create);
  ~SharedFile();
  SharedFile(const SharedFile&) = delete;
  SharedFile& operator=(const SharedFile&) = delete;

  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }
  void release();
  static bool Unlink(const std::string& name);            // wherever it is; false if nowhere
  static std::string PathOf(const std::string& name);     // where it is (/dev/shm/NAME if nowhere)

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  size_t mapped_ = 0;
};

}  // namespace redblue
