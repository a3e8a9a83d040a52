// The board's clock: the server's time, then ticking locally in Asia/Shanghai (no network, no inline script).
(function () {
  "use strict";
  var el = document.getElementById("clock");
  if (!el || !window.Intl) { return; }
  var fmt = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
  });
  var server = Date.parse(el.getAttribute("datetime"));
  var offset = isNaN(server) ? 0 : server - Date.now();
  function tick() {
    var parts = {};
    fmt.formatToParts(new Date(Date.now() + offset)).forEach(function (p) { parts[p.type] = p.value; });
    el.textContent = parts.year + "-" + parts.month + "-" + parts.day + " " +
      parts.hour + ":" + parts.minute + ":" + parts.second;
  }
  tick();
  window.setInterval(tick, 1000);
}());
