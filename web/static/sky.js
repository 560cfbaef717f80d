// Footprints of the results on the sky, drawn on a canvas around their mean centre (RA grows to
// the left): gnomonic for a field of a few degrees, plate carree (RA scaled by cos Dec) when the
// results spread wider, where the gnomonic one blows up. No tiles, no network: works offline.

const RAD = Math.PI / 180;

function plate(ra, dec, ra0, dec0) {
  const a = ((ra - ra0 + 540) % 360) - 180;
  return [-a * Math.cos(dec0 * RAD), dec - dec0];
}

function gnomonic(ra, dec, ra0, dec0) {
  const a = (ra - ra0) * RAD, d = dec * RAD, d0 = dec0 * RAD;
  const cosc = Math.sin(d0) * Math.sin(d) + Math.cos(d0) * Math.cos(d) * Math.cos(a);
  return [
    -(Math.cos(d) * Math.sin(a)) / cosc / RAD,
    (Math.cos(d0) * Math.sin(d) - Math.sin(d0) * Math.cos(d) * Math.cos(a)) / cosc / RAD,
  ];
}

// polygons: [{id, vertices: [ra1, dec1, ra2, dec2, ...], selected}]
export function drawFootprints(canvas, polygons) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#0b1020";
  ctx.fillRect(0, 0, W, H);
  const valid = polygons.filter((p) => p.vertices && p.vertices.length >= 6);
  if (!valid.length) {
    ctx.fillStyle = "#9aa";
    ctx.fillText("no footprints to show", 10, 20);
    return;
  }
  // mean centre (RA through unit vectors, safe across 0/360)
  let x = 0, y = 0, dsum = 0, n = 0;
  for (const p of valid) for (let i = 0; i < p.vertices.length; i += 2) {
    x += Math.cos(p.vertices[i] * RAD); y += Math.sin(p.vertices[i] * RAD); dsum += p.vertices[i + 1]; n++;
  }
  const ra0 = (Math.atan2(y, x) / RAD + 360) % 360, dec0 = dsum / n;
  const wide = valid.some((p) => {
    for (let i = 0; i < p.vertices.length; i += 2) {
      const [u, v] = plate(p.vertices[i], p.vertices[i + 1], ra0, dec0);
      if (Math.hypot(u, v) > 20) return true;
    }
    return false;
  });
  const project = wide ? plate : gnomonic;
  const proj = valid.map((p) => {
    const pts = [];
    for (let i = 0; i < p.vertices.length; i += 2) pts.push(project(p.vertices[i], p.vertices[i + 1], ra0, dec0));
    return { ...p, pts };
  });
  const all = proj.flatMap((p) => p.pts);
  const us = all.map((q) => q[0]), vs = all.map((q) => q[1]);
  const [u0, u1, v0, v1] = [Math.min(...us), Math.max(...us), Math.min(...vs), Math.max(...vs)];
  const span = Math.max(u1 - u0, v1 - v0, 1e-3) * 1.15;
  const scale = Math.min(W, H) / span;
  const toPx = ([u, v]) => [W / 2 - (u - (u0 + u1) / 2) * scale, H / 2 - (v - (v0 + v1) / 2) * scale];
  ctx.lineWidth = 1;
  for (const p of proj) {
    ctx.beginPath();
    p.pts.map(toPx).forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.closePath();
    ctx.strokeStyle = p.selected ? "#ffd84a" : "#4ad2ff";
    ctx.fillStyle = p.selected ? "rgba(255,216,74,0.25)" : "rgba(74,210,255,0.08)";
    ctx.fill();
    ctx.stroke();
  }
  ctx.fillStyle = "#cde";
  ctx.fillText(`centre RA ${ra0.toFixed(3)}°, Dec ${dec0.toFixed(3)}°; field ${span.toFixed(2)}°${wide ? " (plate carrée)" : ""}`, 8, H - 8);
}
