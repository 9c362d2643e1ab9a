"use strict";
// The dashboard's only script: polls the JSON API and rewrites the page with textContent (never
// HTML). With daemon.auth_token set, it asks for the token once and keeps it in sessionStorage.
const KEY = "wxflow-token";
const FINAL = ["succeeded", "failed", "cancelled"];
const $ = (sel) => document.querySelector(sel);

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const answer = await fetch(path, { ...options, headers });
  if (answer.status === 401) {
    sessionStorage.removeItem(KEY);
    $("#auth").hidden = false;
    throw new Error("the daemon wants its token (daemon.auth_token)");
  }
  return answer;
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function size(b) {
  if (b >= 1048576) return (b / 1048576).toFixed(1) + " MiB";
  if (b >= 1024) return (b / 1024).toFixed(1) + " KiB";
  return b + " B";
}

function progressText(p) {
  const parts = [p.total_bytes != null ? size(p.bytes || 0) + " of " + size(p.total_bytes) : size(p.bytes || 0)];
  if (p.rows_per_sec > 0) parts.push(Math.round(p.rows_per_sec) + " rows/s");
  if (p.eta_secs != null) parts.push("ETA " + Math.round(p.eta_secs) + " s");
  return parts.join(" · ");
}

function restarts(r) {
  const nonzero = Object.entries(r || {}).filter(([, n]) => n > 0).map(([a, n]) => a + " " + n);
  return nonzero.length ? nonzero.join(", ") : "none";
}

function row(job) {
  const tr = el("tr", null, { "data-id": job.id, "data-state": job.state });
  const link = el("a", job.id, { href: "/jobs/" + encodeURIComponent(job.id) });
  tr.append(el("td"), el("td", job.source, { class: "source" }), el("td", job.output));
  tr.firstChild.append(link);
  const state = el("td", null, { class: "state-cell" });
  state.append(el("span", job.state, { class: "state " + job.state }));
  const bar = el("progress", null, { max: "1" });
  const p = job.progress || {};
  if (job.state === "succeeded") bar.value = 1;
  else if (p.total_bytes > 0) bar.value = p.bytes / p.total_bytes;
  else if (FINAL.includes(job.state)) bar.value = 0;
  const progress = el("td", null, { class: "progress" });
  progress.append(bar, el("span", progressText(p), { class: "figures" }));
  tr.append(state, progress, el("td", restarts(job.restarts), { class: "restarts" }),
    el("td", job.rejected, { class: "rejected" }), el("td", job.error || "", { class: "error" }));
  return tr;
}

async function refreshJobs() {
  const jobs = await (await api("/v1/jobs")).json();
  $("#jobs tbody").replaceChildren(...jobs.map(row));
  $("#empty").hidden = jobs.length > 0;
}

async function submitJob(event) {
  event.preventDefault();
  const form = event.target;
  const out = $("#submit-result");
  out.className = "";
  out.textContent = "submitting…";
  try {
    const body = { source: form.source.value.trim(), output: form.output.value.trim() };
    const settings = form.settings.value.trim();
    if (settings) body.settings = JSON.parse(settings);
    const answer = await api("/v1/jobs", { method: "POST", body: JSON.stringify(body) });
    const json = await answer.json();
    if (!answer.ok) {
      const detail = Array.isArray(json.detail) ? json.detail.join("\n") : String(json.detail);
      throw new Error(json.error + ": " + detail);
    }
    out.textContent = "submitted ";
    out.append(el("a", json.id, { href: "/jobs/" + encodeURIComponent(json.id), id: "submitted" }));
    refreshJobs();
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
  }
}

function figure(summary, path) {
  const v = path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), summary);
  if (v == null) return "";
  return Array.isArray(v) ? v.join(", ") : String(v);
}

async function showResults(id) {
  const summary = await (await api("/v1/jobs/" + id + "/results")).json();
  for (const td of document.querySelectorAll("[data-figure]")) td.textContent = figure(summary, td.dataset.figure);
  for (const img of document.querySelectorAll("[data-plot]")) {
    const answer = await api("/v1/jobs/" + id + "/files/" + img.dataset.plot);
    if (answer.ok) img.src = URL.createObjectURL(await answer.blob());
  }
  document.body.dataset.loaded = "true";
}

async function refreshJob(id) {
  const job = await (await api("/v1/jobs/" + encodeURIComponent(id))).json();
  if (!job.id) return false;
  $("#job tbody").replaceChildren(row(job));
  if (job.state === "succeeded") await showResults(encodeURIComponent(id));
  return FINAL.includes(job.state);
}

// With a token, plain links cannot send it: fetch the file and open it as a blob.
async function openFile(event) {
  if (!sessionStorage.getItem(KEY)) return;
  event.preventDefault();
  const answer = await api(event.currentTarget.getAttribute("href"));
  location.href = URL.createObjectURL(await answer.blob());
}

function poll(step) {
  const tick = async () => {
    let done = false;
    try { done = await step(); } catch (e) { console.warn(e.message); }
    if (!done) setTimeout(tick, 1000);
  };
  tick();
}

$("#auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, event.target.token.value);
  $("#auth").hidden = true;
  location.reload();
});
if (document.body.dataset.tokenRequired === "true" && !sessionStorage.getItem(KEY)) $("#auth").hidden = false;
if ($("#submit")) $("#submit").addEventListener("submit", submitJob);
for (const a of document.querySelectorAll("a.file")) a.addEventListener("click", openFile);
if ($("#jobs")) poll(async () => { await refreshJobs(); return false; });
if ($("#job-id")) poll(() => refreshJob($("#job-id").textContent));
