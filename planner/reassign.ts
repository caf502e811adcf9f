// assignLeftovers(work, executors): the chunks of a plan that a lost executor left undone, dealt
// to the executors left so that the busiest finishes as early as it can (longest first, each to
// the least loaded; ties to the lower index). Pure and deterministic. The chunks keep their
// shapes and partial slots: only who computes them changes, so what the others finished stays.

/** For each of `executors` executors, the indices (into `work`) it computes, in ascending order. */
export function assignLeftovers(work: readonly number[], executors: number): number[][] {
  if (!Number.isSafeInteger(executors) || executors < 1)
    throw new RangeError(`the leftover chunks need at least one executor, got ${executors}`);
  const load = new Array<number>(executors).fill(0);
  const out = Array.from({ length: executors }, () => [] as number[]);
  const order = work.map((w, i) => ({ w, i })).sort((a, b) => b.w - a.w || a.i - b.i);
  for (const { w, i } of order) {
    let best = 0;
    for (let e = 1; e < executors; e++) if (load[e]! < load[best]!) best = e;
    load[best]! += w;
    out[best]!.push(i);
  }
  for (const list of out) list.sort((a, b) => a - b);
  return out;
}
