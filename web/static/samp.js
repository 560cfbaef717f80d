// Send a table to TOPCAT over SAMP (Web Profile: XML-RPC to the hub on localhost:21012).
// Only the two calls the page needs: register, then notifyAll table.load.votable.

const HUB = "http://localhost:21012/";

function value(v) {
  if (typeof v === "string") return `<value><string>${v.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</string></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(value).join("")}</data></array></value>`;
  return `<value><struct>${Object.entries(v).map(([k, x]) => `<member><name>${k}</name>${value(x)}</member>`).join("")}</struct></value>`;
}

async function call(method, params) {
  const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((p) => `<param>${value(p)}</param>`).join("")}</params></methodCall>`;
  const reply = await fetch(HUB, { method: "POST", body, headers: { "Content-Type": "text/xml" } });
  const doc = new DOMParser().parseFromString(await reply.text(), "application/xml");
  if (doc.querySelector("fault")) throw new Error("the SAMP hub refused the call");
  return doc;
}

export async function sendTable(url, name) {
  let doc;
  try {
    doc = await call("samp.webhub.register", [{ "samp.name": "caomai" }]);
  } catch (e) {
    throw new Error("no SAMP hub answers on this computer: start TOPCAT first");
  }
  const key = [...doc.getElementsByTagName("member")]
    .find((m) => m.querySelector("name").textContent === "samp.private-key")
    ?.querySelector("string")?.textContent;
  if (!key) throw new Error("the SAMP hub gave no key");
  await call("samp.webhub.notifyAll", [key, { "samp.mtype": "table.load.votable", "samp.params": { url, name } }]);
  await call("samp.webhub.unregister", [key]);
}
