// The kernel scripts' inputs: n floats in [-0.5, 0.5) from a fixed LCG, the same every run.
export function randomFloats(n) {
  const a = new Float32Array(n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}
