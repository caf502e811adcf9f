// One host (the one-host case of many: `redblue run` uses 1-2 directly, `redblue executor` adds 3):
//  1. process-group.ts: spawns one node executor per (virtual) NUMA node and watches them.
//  2. local-cluster.ts: the host's executors as a cluster: sockets, staging area, teardown.
//  3. supervisor.ts: multi-host mode; serves the host on TCP to a coordinator (proto/hosts.proto):
//     sessions, auth, staging, the exchange between hosts, step dispatch to the node executors.
//  4. host-validate.ts: every field a supervisor receives is checked here before use.
export {};
