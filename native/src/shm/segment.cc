#include "shm/segment.h"
#include "shm/segment_layout.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/huge_pages.h"
#include "shm/sync.h"

namespace redblue::shm {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = kHugePageBytes;

size_t RoundUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

std::string Errno(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

std::vector<std::string> CandidateDirs() { return SharedMemoryDirs(); }

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

bool AnyRankLive(const Header* h, int except) {
  for (int r = 0; r < static_cast<int>(h->ranks) && r < kMaxRanks; ++r) {
    if (r == except) continue;
    const RankEntry& e = h->rank[r];
    if (e.state.load() == kAlive && ProcessAlive(e.pid.load(), e.startTime.load())) return true;
  }
  return false;
}

enum class Verdict { Gone, Stale, Live };

// Decides whether the file at `path` belongs to a live run; removes it when stale.
Verdict InspectAndClean(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Verdict::Gone;
  Verdict v = Verdict::Stale;
  struct stat st {};
  // A creator may be between creating the file and publishing the header: give it a moment.
  for (int waited = 0; waited < 1000; waited += 5) {
    if (fstat(fd, &st) != 0) break;
    if (static_cast<size_t>(st.st_size) >= sizeof(Header)) {
      void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED) break;
      const Header* h = static_cast<const Header*>(p);
      bool ready = h->ready.load() == 1;
      bool creatorLive = h->creatorPid != 0 && ProcessAlive(h->creatorPid, h->creatorStart);
      bool live = creatorLive || (ready && h->magic == kMagic && AnyRankLive(h, -1));
      munmap(p, static_cast<size_t>(st.st_size));
      if (live) {
        v = Verdict::Live;
        break;
      }
      if (ready || h->creatorPid != 0) break;  // published, or its creator died: stale
    }
    SleepMs(5);
  }
  if (v == Verdict::Stale) {
    struct stat now {};
    // Unlink only the file we inspected, never one a new creator just put in its place.
    if (stat(path.c_str(), &now) == 0 && now.st_ino == st.st_ino) unlink(path.c_str());
  }
  close(fd);
  return v;
}

void CheckName(const std::string& name) {
  if (name.empty() || name.size() > 200)
    throw UserError("segment name must be 1-200 characters, got '" + name + "'");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      throw UserError("segment name '" + name + "' may only contain letters, digits, '-', '_' and '.'");
}

}  // namespace

std::string SegmentPathFor(const std::string& dir, const std::string& name) { return dir + "/redblue-shm-" + name; }

bool RemoveIfStale(const std::string& name) {
  CheckName(name);
  bool removed = false;
  for (const std::string& dir : CandidateDirs()) {
    std::string path = SegmentPathFor(dir, name);
    if (access(path.c_str(), F_OK) != 0) continue;
    if (InspectAndClean(path) == Verdict::Stale) removed = true;
  }
  return removed;
}

Segment::Segment(const SegmentOptions& opt) : rank_(opt.rank) {
  CheckName(opt.name);
  if (opt.ranks < 1 || opt.ranks > kMaxRanks)
    throw UserError("ranks must be between 1 and " + std::to_string(kMaxRanks) + ", got " + std::to_string(opt.ranks));
  if (opt.rank < 0 || opt.rank >= opt.ranks)
    throw UserError("rank " + std::to_string(opt.rank) + " is outside 0.." + std::to_string(opt.ranks - 1));
  if (opt.maxGroups < 1 || opt.maxGroups > kMaxGroups)
    throw UserError("maxGroups must be between 1 and " + std::to_string(kMaxGroups));
  if (opt.slotBytes < 8192 || opt.slotBytes > (size_t(1) << 32))
    throw UserError("slotBytes must be between 8 KiB and 4 GiB");
  if (opt.p2pBytes < 4096 || opt.p2pBytes > (size_t(1) << 32))
    throw UserError("p2pBytes must be between 4 KiB and 4 GiB");
  if (opt.hugePages != "auto" && opt.hugePages != "none" && opt.hugePages != "require")
    throw UserError("hugePages must be 'auto', 'none' or 'require', got '" + opt.hugePages + "'");
  if (opt.rank == 0)
    Create(opt);
  else
    Attach(opt);
  Join();
}

