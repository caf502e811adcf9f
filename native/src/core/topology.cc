// Machine topology through hwloc: packages, NUMA nodes with memory, distances and huge pages,
// cores and hardware threads.
#include "core/topology.h"

#include <hwloc.h>

#include <fstream>
#include <memory>
#include <stdexcept>

namespace redblue {
namespace {

struct TopoHandle {
  hwloc_topology_t t = nullptr;
  TopoHandle() {
    if (hwloc_topology_init(&t) != 0) throw std::runtime_error("hwloc_topology_init failed");
    hwloc_topology_set_flags(t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
    if (hwloc_topology_load(t) != 0) {
      hwloc_topology_destroy(t);
      throw std::runtime_error("hwloc could not read this machine's topology");
    }
  }
  ~TopoHandle() { hwloc_topology_destroy(t); }
  TopoHandle(const TopoHandle&) = delete;
  TopoHandle& operator=(const TopoHandle&) = delete;
};

std::vector<int> CpusOf(hwloc_const_bitmap_t set) {
  std::vector<int> out;
  if (!set) return out;
  unsigned i;
  hwloc_bitmap_foreach_begin(i, set) { out.push_back(static_cast<int>(i)); }
  hwloc_bitmap_foreach_end();
  return out;
}

uint64_t ReadSysfsCount(const std::string& path) {
  std::ifstream f(path);
  uint64_t v = 0;
  if (f >> v) return v;
  return 0;
}

}  // namespace

Topology ReadTopology() {
  TopoHandle h;
  Topology topo;
  topo.hwlocVersion = HWLOC_VERSION;
  topo.hardwareThreads = hwloc_get_nbobjs_by_type(h.t, HWLOC_OBJ_PU);

  int npkg = hwloc_get_nbobjs_by_type(h.t, HWLOC_OBJ_PACKAGE);
  for (int i = 0; i < npkg; ++i) {
    hwloc_obj_t p = hwloc_get_obj_by_type(h.t, HWLOC_OBJ_PACKAGE, i);
    Package pkg;
    pkg.id = p->os_index == HWLOC_UNKNOWN_INDEX ? i : static_cast<int>(p->os_index);
    pkg.cpus = CpusOf(p->cpuset);
    unsigned n;
    hwloc_bitmap_foreach_begin(n, p->nodeset) { pkg.nodes.push_back(static_cast<int>(n)); }
    hwloc_bitmap_foreach_end();
    topo.packages.push_back(pkg);
  }

  int nnodes = hwloc_get_nbobjs_by_type(h.t, HWLOC_OBJ_NUMANODE);
  std::vector<hwloc_obj_t> nodeObjs;
  for (int i = 0; i < nnodes; ++i) {
    hwloc_obj_t o = hwloc_get_obj_by_type(h.t, HWLOC_OBJ_NUMANODE, i);
    nodeObjs.push_back(o);
    NumaNode node;
    node.id = static_cast<int>(o->os_index);
    node.cpus = CpusOf(o->cpuset);
    node.memoryBytes = o->attr ? o->attr->numanode.local_memory : 0;
    if (o->attr) {
      for (unsigned j = 0; j < o->attr->numanode.page_types_len; ++j) {
        const auto& pt = o->attr->numanode.page_types[j];
        if (pt.size <= 4096) continue;  // only huge page sizes
        HugePageInfo hp;
        hp.pageBytes = pt.size;
        hp.total = pt.count;
        hp.free = ReadSysfsCount("/sys/devices/system/node/node" + std::to_string(node.id) + "/hugepages/hugepages-" +
                                 std::to_string(pt.size / 1024) + "kB/free_hugepages");
        // hwloc caches counts at load; sysfs is the live truth for the total too.
        uint64_t liveTotal = ReadSysfsCount("/sys/devices/system/node/node" + std::to_string(node.id) +
                                            "/hugepages/hugepages-" + std::to_string(pt.size / 1024) + "kB/nr_hugepages");
        hp.total = liveTotal ? liveTotal : hp.total;
        node.hugePages.push_back(hp);
      }
    }
    for (size_t p = 0; p < topo.packages.size(); ++p)
      for (int nid : topo.packages[p].nodes)
        if (nid == node.id) node.package = topo.packages[p].id;
    topo.nodes.push_back(node);
  }

  int ncores = hwloc_get_nbobjs_by_type(h.t, HWLOC_OBJ_CORE);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t c = hwloc_get_obj_by_type(h.t, HWLOC_OBJ_CORE, i);
    Core core;
    core.id = i;
    core.cpus = CpusOf(c->cpuset);
    hwloc_obj_t anc = hwloc_get_ancestor_obj_by_type(h.t, HWLOC_OBJ_PACKAGE, c);
    if (anc) core.package = anc->os_index == HWLOC_UNKNOWN_INDEX ? static_cast<int>(anc->logical_index)
                                                                  : static_cast<int>(anc->os_index);
    topo.cores.push_back(core);
  }

  // Distances: hwloc's latency matrix when the firmware gives one (SLIT), else 10 local / 20 remote.
  size_t n = topo.nodes.size();
  topo.distances.assign(n, std::vector<uint64_t>(n, 20));
  for (size_t i = 0; i < n; ++i) topo.distances[i][i] = 10;
  unsigned nr = 1;
  struct hwloc_distances_s* dist = nullptr;
  if (hwloc_distances_get_by_type(h.t, HWLOC_OBJ_NUMANODE, &nr, &dist, HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) == 0 &&
      nr >= 1 && dist) {
    for (unsigned i = 0; i < dist->nbobjs; ++i)
      for (unsigned j = 0; j < dist->nbobjs; ++j) {
        int a = -1, b = -1;
        for (size_t k = 0; k < n; ++k) {
          if (nodeObjs[k] == dist->objs[i]) a = static_cast<int>(k);
          if (nodeObjs[k] == dist->objs[j]) b = static_cast<int>(k);
        }
        if (a >= 0 && b >= 0) topo.distances[a][b] = dist->values[i * dist->nbobjs + j];
      }
    hwloc_distances_release(h.t, dist);
  }
  return topo;
}

}  // namespace redblue
