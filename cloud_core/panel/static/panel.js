// mallnet control panel: draws the charts (uPlot) from the panel's JSON data endpoints and
// redraws them every 30 s. No inline script anywhere (the page's CSP admits this file only).
(function () {
  "use strict";
  var PALETTE = ["#0b6bcb", "#c62828", "#1a7f37", "#b26a00", "#6f42c1", "#00838f",
                 "#ad1457", "#5d4037", "#455a64", "#827717", "#283593", "#e65100"];

  function footfall(data) {
    var series = [{}], values = [data.hours];
    data.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2 });
      values.push(s.values);
    });
    return { series: series, data: values };
  }

  function parking(data) {
    // one line per car park on a shared time axis (a step after each entry or exit)
    var times = {};
    data.series.forEach(function (s) { s.ts.forEach(function (t) { times[t] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    var series = [{}], values = [xs];
    data.series.forEach(function (s, i) {
      var ys = [], j = 0, last = null;
      xs.forEach(function (x) {
        while (j < s.ts.length && s.ts[j] <= x) { last = s.occupied[j]; j++; }
        ys.push(last);
      });
      series.push({ label: s.car_park, stroke: PALETTE[i % PALETTE.length], width: 2,
                    paths: uPlot.paths.stepped({ align: 1 }) });
      values.push(ys);
    });
    return { series: series, data: values };
  }

  var KINDS = { footfall: footfall, parking: parking };

  function draw(el) {
    fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var made = KINDS[el.dataset.chart](data);
        made.series[0] = { label: el.dataset.timeLabel || "Time" };
        var width = Math.max(280, el.clientWidth);
        if (el._plot) { el._plot.destroy(); }
        el._plot = new uPlot({ width: width, height: 300, series: made.series,
                               scales: { x: { time: true } } }, made.data, el);
        el.dataset.drawn = String(made.data[0].length);
      })
      .catch(function () { el.dataset.drawn = "error"; });
  }

  function start() {
    var charts = document.querySelectorAll("[data-chart]");
    charts.forEach(draw);
    if (charts.length) {
      setInterval(function () { charts.forEach(draw); }, 30000);
      var pending = null;
      window.addEventListener("resize", function () {
        clearTimeout(pending);
        pending = setTimeout(function () { charts.forEach(draw); }, 250);
      });
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
