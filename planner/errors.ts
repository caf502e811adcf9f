// Bad planner input (sizes, rank counts, memory, topology files): the CLI prints the message and
// exits with status 2. A RangeError so callers without the CLI's UsageError treat it the same way.
export class PlanInputError extends RangeError {
  override name = 'PlanInputError';
}
