// Quick-select (as ALMA's archive): k-means on unit-normalised fingerprints, seeded with
// k-means++ from a fixed generator so the same result gives the same groups.

function unit(v) {
  let s = 0;
  for (const x of v) s += x * x;
  s = Math.sqrt(s) || 1;
  return v.map((x) => x / s);
}

function dist2(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i] - b[i]; s += d * d; }
  return s;
}

function rng(seed) {
  let t = seed >>> 0;
  return () => { t += 0x6d2b79f5; let r = Math.imul(t ^ (t >>> 15), 1 | t); r ^= r + Math.imul(r ^ (r >>> 7), 61 | r); return ((r ^ (r >>> 14)) >>> 0) / 4294967296; };
}

// vectors: arrays of numbers; -> [{centre, members: [index...] nearest first}]
export function kmeans(vectors, k = 5, iterations = 30, seed = 1) {
  const xs = vectors.map(unit);
  const n = xs.length;
  if (n === 0) return [];
  k = Math.min(k, n);
  const random = rng(seed);
  const centres = [xs[Math.floor(random() * n)]];
  while (centres.length < k) {
    const d = xs.map((x) => Math.min(...centres.map((c) => dist2(x, c))));
    const total = d.reduce((a, b) => a + b, 0);
    let r = random() * total, i = 0;
    while (i < n - 1 && r > d[i]) { r -= d[i]; i++; }
    centres.push(xs[i]);
  }
  let assign = new Array(n).fill(0);
  for (let it = 0; it < iterations; it++) {
    assign = xs.map((x) => {
      let best = 0, bd = Infinity;
      centres.forEach((c, j) => { const d = dist2(x, c); if (d < bd) { bd = d; best = j; } });
      return best;
    });
    for (let j = 0; j < k; j++) {
      const members = xs.filter((_, i) => assign[i] === j);
      if (!members.length) continue;
      centres[j] = members[0].map((_, d) => members.reduce((s, m) => s + m[d], 0) / members.length);
    }
  }
  return centres.map((c, j) => ({
    centre: c,
    members: xs.map((x, i) => [i, dist2(x, c)]).filter(([i]) => assign[i] === j)
      .sort((a, b) => a[1] - b[1]).map(([i]) => i),
  })).filter((g) => g.members.length).sort((a, b) => b.members.length - a.members.length);
}
