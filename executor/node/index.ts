// The node executor (one process per NUMA node; started by host/process-group.ts):
//  1. main.ts: binds to its node, serves the control plane (transport/control.ts) and dispatches
//     each request to a native step; args.ts parses its command line.
//  2. native-steps.ts: the typed face of the native steps (gemm, layer stack) and the partial-slot
//     arithmetic they share with the coordinator.
//  3. host-group.ts: the host's executors as one shared-memory group (barriers, all-gathers).
//  4. cross-host.ts: multi-host mode, the collective that spans hosts through the host leader.
export {};
