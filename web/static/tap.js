// Run ADQL through this archive's TAP service (/tap/sync) and read the VOTable it answers.

export function syncUrl(adql, format = "votable") {
  const q = new URLSearchParams({ LANG: "ADQL", REQUEST: "doQuery", QUERY: adql, RESPONSEFORMAT: format });
  return `/tap/sync?${q}`;
}

// -> {fields: [{name, datatype, arraysize, xtype}], rows: [[...]], overflow: bool}
export async function runQuery(adql, { signal } = {}) {
  const body = new URLSearchParams({ LANG: "ADQL", REQUEST: "doQuery", QUERY: adql });
  const reply = await fetch("/tap/sync", { method: "POST", body, signal });
  const text = await reply.text();
  const doc = new DOMParser().parseFromString(text, "application/xml");
  const error = doc.querySelector('INFO[name="QUERY_STATUS"][value="ERROR"]');
  if (error || !reply.ok) {
    throw new Error(error ? error.textContent.trim() : `TAP answered ${reply.status}`);
  }
  const fields = [...doc.getElementsByTagName("FIELD")].map((f) => ({
    name: f.getAttribute("name"),
    datatype: f.getAttribute("datatype"),
    arraysize: f.getAttribute("arraysize"),
    xtype: f.getAttribute("xtype"),
  }));
  const rows = [...doc.getElementsByTagName("TR")].map((tr) =>
    [...tr.getElementsByTagName("TD")].map((td, i) => convert(td.textContent, fields[i])),
  );
  const overflow = !!doc.querySelector('INFO[name="QUERY_STATUS"][value="OVERFLOW"]');
  return { fields, rows, overflow };
}

function convert(text, field) {
  if (text === "") return null;
  const numeric = ["double", "float", "int", "long", "short", "unsignedByte"].includes(field.datatype);
  if (field.arraysize && field.datatype !== "char" && field.datatype !== "unicodeChar") {
    return text.trim().split(/\s+/).map(Number);
  }
  return numeric ? Number(text) : text;
}

// rows as objects keyed by lower-case column name
export function records(result) {
  const names = result.fields.map((f) => f.name.toLowerCase());
  return result.rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
}
