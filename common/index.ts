// What every layer may use (it imports nothing of the project):
//  1. errors.ts: UsageError (the user's mistake: one line, exit code 2) and flag-number parsers.
//  2. format.ts: the one byte formatter, plain tables, and shown() for quoting file text in errors.
//  3. wait.ts: settledWithin, a promise's outcome if it comes within a time.
export {};
