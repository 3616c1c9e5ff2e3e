// Follows a running job on its page without reloading it: reads the job's status address
// (data-status-url) every second and updates the progress bar, its text and the counts; once
// the job has ended, loads the page again to show the result. Without JavaScript the page
// reloads itself instead (a refresh inside <noscript>).
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var counts = ["created", "updated", "transferred", "released", "unchanged", "skipped", "invalid"];
  var format = function (n) { return Number(n).toLocaleString("id-ID"); };

  function show(job) {
    var percent = Math.round(job.progress * 100);
    var bar = document.getElementById("kemajuan");
    var text = document.getElementById("kemajuan-teks");
    if (bar) { bar.value = percent; bar.textContent = percent + "%"; }
    if (text) {
      text.textContent = percent + "% · " + format(job.processed_lines) + " dari " +
        format(job.total_lines) + " baris diperiksa";
    }
    counts.forEach(function (name, i) {
      var cell = document.querySelector('[data-hitungan="' + i + '"]');
      if (cell) { cell.textContent = format(job[name]); }
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (job) {
        if (!job) { window.setTimeout(poll, 3000); return; }
        show(job);
        if (job.status === "queued" || job.status === "running") {
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
}());
