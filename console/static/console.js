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

// What cannot be undone asks first: any form with data-confirm="…" shows that question before it is sent.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var question = form && form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) { ev.preventDefault(); }
}, true);

// The current page's link in the navigation is marked, for the eye and for screen readers.
(function () {
  "use strict";
  var path = window.location.pathname;
  var links = document.querySelectorAll(".site-nav a");
  var best = null;
  Array.prototype.forEach.call(links, function (a) {
    var href = a.getAttribute("href");
    if ((href === "/" && path === "/") || (href !== "/" && path.indexOf(href) === 0)) { best = a; }
  });
  if (best) { best.setAttribute("aria-current", "page"); }
}());
