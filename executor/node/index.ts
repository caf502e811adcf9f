// The node executor (one process per NUMA node; started by host/process-group.ts):
//  1. main.ts: binds to its node, serves the control plane (transport/control.ts) and dispatches
//     each request to a native step (typed in native/steps.ts); args.ts parses its command line.
//  2. gemm-layout.ts: a gemm's staging area (offsets, partial slots, C rows), the one layout the
//     coordinator, the supervisor and the executors share.
//  3. host-group.ts: the host's executors as one shared-memory group (barriers, all-gathers).
//  4. cross-host.ts: multi-host mode, the collective that spans hosts through the host leader.
export {};
