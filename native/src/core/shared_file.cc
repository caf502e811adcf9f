#include "core/shared_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/errors.h"
#include "core/huge_pages.h"

namespace redblue {
namespace {
void CheckName(const std::string& name) {
  if (name.empty() || name.size() > 200) throw UserError("shared file name must have 1-200 characters");
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      throw UserError("shared file name '" + name + "' may only contain letters, digits, '.', '_' and '-'");
  if (name[0] == '.') throw UserError("shared file name may not start with '.'");
}
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};
size_t RoundUp(size_t v, size_t a) { return (v + a - 1) / a * a; }
constexpr uint64_t kHugetlbfsMagic = 0x958458f6;  // linux/magic.h HUGETLBFS_MAGIC
}  // namespace

std::string SharedFile::PathOf(const std::string& name) {
  CheckName(name);
  for (const std::string& dir : SharedMemoryDirs()) {
    std::string path = dir + "/" + name;
    if (access(path.c_str(), F_OK) == 0) return path;
  }
  return "/dev/shm/" + name;
}

SharedFile::SharedFile(const std::string& name, size_t bytes, bool create) {
  CheckName(name);
  if (create) {
    Unlink(name);  // replaces an old file of this name, wherever it is
    // On 2 MiB pages when the hugetlbfs pool has them (core/huge_pages.h says why); a mapping
    // that still cannot get them (another process took them meanwhile) falls back to /dev/shm.
    const std::string huge = HugeTlbMount();
    const size_t hugeBytes = RoundUp(std::max<size_t>(bytes, 1), kHugePageBytes);
    if (!huge.empty() && FreeHugePages() * kHugePageBytes >= hugeBytes) {
      std::string path = huge + "/" + name;
      Fd f{open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
      if (f.fd >= 0) {
        void* p = MAP_FAILED;
        if (ftruncate(f.fd, static_cast<off_t>(hugeBytes)) == 0)
          p = mmap(nullptr, hugeBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, f.fd, 0);
        if (p != MAP_FAILED) {
          ptr_ = p;
          bytes_ = bytes;
          mapped_ = hugeBytes;
          return;
        }
        unlink(path.c_str());
      }
    }
  }
  std::string path = create ? "/dev/shm/" + name : PathOf(name);
  Fd f{open(path.c_str(), create ? (O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC) : (O_RDWR | O_CLOEXEC), 0600)};
  if (f.fd < 0)
    throw UserError((create ? "cannot create " : "cannot open ") + path + ": " + std::strerror(errno));
  if (create) {
    if (ftruncate(f.fd, static_cast<off_t>(bytes)) != 0)
      throw UserError("cannot size " + path + " to " + std::to_string(bytes) + " bytes: " + std::strerror(errno));
    // Reserve the pages now so a full /dev/shm fails here, not as SIGBUS later.
    if (bytes && posix_fallocate(f.fd, 0, static_cast<off_t>(bytes)) != 0) {
      unlink(path.c_str());
      throw UserError("not enough space in /dev/shm for " + std::to_string(bytes) + " bytes (" + path +
                      "): free some or enlarge it (mount -o remount,size=... /dev/shm)");
    }
  } else {
    struct stat st;
    if (fstat(f.fd, &st) != 0) throw UserError("cannot stat " + path);
    const size_t fileBytes = static_cast<size_t>(st.st_size);
    if (bytes > fileBytes)
      throw UserError("shared file " + path + " is " + std::to_string(fileBytes) + " bytes, not the " +
                      std::to_string(bytes) + " expected: was it replaced by another run?");
    if (bytes == 0) bytes = fileBytes;
    // A hugetlbfs mapping is whole huge pages: munmap of a shorter length fails (EINVAL) and
    // would leave the area mapped, its pages taken, for the rest of the process.
    struct statfs fs;
    if (fstatfs(f.fd, &fs) == 0 && static_cast<uint64_t>(fs.f_type) == kHugetlbfsMagic) {
      bytes_ = bytes;
      mapped_ = std::min(fileBytes, RoundUp(std::max<size_t>(bytes, 1), kHugePageBytes));
      void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, f.fd, 0);
      if (p == MAP_FAILED) throw UserError("cannot map " + path + ": " + std::strerror(errno));
      ptr_ = p;
      return;
    }
  }
  bytes_ = bytes;
  mapped_ = bytes ? bytes : 1;
  // Populated up front: page faults then land in set-up, not in the timed steps that use it.
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, f.fd, 0);
  if (p == MAP_FAILED) throw UserError("cannot map " + path + ": " + std::strerror(errno));
  ptr_ = p;
}

void SharedFile::release() {
  if (ptr_) munmap(ptr_, mapped_);
  ptr_ = nullptr;
}

SharedFile::~SharedFile() { release(); }

bool SharedFile::Unlink(const std::string& name) {
  CheckName(name);
  bool removed = false;
  for (const std::string& dir : SharedMemoryDirs()) removed = unlink((dir + "/" + name).c_str()) == 0 || removed;
  return removed;
}

}  // namespace redblue
