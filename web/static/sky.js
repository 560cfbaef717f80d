// Footprints of the results on the sky, drawn on a canvas in a gnomonic projection around
// their mean centre (RA grows to the left). No tiles and no network: it works offline.

const RAD = Math.PI / 180;

function project(ra, dec, ra0, dec0) {
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
  const proj = valid.map((p) => {
    const pts = [];
    for (let i = 0; i < p.vertices.length; i += 2) pts.push(project(p.vertices[i], p.vertices[i + 1], ra0, dec0));
    return { ...p, pts };
  });
  const all = proj.flatMap((p) => p.pts);
  const span = Math.max(
    Math.max(...all.map((q) => q[0])) - Math.min(...all.map((q) => q[0])),
    Math.max(...all.map((q) => q[1])) - Math.min(...all.map((q) => q[1])),
    1e-3,
  ) * 1.15;
  const scale = Math.min(W, H) / span;
  const toPx = ([u, v]) => [W / 2 - u * scale, H / 2 - v * scale];
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
  ctx.fillText(`centre RA ${ra0.toFixed(3)}°, Dec ${dec0.toFixed(3)}°; field ${span.toFixed(3)}°`, 8, H - 8);
}
