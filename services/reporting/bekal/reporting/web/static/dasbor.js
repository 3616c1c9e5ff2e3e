// The dashboard's figures, read from the reporting API. On the staff page (/staf/dasbor) the
// page session signs the requests (data-api names its routes); on /dashboard the bearer token
// the user gives does (data-token), kept in the tab's sessionStorage.
"use strict";
const FILTERS = ["year", "province", "program_id", "sector", "sex"];
const fmt = new Intl.NumberFormat("id-ID");
const pct = (v) => v === null || v === undefined ? "—" :
  new Intl.NumberFormat("id-ID", {style: "percent", maximumFractionDigits: 1}).format(v);

const ROOT = document.getElementById("dasbor");
const API = ROOT.dataset.api;
const WITH_TOKEN = ROOT.dataset.token === "1";

function token() {
  if (!WITH_TOKEN) return "session";
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("bekal-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("bekal-token");
}

function filters() {
  const params = new URLSearchParams(location.search);
  const out = new URLSearchParams();
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) out.set(name, value);
  }
  return out;
}

async function api(path, params) {
  const query = params && params.toString() ? "?" + params.toString() : "";
  const headers = WITH_TOKEN ? {Authorization: "Bearer " + token()} : {};
  const response = await fetch(API + path + query, {headers: headers});
  if (response.redirected && !WITH_TOKEN) {
    // The page session ended: the sign-in page answered instead of the data.
    location.reload();
    throw new Error("sesi berakhir");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(response.status + ": " + detail);
  }
  return response;
}

async function indicators(groupBy, params) {
  const p = new URLSearchParams(params || filters());
  if (groupBy) p.set("group_by", groupBy);
  return (await api("/indicators", p)).json();
}

function text(id, value) { document.getElementById(id).textContent = value; }

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function barOf(width, cls) {
  // Through the CSS object model: a style attribute would be refused by the pages' policy.
  const node = el("div", {class: "bar " + (cls || "")});
  node.style.width = width + "%";
  return node;
}

function bar(label, value, max, attrs, cls) {
  const width = max > 0 ? Math.round(100 * value / max) : 0;
  return el("div", {class: "bar-row", ...attrs}, [
    el("span", {text: label}),
    el("div", {class: "track"}, [barOf(width, cls)]),
    el("span", {class: "num", text: fmt.format(value)}),
  ]);
}

function fillSelect(id, values, current) {
  const select = document.getElementById(id);
  for (const [value, label] of values) {
    const option = el("option", {value: value, text: label});
    if (String(value) === current) option.selected = true;
    select.appendChild(option);
  }
}

function rateRows(tbodyId, rows, labelOf, keyName) {
  const tbody = document.getElementById(tbodyId);
  tbody.replaceChildren(...rows.map((r) => el("tr", {["data-" + keyName]: labelOf(r)}, [
    el("td", {text: labelOf(r)}),
    el("td", {class: "num", text: fmt.format(r.enrolled)}),
    el("td", {class: "num", text: fmt.format(r.completed)}),
    el("td", {class: "num", text: pct(r.completion_rate)}),
    el("td", {class: "num", text: pct(r.certification_rate)}),
  ])));
}

async function download(kind) {
  const response = await api("/indicators." + kind, (() => {
    const p = filters(); p.set("group_by", "province,program,year"); return p; })());
  const name = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  const link = el("a", {href: URL.createObjectURL(await response.blob()),
    download: name ? name[1] : "indikator." + kind});
  document.body.appendChild(link); link.click(); link.remove();
}

