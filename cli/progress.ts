// A one-line progress bar on stderr when it is a terminal; silent otherwise (logs stay clean).
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private last = '';
  constructor(private readonly label: string) {}

  update(done: number, total: number, detail = ''): void {
    if (!this.tty) return;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(frac * width);
    const line = `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} ${detail}`;
    if (line === this.last) return;
    this.last = line;
    process.stderr.write(`\r${line.padEnd(process.stderr.columns ? process.stderr.columns - 1 : 79)}`);
  }

  done(): void {
    if (this.tty && this.last) process.stderr.write('\n');
    this.last = '';
  }
}
