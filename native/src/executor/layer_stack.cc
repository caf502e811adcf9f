#include "executor/layer_stack.h"

#include <chrono>
#include <cstring>

#include "core/errors.h"
#include "executor/counter_rng.h"
#include "kernels/gemm_f32.h"
#include "kernels/quant.h"

namespace redblue {
namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
constexpr uint64_t kWeightStream = 1ull << 40;  // streams: weights (layer), inputs (pass)
constexpr uint64_t kInputStream = 2ull << 40;

bool IsF32(const std::string& d) { return d == "f32"; }
}  // namespace

void FillUniform(float* out, int64_t count, uint64_t seed, uint64_t stream, uint64_t first) {
  for (int64_t i = 0; i < count; ++i) out[i] = CounterUniform(seed, stream, first + static_cast<uint64_t>(i));
}

LayerStack::LayerStack(const LayerStackConfig& cfg) : cfg_(cfg) {
  if (cfg.n <= 0 || cfg.k <= 0 || cfg.layers <= 0) throw UserError("layer stack needs n, k and layers ≥ 1");
  if (cfg.rowLo < 0 || cfg.rowHi > cfg.n || cfg.rowLo > cfg.rowHi)
    throw UserError("row range [" + std::to_string(cfg.rowLo) + ", " + std::to_string(cfg.rowHi) +
                    ") is outside the " + std::to_string(cfg.n) + " rows of W");
  f32_ = IsF32(cfg.dtype);
  type_ = f32_ ? WeightType::F16 : ParseWeightType(cfg.dtype);  // type_ unused for f32
  rowBytes_ = f32_ ? cfg.k * 4 : RowBytes(type_, cfg.k);
  heldLo_ = cfg.mirror ? 0 : cfg.rowLo;
  heldRows_ = cfg.mirror ? cfg.n : cfg.rowHi - cfg.rowLo;
}

void LayerStack::AddLayer(ThreadPool& pool, const float* source) {
  const LayerStackConfig& cfg = cfg_;
  int l = layersMade();
  if (l >= cfg.layers) throw UserError("all " + std::to_string(cfg.layers) + " layers are already made");
  const bool f32 = f32_;
  const WeightType type = type_;
  int64_t heldRows = heldRows_;
  {
    auto buf = std::make_unique<NodeBuffer>(static_cast<size_t>(heldRows * rowBytes_), cfg.node, HugePolicy::Auto);
    uint8_t* base = static_cast<uint8_t*>(buf->data());
    // Rows in chunks over the pool: each worker makes f32 rows and quantizes them in place.
    const int64_t chunk = 16;
    int64_t tasks = (heldRows + chunk - 1) / chunk;
    pool.ParallelFor(tasks, [&](int64_t t, int) {
      std::vector<float> row(static_cast<size_t>(cfg.k));
      int64_t r0 = t * chunk, r1 = std::min(heldRows, r0 + chunk);
      for (int64_t r = r0; r < r1; ++r) {
        uint64_t globalRow = static_cast<uint64_t>(heldLo_ + r);
        uint8_t* dst = base + r * rowBytes_;
        if (source) {
          const float* src = source + globalRow * cfg.k;
          if (f32) std::memcpy(dst, src, static_cast<size_t>(cfg.k) * 4);
          else QuantizeRows(type, src, 1, cfg.k, cfg.k, dst);
        } else if (f32) {
          FillUniform(reinterpret_cast<float*>(dst), cfg.k, cfg.seed, kWeightStream + l, globalRow * cfg.k);
        } else {
          FillUniform(row.data(), cfg.k, cfg.seed, kWeightStream + l, globalRow * cfg.k);
          QuantizeRows(type, row.data(), 1, cfg.k, cfg.k, dst);
        }
      }
    });
    weightBytes_ += buf->mappedSize();
    weights_.push_back(std::move(buf));
  }
}

const char* LayerStack::backing() const { return weights_.empty() ? "normal" : BackingName(weights_[0]->backing()); }

// Rows per rank in proportion to each rank's measured rate (rows per second), in rank order.
// Every rank computes this from the same gathered bits, so all agree on the split without
// another exchange. No rank drops below a quarter of an even share: a rank with no rows could
// not be measured, and one slow layer must not starve it.
std::vector<int64_t> SplitByRate(int64_t n, const std::vector<double>& rate) {
  const size_t P = rate.size();
  double total = 0;
  for (double r : rate) total += r;
  const int64_t floorRows = n / static_cast<int64_t>(4 * P);
  std::vector<int64_t> rows(P, floorRows);
  int64_t left = n - floorRows * static_cast<int64_t>(P);
  double acc = 0;
  int64_t given = 0;
  for (size_t r = 0; r < P; ++r) {
    acc += rate[r];
    int64_t upto = r + 1 == P ? left : static_cast<int64_t>(static_cast<double>(left) * (acc / total));
    rows[r] += upto - given;
    given = upto;
  }
  return rows;
}

