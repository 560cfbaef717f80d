// The ADQL the page builds from the marks, the metadata fields and the selection. Pure
// functions: the same inputs give the same text, which the page shows and runs as it is.

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;
const nodeList = (set) => [...set].sort((a, b) => a - b).join(",");

export function mjdOf(isoDate) {
  return Date.parse(`${isoDate}T00:00:00Z`) / 86400000 + 40587;
}

export const COLUMNS = [
  "p.planeID",
  "p.publisherID",
  "o.collection",
  "o.instrument_name",
  "p.energy_bandpassName",
  "p.time_bounds_lower",
  "f.map2_node",
  "f.n_detected",
  "p.position_bounds",
];

export const FROM = [
  "FROM caom2.Observation AS o",
  "JOIN caom2.Plane AS p ON p.obsID = o.obsID",
  "JOIN caomai.fingerprint AS f ON f.planeID = p.planeID",
];

// marks: {map1: Map(node -> "in"|"out"), map2: ...}; filters: the form's values;
// similarTo: publisherIDs (re-rank by their combination) or null; nodeOf: {ref, radius} or null
export function conditions({ marks, filters, nodeOf = null, only = null }) {
  const where = [];
  const pick = (map, kind) => new Set([...marks[map]].filter(([, k]) => k === kind).map(([n]) => n));
  const in2 = pick("map2", "in"), out2 = pick("map2", "out");
  const in1 = pick("map1", "in"), out1 = pick("map1", "out");
  if (in2.size) where.push(`in_node(f.map2_node, '${nodeList(in2)}') = 1`);
  if (out2.size) where.push(`in_node(f.map2_node, '${nodeList(out2)}') = 0`);
  if (in1.size) where.push(`has_object_node(p.planeID, '${nodeList(in1)}', 1) = 1`);
  if (out1.size) where.push(`has_object_node(p.planeID, '${nodeList(out1)}', 1) = 0`);
  if (nodeOf) where.push(`in_node(f.map2_node, ${quote(nodeOf.ref)}, ${nodeOf.radius | 0}) = 1`);
  const f = filters || {};
  if (f.collection) where.push(`o.collection = ${quote(f.collection)}`);
  if (f.instrument) where.push(`o.instrument_name = ${quote(f.instrument)}`);
  if (f.filter) where.push(`p.energy_bandpassName = ${quote(f.filter)}`);
  if (f.date_from) where.push(`p.time_bounds_lower >= ${mjdOf(f.date_from)}`);
  if (f.date_to) where.push(`p.time_bounds_lower < ${mjdOf(f.date_to) + 1}`);
  if (f.ra !== "" && f.ra != null && f.dec !== "" && f.dec != null && f.radius) {
    where.push(
      `CONTAINS(p.position_bounds_center, CIRCLE('ICRS', ${Number(f.ra)}, ${Number(f.dec)}, ${Number(f.radius)})) = 1`,
    );
  }
  if (only && only.length) where.push(`p.publisherID IN (${only.map(quote).join(", ")})`);
  return where;
}

// ``vector``: the column "similar" compares (f.image_vec where Map 2 is trained on image
// vectors, else f.fp); a reference is resolved to the same column of the referenced images
export function buildQuery({ marks, filters, similarTo = null, nodeOf = null, only = null, top = 100, columns = COLUMNS, vector = "fp" }) {
  const cols = [...columns];
  const column = vector === "image_vec" ? "image_vec" : "fp";
  if (similarTo && similarTo.length) cols.push(`fp_similar(f.${column}, ${quote(similarTo.join("|"))}) AS sim`);
  const where = conditions({ marks, filters, nodeOf, only });
  const lines = [`SELECT TOP ${Math.max(1, top | 0)} ${cols.join(", ")}`, ...FROM];
  if (where.length) lines.push(`WHERE ${where.join("\n  AND ")}`);
  lines.push(similarTo && similarTo.length ? "ORDER BY sim DESC" : "ORDER BY p.publisherID");
  return lines.join("\n");
}