Segment::~Segment() {
  Leave();
  if (hdr_) munmap(hdr_, bytes_);
}

bool Segment::Map(int fd, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    errno = e;
    return false;
  }
  hdr_ = static_cast<Header*>(p);
  bytes_ = bytes;
  struct stat st {};
  fstat(fd, &st);
  ino_ = st.st_ino;
  close(fd);
  return true;
}

void Segment::Create(const SegmentOptions& opt) {
  const SegmentLayout layout = LayoutFor(static_cast<uint64_t>(opt.ranks), static_cast<uint64_t>(opt.maxGroups),
                                        opt.slotBytes, opt.p2pBytes);
  const size_t n = static_cast<size_t>(opt.ranks), g = static_cast<size_t>(opt.maxGroups);
  const size_t off = layout.end;

  // Remove what a killed run left behind under this name; refuse to touch a live run's segment.
  for (const std::string& dir : CandidateDirs()) {
    std::string path = SegmentPathFor(dir, opt.name);
    if (InspectAndClean(path) == Verdict::Live)
      throw UserError("shared segment " + path + " is in use by a live run: choose another name or stop that run");
  }

  std::vector<std::string> dirs;
  std::string huge = HugeTlbMount();
  bool hugeFits = !huge.empty() && FreeHugePages() * kHugePage >= RoundUp(off, kHugePage);
  if (opt.hugePages == "require" && !hugeFits)
    throw UserError("hugePages 'require': no hugetlbfs mount with " + std::to_string(RoundUp(off, kHugePage) >> 20) +
                    " MiB of free 2 MiB pages (sysctl vm.nr_hugepages=N; mount -t hugetlbfs none /dev/hugepages)");
  if (opt.hugePages != "none" && hugeFits) dirs.push_back(huge);
  if (opt.hugePages != "require") dirs.push_back("/dev/shm");

  for (const std::string& dir : dirs) {
    bool isHuge = dir != "/dev/shm";
    size_t total = RoundUp(off, isHuge ? kHugePage : kPage);
    path_ = SegmentPathFor(dir, opt.name);
    int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST)
        throw UserError("shared segment " + path_ + " was created by someone else at the same time: is another rank 0 running with this name?");
      throw UserError(Errno("cannot create", path_));
    }
    if (ftruncate(fd, static_cast<off_t>(total)) != 0) {
      int e = errno;
      close(fd);
      unlink(path_.c_str());
      errno = e;
      throw UserError(Errno("cannot size", path_));
    }
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      unlink(path_.c_str());
      if (isHuge) continue;  // not enough huge pages after all: fall back to /dev/shm
      throw UserError(Errno("cannot map", path_));
    }
    munmap(p, total);
    if (!Map(fd, total)) throw UserError(Errno("cannot map", path_));
    backing_ = isHuge ? "hugetlb" : "shm";
    Header* h = hdr_;
    h->magic = kMagic;
    h->version = kVersion;
    h->ranks = static_cast<uint32_t>(n);
    h->maxGroups = static_cast<uint32_t>(g);
    h->slotBytes = layout.slotBytes;
    h->p2pBytes = layout.p2pBytes;
    h->totalBytes = total;
    h->token = opt.token;
    h->ctrlOffset = layout.ctrlOffset;
    h->p2pCtrlOffset = layout.p2pCtrlOffset;
    h->slotsOffset = layout.slotsOffset;
    h->p2pDataOffset = layout.p2pDataOffset;
    h->creatorPid = getpid();
    h->creatorStart = ProcessStartTime(getpid());
    for (int i = 0; i < kMaxGroups; ++i) h->group[i].culprit.store(-1);
    h->ready.store(1, std::memory_order_release);
    return;
  }
  throw UserError("cannot create shared segment " + opt.name);
}

