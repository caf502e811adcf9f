// Measured times of a real run, shown beside the planner's predictions in the HTML report
// (`redblue run --report FILE` / `redblue launch --report FILE` fill this in).

/** Wall-clock seconds one rank spent, as measured by its executor. */
export interface MeasuredRank {
  rank: number;
  /** Seconds in local multiply-adds (the kernel). */
  compute: number;
  /** Seconds moving A, B and partial C between ranks (fetch and reduce). */
  exchange: number;
  /** Seconds from the call's start to the rank's C being final (≥ compute + exchange minus overlap). */
  total: number;
  /** What the rank actually did, when its executor reports it (one host's runs do). */
  executed?: ExecutedSchedule;
}

/** One rank's executed schedule, as its native step counted it. */
export interface ExecutedSchedule {
  /** Bricks computed one after another (the plan's sequential steps). */
  steps: number;
  /** Blocks of A and B fetched into node-local memory, and their bytes. */
  blocksFetched: number;
  bytesFetched: number;
  /** Node-local bytes mapped for the step at most. */
  localPeakBytes: number;
}

export interface MeasuredRun {
  /** One entry per rank that reported; ranks missing here show as "-". */
  ranks: MeasuredRank[];
  /** Free text shown in the page header, e.g. "redblue run, 3 repetitions, median". */
  label?: string;
}
