// The coordinator: plans a run, stages its inputs, starts its steps and collects its outputs.
//  1. local-plan.ts: this box as the planner's cluster; reported-cluster.ts: the hosts of a
//     hostfile as they report themselves; remote-cluster.ts: a session with each host supervisor.
//  2. gemm-run.ts / remote-gemm.ts: one C = A·B on one host / across hosts, following the plan.
//  3. layer-run.ts / remote-layer.ts: the weight-stationary layer stack, one host / across hosts.
//  3b. generate.ts / generate-run.ts / remote-generate.ts: a GGUF model's split loaded and run
//     token by token, one host (LocalCluster) or across hosts (RemoteCluster), one generate().
//  4. verify.ts: a result checked against one OpenBLAS call; npy.ts: the user's .npy files (only
//     the coordinator reads and writes user files; executors see bytes in staging areas).
export {};
