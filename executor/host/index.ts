// One host (the one-host case of many: `redblue run` drives 1, 2, 6, 7 from its own process through
// in-process.ts; `redblue executor` serves the same over gRPC with 3-5):
//  1. process-group.ts: spawns one node executor per (virtual) NUMA node and watches them.
//  2. local-cluster.ts: the host's executors as a cluster: sockets, staging area, teardown.
//  3. supervisor.ts: multi-host mode; serves the host on TCP to a coordinator (proto/hosts.proto)
//     and only controls: auth, one session at a time, handlers wired to 4-6.
//  4. session.ts: a coordinator's session: its executors, the peer hosts, the leaders' native link.
//  5. staging.ts: the staging area and the native data path serving it (token and/or TLS).
//  6. steps.ts: step dispatch: each request checked and fanned out to the node executors.
//  7. host-validate.ts: every field a supervisor receives is checked here before use.
//  8. in-process.ts: the host of `redblue run`: steps.ts and the staging area, in the coordinator.
//  (serve.ts, options.ts: `redblue executor`'s flags and start-up.)
export {};
