// The engine's processes, one folder per role. A role imports only those listed before it
// (test/foundation/layers.test.ts checks); a step's bytes go the other way, coordinator → node:
//  1. node/ — the node executor: one process per (virtual) NUMA node, bound to it, serving the
//     control plane on a unix socket and running whole steps natively on its pinned threads.
//  2. launch/ — how processes get placed on hosts: hostfiles, SSH, and the places a batch system
//     (Slurm, Open MPI) gives; no state of a run.
//  3. host/ — one host: the group of its node executors (LocalCluster, ProcessGroup) and, in
//     multi-host mode, the supervisor that serves the host to a coordinator (sessions, auth,
//     staging, validation).
//  4. coordinator/ — plans (with the planner), stages inputs, starts steps and collects outputs, on
//     one host (LocalCluster) or many (RemoteCluster); reads and writes the user's .npy files.
// See docs/architecture.md for the picture.
export {};
