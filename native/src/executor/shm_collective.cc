// The shared-memory communicator as an executor step's Collective (all ranks of the host).
#include "executor/shm_collective.h"

#include "shm/communicator.h"

namespace redblue {

namespace {
class ShmCollective : public Collective {
 public:
  explicit ShmCollective(std::shared_ptr<shm::Communicator> c) : comm_(std::move(c)) {}
  int rank() const override { return comm_->rank(); }
  int size() const override { return comm_->size(); }
  void Barrier() override { comm_->Barrier(comm_->World()); }
  void AllGatherV(const void* mine, void* out, const std::vector<size_t>& bytes) override {
    comm_->AllGatherV(mine, out, bytes, comm_->World());
  }
  // The communicator sums in rank order and every rank ends with the same bits: either each
  // rank sums all slots in member order (small vectors), or one rank sums each part and the
  // others copy it (large ones). Same result as the default, one exchange instead of a gather.
  void AllReduceSumF32(float* data, size_t count) override {
    TallyShmAllReduce(tally_, comm_->AllReduceF32(data, count, comm_->World()));
  }
  AllReduceTally Tally() const override { return tally_; }

 private:
  std::shared_ptr<shm::Communicator> comm_;  // keeps the segment mapped while a step runs
  AllReduceTally tally_;
};
}  // namespace

std::shared_ptr<Collective> MakeShmCollective(std::shared_ptr<shm::Communicator> comm) {
  return std::make_shared<ShmCollective>(std::move(comm));
}

}  // namespace redblue