async function load() {
  const current = new URLSearchParams(location.search);
  const [totals, byProvince, byProgram, bySector, allYears, allProvinces, allPrograms, allSectors, progress] =
    await Promise.all([
      indicators(""), indicators("province"), indicators("program"), indicators("sector"),
      indicators("year", new URLSearchParams()), indicators("province", new URLSearchParams()),
      indicators("program", new URLSearchParams()), indicators("sector", new URLSearchParams()),
      (await api("/targets/progress")).json(),
    ]);
  fillSelect("f-year", allYears.data.filter((r) => r.year).map((r) => [r.year, r.year]), current.get("year"));
  fillSelect("f-province", allProvinces.data.filter((r) => r.province).map((r) => [r.province, r.province]), current.get("province"));
  fillSelect("f-program", allPrograms.data.filter((r) => r.program_id).map((r) => [r.program_id, r.program_title || r.program_code || r.program_id]), current.get("program_id"));
  fillSelect("f-sector", allSectors.data.filter((r) => r.sector).map((r) => [r.sector, r.sector]), current.get("sector"));
  document.getElementById("f-sex").value = current.get("sex") || "";

  const t = totals.totals;
  text("total-enrolled", fmt.format(t.enrolled));
  text("total-completed", fmt.format(t.completed));
  text("total-certified", fmt.format(t.certified));
  text("completion-rate", pct(t.completion_rate));
  text("total-withdrawn", fmt.format(t.withdrawn));
  text("new-entrepreneurs", fmt.format(t.new_entrepreneurs));
  text("released-ready", fmt.format(t.graduates_released_ready) + " / " + fmt.format(t.graduates_released));
  text("data-as-of", totals.data_as_of ?
    new Date(totals.data_as_of).toLocaleString("id-ID", {timeZone: "Asia/Jakarta"}) + " WIB" : "belum ada data");

  const maxProvince = Math.max(0, ...byProvince.data.map((r) => r.enrolled));
  document.getElementById("by-province").replaceChildren(...byProvince.data.map((r) =>
    bar(r.province || "(belum diketahui)", r.enrolled, maxProvince, {"data-province": r.province || ""})));

  const targetRows = [];
  // Years without a target share one scale (the best year), so their bars compare.
  const bestYear = Math.max(0, ...progress.data.map((r) => r.new_entrepreneurs));
  for (const r of progress.data) {
    const goal = r.target_annual ?? r.target_cumulative;
    const achieved = r.target_annual !== null ? r.new_entrepreneurs : r.new_entrepreneurs_cumulative;
    const label = r.year + (r.target_annual !== null ? " (tahunan)" : r.target_cumulative !== null ? " (kumulatif)" : "");
    targetRows.push(bar(label, achieved, goal ? Math.max(goal, achieved) : bestYear, {"data-year": r.year}));
    if (goal) targetRows.push(el("div", {class: "muted", text: "Target " + fmt.format(goal) +
      " · capaian " + pct(r.target_annual !== null ? r.progress_annual : r.progress_cumulative)}));
  }
  document.getElementById("targets").replaceChildren(...targetRows);

  rateRows("by-program", byProgram.data, (r) => r.program_title || r.program_code || "(belum diketahui)", "program");
  rateRows("by-sector", bySector.data, (r) => r.sector || "(belum diketahui)", "sector");
}

if (WITH_TOKEN) {
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("bekal-token", document.getElementById("token-input").value.trim());
    location.reload();
  });
}
for (const button of document.querySelectorAll("[data-export]")) {
  button.addEventListener("click", () => download(button.dataset.export).catch(showError));
}
function showError(error) {
  const box = document.getElementById("error");
  box.textContent = "Data tidak dapat dimuat: " + error.message;
  box.hidden = false;
}
document.getElementById("filters").addEventListener("submit", (event) => {
  // Empty choices stay out of the address, so a shared link names only real filters.
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(event.target)) if (v) params.set(k, v);
  location.search = params.toString();
});

if (!token()) {
  document.getElementById("login").hidden = false;
  document.body.dataset.ready = "login";
} else {
  load().then(() => { document.body.dataset.ready = "1"; })
        .catch((error) => { showError(error); document.body.dataset.ready = "error"; });
}
