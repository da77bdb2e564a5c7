// fmb review page: shows the first object of the queue, labels it by key or click, redraws the re-ranked queue.
"use strict";
let state = null;
let busy = false;

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
function fmt(v) {
  if (v === null || v === undefined) return "–";
  return typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(5))) : String(v);
}
function fill(id, caption, rows) {
  const t = document.getElementById(id);
  t.innerHTML = "";
  const c = document.createElement("caption"); c.textContent = caption; t.appendChild(c);
  for (const [k, v] of rows) { const tr = t.insertRow(); cell(tr, k); cell(tr, fmt(v)); }
}

function render(s) {
  state = s;
  document.getElementById("n-labelled").textContent = s.labelled;
  document.getElementById("progress").textContent =
    `${s.labelled} labelled, ${s.remaining} to go, ${s.total} objects from ${s.systems.length} systems`;
  const cur = s.next[0];
  const title = document.getElementById("card-title");
  const img = document.getElementById("card-img");
  if (!cur) { title.textContent = "the queue is done"; img.removeAttribute("src"); }
  else {
    title.textContent = `#${cur.place}: object ${cur.object_id}`;
    title.dataset.objectId = cur.object_id;
    img.src = cur.image;
    fill("why", "why it is here", [["anomaly rank (fused)", cur.anomaly_rank], ["fused anomaly score", cur.fused],
      ["predicted relevance Û (0–5)", cur.relevance], ["distance to labels d/d̄", cur.distance],
      ["score (re-ranked)", cur.score]]);
    fill("catalogue", "catalogue", [["object_id", cur.object_id], ...Object.entries(cur.catalogue)]);
    fill("systems", "ranked by", cur.systems.map(x => [x.system, x.rank]));
  }
  const next = document.getElementById("next");
  next.dataset.version = s.version;
  const body = next.tBodies[0];
  body.innerHTML = "";
  for (const c of s.next) {
    const tr = body.insertRow();
    tr.dataset.objectId = c.object_id;
    cell(tr, c.place); cell(tr, c.object_id); cell(tr, c.anomaly_rank); cell(tr, fmt(c.relevance)); cell(tr, c.score);
  }
  if (s.labelled) {
    const plain = s.next.map(c => c.anomaly_rank).sort((a, b) => a - b);
    const moved = s.next.filter((c, i) => c.anomaly_rank !== plain[i]).length;
    document.getElementById("rerank-info").textContent =
      `re-ranked after ${s.labelled} labels: ${moved} of the next ${s.next.length} are out of anomaly-rank order`;
  }
  const ul = document.getElementById("recent");
  ul.innerHTML = "";
  for (const r of s.recent) {
    const li = document.createElement("li");
    li.className = "lab-" + r.label;
    li.dataset.objectId = r.object_id;
    li.textContent = `${r.object_id}: ${r.label}` + (r.note ? ` (${r.note})` : "");
    ul.appendChild(li);
  }
}

async function load() {
  const r = await fetch("/api/queue");
  render(await r.json());
}

async function sendLabel(label) {
  if (busy || !state || !state.next[0]) return;
  busy = true;
  const note = document.getElementById("note");
  try {
    const r = await fetch("/api/label", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({object_id: state.next[0].object_id, label: label, note: note.value})});
    const s = await r.json();
    if (!r.ok) { document.getElementById("rerank-info").textContent = "error: " + s.error; return; }
    note.value = "";
    render(s);
  } finally { busy = false; }
}

document.addEventListener("keydown", (e) => {
  const note = document.getElementById("note");
  if (document.activeElement === note) { if (e.key === "Escape" || e.key === "Enter") note.blur(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "n") { e.preventDefault(); note.focus(); return; }
  const keys = state ? state.keys : {};
  if (keys[e.key]) { e.preventDefault(); sendLabel(keys[e.key]); }
});
for (const b of document.querySelectorAll(".label-btn")) b.addEventListener("click", () => sendLabel(b.dataset.label));
load();
