// The shopper's web wallet: keeps the card QR fresh and the inbox live (server-sent
// events). No other script, no external URL: the page works on a mall LAN offline.
"use strict";
(function () {
  var card = document.getElementById("card");
  if (card) {
    var every = Math.max(5, Number(card.dataset.refresh || 60)) * 1000;
    setInterval(function () { card.src = "/wallet/card.svg?t=" + Date.now(); }, every);
  }
  var inbox = document.getElementById("inbox");
  if (!inbox || !window.EventSource) { return; }
  var balances = document.getElementById("balances");
  function refreshBalances() {
    fetch("/wallet/balances", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { balances.innerHTML = html; })
      .catch(function () {});
  }
  var events = new EventSource("/wallet/events?after=" + encodeURIComponent(inbox.dataset.cursor));
  var live = document.getElementById("live");
  events.onopen = function () { live.hidden = false; };
  events.onerror = function () { live.hidden = true; };
  events.addEventListener("inbox", function (message) {
    var entry = JSON.parse(message.data);
    var empty = inbox.querySelector(".empty");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    item.className = "entry " + entry.kind;
    var when = document.createElement("time");
    when.textContent = entry.ts.slice(0, 10);
    item.appendChild(when);
    item.appendChild(document.createTextNode(" " + entry.text));
    inbox.insertBefore(item, inbox.firstChild);
    if (entry.kind !== "offer") { refreshBalances(); }
  });
})();
