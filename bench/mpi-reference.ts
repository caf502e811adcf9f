// The Open MPI reference of `bench collectives`: a small C program calling MPI_Allreduce and
// MPI_Allgather, written and built with mpicc into a cache directory on first use, run with
// mpirun between the same number of processes. It prints "op bytes seconds-per-op" lines.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../common/errors.js';

export interface MpiCase {
  op: 'allreduce' | 'allgather';
  bytes: number;
  iters: number;
}

const SOURCE = String.raw`#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* argv: reps, then triples "op bytes iters". All-gather: bytes is the gathered total, bytes/size
   per rank. Each case is timed reps times; the best (least disturbed) time is printed. */
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int reps = argc > 1 ? atoi(argv[1]) : 1;
  for (int a = 2; a + 2 < argc; a += 3) {
    const char* op = argv[a];
    long long bytes = atoll(argv[a + 1]);
    int iters = atoi(argv[a + 2]);
    int n = (int)(bytes / 4);
    float* x = calloc((size_t)n + 16, 4);
    float* y = calloc((size_t)n + 16, 4);
    int warm = iters < 10 ? iters : 10;
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      double t0 = 0;
      for (int i = 0; i < warm + iters; ++i) {
        if (i == warm) {
          MPI_Barrier(MPI_COMM_WORLD);
          t0 = MPI_Wtime();
        }
        if (strcmp(op, "allreduce") == 0)
          MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else
          MPI_Allgather(x, n / size, MPI_FLOAT, y, n / size, MPI_FLOAT, MPI_COMM_WORLD);
      }
      double t = (MPI_Wtime() - t0) / iters;
      if (t < best) best = t;
    }
    double t = best;
    if (rank == 0) {
      printf("%s %lld %.9e\n", op, bytes, t);
      fflush(stdout);
    }
    free(x);
    free(y);
  }
  MPI_Finalize();
  return 0;
}
`;

/** Builds the helper once per source version; returns the executable's path. */
export function buildMpiHelper(): string {
  const hash = createHash('sha256').update(SOURCE).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `redblue-mpi-bench-${hash}`);
  const exe = join(dir, 'mpi_collectives');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'mpi_collectives.c'), SOURCE);
  try {
    execFileSync('mpicc', ['-O2', '-o', exe, join(dir, 'mpi_collectives.c')], { stdio: 'pipe' });
  } catch (err) {
    throw new UsageError(
      `cannot build the Open MPI reference with mpicc (install openmpi-bin and libopenmpi-dev): ${String(err)}`,
    );
  }
  return exe;
}

/** Best seconds per operation (of `reps` timings) for each case, on rank 0 of `ranks` MPI processes. */
export function runMpi(
  ranks: number,
  bindToCore: boolean,
  reps: number,
  cases: MpiCase[],
): Map<string, number> {
  const exe = buildMpiHelper();
  const args = [
    '--allow-run-as-root',
    '--oversubscribe',
    '--bind-to',
    bindToCore ? 'core' : 'none',
    '-np',
    String(ranks),
    exe,
    String(reps),
    ...cases.flatMap((c) => [c.op, String(c.bytes), String(c.iters)]),
  ];
  let out: string;
  try {
    out = execFileSync('mpirun', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
  } catch (err) {
    throw new UsageError(`mpirun failed (is openmpi-bin installed?): ${String(err)}`);
  }
  const times = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^(allreduce|allgather) (\d+) (\S+)$/.exec(line.trim());
    if (m) times.set(`${m[1]} ${m[2]}`, Number(m[3]));
  }
  for (const c of cases) {
    if (!times.has(`${c.op} ${c.bytes}`))
      throw new Error(`mpirun printed no result for ${c.op} ${c.bytes}:\n${out}`);
  }
  return times;
}
