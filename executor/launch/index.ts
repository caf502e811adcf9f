// Placing processes on hosts (used by the host supervisor and by the coordinator):
//  1. hostfile.ts: `--hostfile` and `--hosts` lists (host, port, options).
//  2. ssh-launch.ts: starts `redblue executor` on every host over SSH, token on stdin.
//  3. launch-env.ts: where Slurm (`srun`) or Open MPI (`mpirun`) placed this process.
export {};
