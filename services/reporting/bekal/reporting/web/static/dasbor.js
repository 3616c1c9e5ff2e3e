// /dashboard, opened with a bearer token: the server renders the dashboard's body for the
// token's holder (/dashboard/isi, the same body as the staff page /staf/dasbor), and this script
// asks for it with the token, kept in the tab's sessionStorage (given once in the address's
// #token=..., which never reaches the server, or pasted in the form).
"use strict";
const ROOT = document.getElementById("dasbor");

function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("bekal-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("bekal-token");
}

async function get(url) {
  const response = await fetch(url, {headers: {Authorization: "Bearer " + token()}});
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(response.status + ": " + detail);
  }
  return response;
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = "Data tidak dapat dimuat: " + error.message;
  box.hidden = false;
}

async function download(link) {
  const response = await get(link.getAttribute("href"));
  const name = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  const file = document.createElement("a");
  file.href = URL.createObjectURL(await response.blob());
  file.download = name ? name[1] : "indikator." + link.dataset.export;
  document.body.appendChild(file); file.click(); file.remove();
}

async function load() {
  // The body is the server's HTML (escaped there), for this address's filters.
  ROOT.innerHTML = await (await get("/dashboard/isi" + location.search)).text();
  for (const link of ROOT.querySelectorAll("a[data-export]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(link).catch(showError);
    });
  }
  document.getElementById("filters").addEventListener("submit", (event) => {
    // Empty choices stay out of the address, so a shared link names only real filters.
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(event.target)) if (v) params.set(k, v);
    location.search = params.toString();
  });
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("bekal-token", document.getElementById("token-input").value.trim());
  location.reload();
});

if (!token()) {
  document.getElementById("login").hidden = false;
  document.body.dataset.ready = "login";
} else {
  load().then(() => { document.body.dataset.ready = "1"; })
        .catch((error) => { showError(error); document.body.dataset.ready = "error"; });
}
