// The coordinator: plans a run, stages its inputs, starts its steps and collects its outputs.
//  1. cluster.ts: a run's machines as hosts that take the same requests: this box in process
//     (`redblue run`, the one-host case) or each supervisor over gRPC; remote-cluster.ts: a
//     session with each host supervisor; local-plan.ts: plans and placement for those machines;
//     reported-cluster.ts: the hosts of a hostfile as they report themselves.
//  2. gemm-run.ts: one C = A·B on one host or many, following the plan (on one host it survives
//     lost executors, recomputing only the chunks lost).
//  3. layer-run.ts: the weight-stationary layer stack, on one host or many.
//  3b. generate.ts / generate-run.ts / remote-generate.ts: a GGUF model's split loaded and run
//     token by token, one host (LocalCluster) or across hosts (RemoteCluster), one generate();
//     chat-run.ts: a conversation on one model load, each turn from the KV cache of the last;
//     draft.ts: a draft model on executors of its own guessing the next tokens (--draft).
//  4. verify.ts: a result checked against one OpenBLAS call; npy.ts: the user's .npy files (only
//     the coordinator reads and writes user files; executors see bytes in staging areas).
export {};
