// The project's one byte formatter (plan text, plan pages, run output, errors): 1536 → "1.5 KiB".
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? Math.round(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 1)} ${units[u]}`;
}