PassTimings LayerStack::Run(int64_t m, int iters, uint64_t seed, ThreadPool& pool, Collective& peers,
                            const std::vector<int64_t>& rowsPerRank, float* yOut, float* xOut, bool balance) {
  if (m <= 0 || iters <= 0) throw UserError("m and iters must be at least 1");
  if (layersMade() != cfg_.layers)
    throw UserError("only " + std::to_string(layersMade()) + " of " + std::to_string(cfg_.layers) + " layers are made");
  if (static_cast<int>(rowsPerRank.size()) != peers.size()) throw UserError("rowsPerRank must list every rank");
  if (balance && !cfg_.mirror) throw UserError("balancing rows between ranks needs every layer whole on every rank (mirror)");
  if (balance) {
    int64_t sum = 0;
    for (int64_t r : rowsPerRank) sum += r < 0 ? cfg_.n + 1 : r;
    if (sum != cfg_.n) throw UserError("rowsPerRank must split the " + std::to_string(cfg_.n) + " rows between the ranks");
  }
  const int P = peers.size(), me = peers.rank();
  std::vector<int64_t> rows = rowsPerRank;
  // Balancing: each rank appends its kernel time to its slice, so the all-gather that moves the
  // slices also tells every rank how fast every other was on this layer.
  const size_t tail = balance ? sizeof(double) : 0;
  std::vector<double> rate(static_cast<size_t>(P), 0.0);
  std::vector<float> x(static_cast<size_t>(m * cfg_.k));
  const int64_t maxRows = balance ? cfg_.n : cfg_.rowHi - cfg_.rowLo;
  std::vector<char> mine(static_cast<size_t>(std::max<int64_t>(1, m * maxRows)) * 4 + tail);
  std::vector<char> gathered(static_cast<size_t>(m * cfg_.n) * 4 + tail * P);
  std::vector<size_t> bytes(static_cast<size_t>(P));
  const bool f32 = f32_;
  const WeightType type = type_;

  PassTimings t;
  double start = Now();
  for (int it = 0; it < iters; ++it) {
    FillUniform(x.data(), m * cfg_.k, seed, kInputStream + static_cast<uint64_t>(it), 0);
    bool last = it == iters - 1;
    for (int l = 0; l < cfg_.layers; ++l) {
      int64_t myLo = cfg_.rowLo, myRows = cfg_.rowHi - cfg_.rowLo;
      if (balance) {
        myLo = 0;
        for (int r = 0; r < me; ++r) myLo += rows[static_cast<size_t>(r)];
        myRows = rows[static_cast<size_t>(me)];
      }
      for (int r = 0; r < P; ++r) bytes[static_cast<size_t>(r)] = static_cast<size_t>(m * rows[static_cast<size_t>(r)]) * 4 + tail;
      float* yLocal = reinterpret_cast<float*>(mine.data());
      double t0 = Now();
      const uint8_t* w = static_cast<const uint8_t*>(weights_[l]->data()) + (myLo - heldLo_) * rowBytes_;
      if (myRows > 0) {
        if (f32) {
          GemmArgs g;
          g.transB = true;
          g.m = m;
          g.n = myRows;
          g.k = cfg_.k;
          g.a = x.data();
          g.lda = cfg_.k;
          g.b = reinterpret_cast<const float*>(w);
          g.ldb = cfg_.k;
          g.c = yLocal;
          g.ldc = myRows;
          GemmF32(g, pool);
        } else {
          QuantMatmulArgs q;
          q.type = type;
          q.w = w;
          q.n = myRows;
          q.k = cfg_.k;
          q.wStride = rowBytes_;
          q.x = x.data();
          q.m = m;
          q.ldx = cfg_.k;
          q.y = yLocal;
          q.ldy = myRows;
          MatmulQ(q, pool);
        }
      }
      double t1 = Now();
      if (balance) {
        double kernel = t1 - t0;
        std::memcpy(mine.data() + static_cast<size_t>(m * myRows) * 4, &kernel, sizeof kernel);
      }
      peers.WaitForPeers();  // separates waiting for a slower peer from moving the data
      double t2 = Now();
      peers.AllGatherV(mine.data(), gathered.data(), bytes);
      double t3 = Now();
      t.computeSeconds += t1 - t0;
      t.waitSeconds += t2 - t1;
      t.exchangeSeconds += t3 - t2;
      if (last && yOut) {
        // gathered holds rank-major blocks (m × rows_r each); lay Y out row-major m × n.
        float* y = yOut + static_cast<int64_t>(l) * m * cfg_.n;
        int64_t col = 0;
        const char* src = gathered.data();
        for (int r = 0; r < P; ++r) {
          int64_t rr = rows[static_cast<size_t>(r)];
          for (int64_t i = 0; i < m; ++i) std::memcpy(y + i * cfg_.n + col, src + i * rr * 4, rr * 4);
          src += bytes[static_cast<size_t>(r)];
          col += rr;
        }
      }
      if (balance) {
        // Smoothed rates from every rank's kernel time, then the split for the next layer.
        const char* src = gathered.data();
        for (int r = 0; r < P; ++r) {
          size_t b = bytes[static_cast<size_t>(r)];
          double secs;
          std::memcpy(&secs, src + b - tail, sizeof secs);
          double now = static_cast<double>(rows[static_cast<size_t>(r)]) / std::max(secs, 1e-7);
          double& avg = rate[static_cast<size_t>(r)];
          avg = avg == 0 ? now : 0.9 * avg + 0.1 * now;  // slow: follow lasting differences, not one noisy layer
          src += b;
        }
        rows = SplitByRate(cfg_.n, rate);
      }
    }
    if (last && xOut) std::memcpy(xOut, x.data(), x.size() * 4);
    ++t.passes;
  }
  t.seconds = Now() - start;
  t.rows = rows;
  return t;
}

}  // namespace redblue
