/** In-place radix-2 FFT of `n` complex values (n a power of two) read with a stride. */
function fft1d(re: Float64Array, im: Float64Array, offset: number, stride: number, n: number, inverse: boolean): void {
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const a = offset + i * stride;
      const b = offset + j * stride;
      let t = re[a]!;
      re[a] = re[b]!;
      re[b] = t;
      t = im[a]!;
      im[a] = im[b]!;
      im[b] = t;
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const angle = ((inverse ? 2 : -2) * Math.PI) / size;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    for (let start = 0; start < n; start += size) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < size / 2; k++) {
        const a = offset + (start + k) * stride;
        const b = offset + (start + k + size / 2) * stride;
        const tr = re[b]! * cr - im[b]! * ci;
        const ti = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a] = re[a]! + tr;
        im[a] = im[a]! + ti;
        const next = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = next;
      }
    }
  }
}

/** In-place 2-D FFT of an n x n complex array (row-major); the inverse is scaled by 1/n^2. */
export function fft2d(re: Float64Array, im: Float64Array, n: number, inverse = false): void {
  for (let row = 0; row < n; row++) fft1d(re, im, row * n, 1, n, inverse);
  for (let col = 0; col < n; col++) fft1d(re, im, col, n, n, inverse);
  if (inverse) {
    const scale = 1 / (n * n);
    for (let i = 0; i < n * n; i++) {
      re[i]! *= scale;
      im[i]! *= scale;
    }
  }
}