void Segment::Attach(const SegmentOptions& opt) {
  uint64_t deadline = NowNs() + opt.attachTimeoutNs;
  std::string why = "it does not exist yet";
  while (true) {
    if (NowNs() > deadline)
      throw UserError("rank " + std::to_string(opt.rank) + " could not attach shared segment redblue-shm-" + opt.name +
                      " within " + std::to_string(opt.attachTimeoutNs / 1000000) + " ms: " + why +
                      " (is rank 0 running with the same name?)");
    int fd = -1;
    for (const std::string& dir : CandidateDirs()) {
      path_ = SegmentPathFor(dir, opt.name);
      fd = open(path_.c_str(), O_RDWR | O_CLOEXEC);
      if (fd >= 0) break;
    }
    if (fd < 0) {
      SleepMs(1);
      continue;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(Header)) {
      close(fd);
      why = "it is still being created";
      SleepMs(1);
      continue;
    }
    if (!Map(fd, static_cast<size_t>(st.st_size))) {
      // E.g. a hugetlbfs file whose creator found too few huge pages and falls back to /dev/shm.
      why = Errno("cannot map", path_);
      SleepMs(1);
      continue;
    }
    Header* h = hdr_;
    const char* problem = nullptr;
    if (h->ready.load(std::memory_order_acquire) != 1)
      problem = "it is still being created";
    else if (h->magic != kMagic || h->version != kVersion)
      throw UserError(path_ + " is not a redblue segment of this version: remove it");
    else if (!ProcessAlive(h->creatorPid, h->creatorStart))
      problem = "the segment found was left by a killed run (waiting for rank 0 to replace it)";
    else if (opt.token != 0 && h->token != opt.token)
      problem = "the segment found belongs to another run (different token)";
    else if (h->ranks != static_cast<uint32_t>(opt.ranks))
      throw UserError("shared segment " + path_ + " was created for " + std::to_string(h->ranks) + " ranks, but this rank expects " +
                      std::to_string(opt.ranks));
    else if (std::string bad = HeaderProblem(*h, bytes_); !bad.empty())
      throw UserError("shared segment " + path_ + " has a damaged header (" + bad + "): remove it");
    if (!problem) {
      backing_ = path_.rfind("/dev/shm/", 0) == 0 ? "shm" : "hugetlb";
      return;
    }
    why = problem;
    munmap(hdr_, bytes_);
    hdr_ = nullptr;
    SleepMs(2);
  }
}

void Segment::Join() {
  RankEntry& e = hdr_->rank[rank_];
  int pid = e.pid.load();
  if (pid != 0 && pid != getpid() && e.state.load() == kAlive && ProcessAlive(pid, e.startTime.load())) {
    munmap(hdr_, bytes_);
    hdr_ = nullptr;
    throw UserError("rank " + std::to_string(rank_) + " of " + path_ + " is already taken by live pid " + std::to_string(pid));
  }
  e.startTime.store(ProcessStartTime(getpid()));
  e.pid.store(getpid());
  e.state.store(kAlive);
}

void Segment::WakeAll() const {
  Header* h = hdr_;
  h->wakeAll.fetch_add(1);
  for (uint32_t g = 0; g < h->maxGroups; ++g)
    for (uint32_t r = 0; r < h->ranks; ++r) FutexWakeAll(&ctrl(static_cast<int>(g), static_cast<int>(r)).seq);
  for (uint32_t s = 0; s < h->ranks; ++s)
    for (uint32_t d = 0; d < h->ranks; ++d) {
      FutexWakeAll(&p2p(static_cast<int>(s), static_cast<int>(d)).sent);
      FutexWakeAll(&p2p(static_cast<int>(s), static_cast<int>(d)).acked);
    }
}

void Segment::Leave() {
  if (left_ || !hdr_) return;
  left_ = true;
  Header* h = hdr_;
  h->rank[rank_].state.store(kLeft);
  h->deadMask.fetch_or(uint64_t(1) << rank_);
  // Peers blocked on this rank fail now instead of at their timeout.
  WakeAll();
  if (!AnyRankLive(h, rank_)) {
    struct stat st {};
    if (stat(path_.c_str(), &st) == 0 && st.st_ino == ino_) unlink(path_.c_str());
  }
}

}  // namespace redblue::shm
