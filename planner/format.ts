// Byte counts for messages (the planner core does not import the CLI's helpers).
export function formatBytesPlain(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? Math.ceil(v) : v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}
