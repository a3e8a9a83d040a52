// The live console (see console/live.py): the change stream, the page and the alarm banners kept fresh, the
// alarm sound, and the sign that the server is lost. Every request goes to this origin; no inline script.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser || !document.getElementById("main")) { return; }

  var body = document.body;
  var main = document.getElementById("main");
  var alarmsBox = document.getElementById("alarms");
  var linkState = document.getElementById("link-state");
  var STALL_MS = 40000;       // the server sends something at least every 15 s
  var DEBOUNCE_MS = 200;      // the server already sends one message per burst (at most one a second)
  var REFRESH_GAP_MS = 2000;  // the page is fetched at most this often while a fan-out writes thousands of rows
  var ALARM_GAP_MS = 2000;    // and the banners too; a request in between is kept and done after the gap
  var MAX_BACKOFF_MS = 10000;
  var LOST_AFTER_MS = 1500;   // a stream the server ends itself is back well within this: no flicker
  var KEEP = ["clock"];       // elements the page's own script holds on to (the board's ticking clock)
  var words = {};             // from the alarms fragment, in the page's language
  var leaving = false;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  var newestId = 0;           // the newest event-log row a message told of: a refresh must show at least that

  function get(url) {
    var headers = { "Accept": "text/html" };
    if (newestId > 0) { headers["X-Live-Since"] = String(newestId); }
    return fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers });
  }

  // ------------------------------------------------------------------ the alarm sound (Web Audio, no file)

  var siren = (function () {
    var ctx = null, timer = null, current = null, wanted = false;

    function context() {
      if (!ctx) {
        var Ctor = window.AudioContext || window.webkitAudioContext;
        if (!Ctor) { return null; }
        ctx = new Ctor();
        ctx.onstatechange = update;
      }
      return ctx;
    }

    // One cycle of a two-tone siren (high, low, high, low), about 1.6 s, then a pause.
    function cycle() {
      if (!ctx || ctx.state !== "running") { return; }
      var t = ctx.currentTime + 0.02, osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = "square";
      for (var i = 0; i < 4; i++) { osc.frequency.setValueAtTime(i % 2 ? 650 : 960, t + i * 0.4); }
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.2, t + 0.03);
      gain.gain.setValueAtTime(0.2, t + 1.55);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 1.6);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 1.62);
      current = osc;
      osc.onended = function () { if (current === osc) { current = null; } };
    }

    function update() {
      var state = !wanted ? "silent" : (ctx && ctx.state === "running" ? "sounding" : "blocked");
      body.dataset.alarm = state;
      Array.prototype.forEach.call(document.querySelectorAll("[data-alarm-sound]"), function (b) {
        b.hidden = state !== "blocked";
      });
      if (state === "sounding" && !timer) {
        cycle();
        timer = window.setInterval(cycle, 2500);
      } else if (state !== "sounding" && timer) {
        window.clearInterval(timer);
        timer = null;
        if (current) { try { current.stop(); } catch (e) { /* already ended */ } current = null; }
      }
    }

    // Browsers may keep audio suspended until the user does something: then the banner offers a button.
    function unlock() {
      var c = context();
      if (c && c.state !== "running" && c.resume) { c.resume().then(update, update); }
      update();
    }

    function want(on) {
      wanted = on;
      if (on) { unlock(); } else { update(); }
    }

    return { want: want, unlock: unlock };
  }());

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t && t.closest && t.closest("[data-alarm-sound]")) { siren.unlock(); }
  });
  // Any first gesture on the page allows the sound from then on, so an alarm at 3 a.m. is heard at once.
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { siren.unlock(); }, { capture: true, passive: true });
  });

  // ------------------------------------------------------------------ alarm banners

  var lastAlarms = null;

  function renderAlarms(html) {
    if (!alarmsBox) { return; }
    if (html !== lastAlarms) {          // unchanged banners are left alone: no second announcement
      lastAlarms = html;
      alarmsBox.innerHTML = html;
    }
    var list = alarmsBox.querySelector(".alarm-list");
    if (list) { words.refresh = list.getAttribute("data-refresh-text") || words.refresh; }
    var count = list ? parseInt(list.getAttribute("data-count"), 10) || 0 : 0;
    siren.want(count > 0);
    if (pending) { showNotice(); }
  }

  function refreshAlarms() {
    if (!alarmsBox) { return Promise.resolve(); }
    return get("/console/alarms?next=" + encodeURIComponent(window.location.pathname)).then(function (resp) {
      if (resp.status === 401) { return loggedOut(); }
      if (!resp.ok) { return; }
      return resp.text().then(renderAlarms);
    });
  }

  // Acknowledge without leaving the page (a form being filled in stays as it is); without this script the
  // form posts normally and comes back to the same page.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (ev.defaultPrevented || !form || !form.hasAttribute || !form.hasAttribute("data-alarm-ack")) { return; }
    ev.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    fetch(form.getAttribute("action"), {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (resp) {
      if (resp.type === "opaqueredirect" || resp.ok) { return refreshAlarms(); }
      form.submit();                     // refused: the normal post shows the page that says why
    }).catch(function () {
      if (button) { button.disabled = false; }
    });
  });

  // ------------------------------------------------------------------ the page's own content

  var pending = false, notice = null;

  function dirty(form) {
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i], type = (el.type || "").toLowerCase();
      if (type === "checkbox" || type === "radio") {
        if (el.checked !== el.defaultChecked) { return true; }
      } else if (el.tagName === "SELECT") {
        for (var j = 0; j < el.options.length; j++) {
          var opt = el.options[j];
          var byDefault = opt.defaultSelected || (!el.multiple && j === 0 && !Array.prototype.some.call(
            el.options, function (o) { return o.defaultSelected; }));
          if (opt.selected !== byDefault) { return true; }
        }
      } else if (type !== "hidden" && type !== "submit" && type !== "button" && "defaultValue" in el) {
        if (el.value !== el.defaultValue) { return true; }
      }
    }
    return false;
  }

  // Someone is filling in a form on this page: its content must not change under their hands.
  function typing() {
    var active = document.activeElement;
    var forms = main.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      if (forms[i].contains(active) || dirty(forms[i])) { return true; }
    }
    return false;
  }

  function showNotice() {
    if (!words.refresh) { return; }      // shown once the words have come with the alarms fragment
    if (!notice) {
      notice = document.createElement("button");
      notice.type = "button";
      notice.id = "live-notice";
      notice.className = "live-notice";
      notice.setAttribute("data-testid", "live-notice");
      notice.addEventListener("click", function () { refreshPage(true); });
      main.parentNode.insertBefore(notice, main);
    }
    notice.textContent = "↻ " + words.refresh;
    notice.hidden = false;
  }

  function hideNotice() {
    pending = false;
    if (notice) { notice.hidden = true; }
  }

  function pathOf(el) {
    var path = [];
    while (el && el !== main) {
      if (!el.parentNode) { return null; }
      path.unshift(Array.prototype.indexOf.call(el.parentNode.children, el));
      el = el.parentNode;
    }
    return el === main ? path : null;
  }

  // A <details> the officer opened (a shift's edit form, a callout's attempts) stays open across a refresh,
  // and one they closed stays closed: it is known by the nearest element with an id (or a data-*-id), its
  // place among that element's <details>, and its summary's words.
  function detailsKey(d, root) {
    var anchor = d, ident = "";
    while (anchor && anchor !== root) {
      if (anchor.id) { ident = "#" + anchor.id; break; }
      var named = Array.prototype.filter.call(anchor.attributes || [], function (a) {
        return /^data-[a-z-]*id$/.test(a.name);
      });
      if (named.length) { ident = named.map(function (a) { return a.name + "=" + a.value; }).join(","); break; }
      anchor = anchor.parentNode;
    }
    var scope = anchor && anchor !== root ? anchor : root;
    var index = Array.prototype.indexOf.call(scope.querySelectorAll("details"), d);
    var summary = d.querySelector("summary");
    return ident + "|" + index + "|" + (summary ? summary.textContent.replace(/\s+/g, " ").trim() : "");
  }

  function detailsStates(root) {
    var states = {};
    Array.prototype.forEach.call(root.querySelectorAll("details"), function (d) {
      states[detailsKey(d, root)] = d.open;
    });
    return states;
  }

  function swapMain(fresh) {
    var x = window.scrollX, y = window.scrollY;
    var active = document.activeElement, focusPath = pathOf(active), tag = active && active.tagName;
    var opened = detailsStates(main);
    var incoming = document.importNode(fresh, true);
    var keep = KEEP.slice();
    Array.prototype.forEach.call(main.querySelectorAll('[data-live="self"][id]'), function (el) { keep.push(el.id); });
    keep.forEach(function (id) {
      var old = document.getElementById(id), neu = incoming.querySelector("#" + id);
      if (old && neu && main.contains(old)) {
        Array.prototype.forEach.call(neu.attributes, function (a) { old.setAttribute(a.name, a.value); });
        neu.parentNode.replaceChild(old, neu);
      }
    });
    while (main.firstChild) { main.removeChild(main.firstChild); }
    while (incoming.firstChild) { main.appendChild(incoming.firstChild); }
    Array.prototype.forEach.call(main.querySelectorAll("details"), function (d) {
      var key = detailsKey(d, main);
      if (Object.prototype.hasOwnProperty.call(opened, key) && d.open !== opened[key]) { d.open = opened[key]; }
    });
    if (focusPath && focusPath.length) {
      var el = main;
      for (var i = 0; el && i < focusPath.length; i++) { el = el.children[focusPath[i]]; }
      if (el && el.tagName === tag && el.focus) { el.focus({ preventScroll: true }); }
    }
    window.scrollTo(x, y);
  }

  function adoptToken(doc) {
    var meta = doc.querySelector('meta[name="csrf-token"]');
    var token = meta && meta.getAttribute("content");
    if (!token || token === csrfToken()) { return; }
    document.querySelector('meta[name="csrf-token"]').setAttribute("content", token);
    Array.prototype.forEach.call(document.querySelectorAll('input[name="csrf_token"]'), function (i) {
      i.value = token;
    });
  }

  function refreshPage(force) {
    if (!force && typing()) { pending = true; showNotice(); return Promise.resolve(); }
    return get(window.location.pathname + window.location.search).then(function (resp) {
      if (resp.redirected && new URL(resp.url).pathname === "/login") { return loggedOut(); }
      if (!resp.ok) { return; }
      return resp.text().then(function (html) {
        if (!force && typing()) { pending = true; showNotice(); return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        if (!fresh) { return; }
        swapMain(fresh);
        adoptToken(doc);
        if (doc.title) { document.title = doc.title; }
        hideNotice();
      });
    });
  }

  // A form left untouched again: what was held back is shown.
  main.addEventListener("focusout", function () {
    window.setTimeout(function () { if (pending && !typing()) { schedule(true); } }, 50);
  });

  // A task run at most once per gap, however often it is asked for. A request while it waits or runs is never
  // dropped: it makes one more run after the gap (a trailing run), so the last change is always shown.
  function throttled(task, gapMs, delayMs) {
    var timer = null, busy = false, again = false, lastRun = -Infinity;
    function run() {
      timer = null;
      busy = true;
      lastRun = Date.now();
      var done = function () {
        busy = false;
        if (again) { again = false; request(false); }
      };
      Promise.resolve().then(task).then(done, done);
    }
    function request(soon) {
      if (busy) { again = true; return; }
      if (timer) { return; }            // the run already waiting starts after this request: it covers it
      var wait = Math.max(soon ? 0 : delayMs, gapMs - (Date.now() - lastRun));
      timer = window.setTimeout(run, wait);
    }
    return request;
  }

  var pageRefresh = throttled(function () { return refreshPage(false); }, REFRESH_GAP_MS, DEBOUNCE_MS);
  var alarmCheck = throttled(refreshAlarms, ALARM_GAP_MS, 0);

  function schedule(soon) { pageRefresh(soon); }

  // What a message asks for: the page always; the banners when a row of the batch may raise or clear one
  // (or when the message cannot be read: looking costs less than missing an alarm).
  function changed(data) {
    var info = null;
    try { info = JSON.parse(data); } catch (e) { info = null; }
    if (info && typeof info.id === "number" && info.id > newestId) { newestId = info.id; }
    document.dispatchEvent(new CustomEvent("jiaoying:change", { detail: info }));  // the map refreshes itself
    pageRefresh(false);
    if (!info || info.alarm !== false) { alarmCheck(false); }
  }

  function loggedOut() {
    if (!leaving) { leaving = true; window.location.assign("/login"); }
  }

  // ------------------------------------------------------------------ the stream and the lost-server sign

  var source = null, lastHeard = Date.now(), backoff = 1000, reopenTimer = null, wasLost = false, lostTimer = null;

  function setLive(state) {
    body.dataset.live = state;
    if (linkState) { linkState.hidden = state !== "lost"; }
  }

  function lost() {
    if (leaving) { return; }
    wasLost = true;
    setLive("lost");
  }

  function maybeLost() {
    wasLost = true;   // whatever happens next, the page catches up once the stream is back
    if (!lostTimer) { lostTimer = window.setTimeout(function () { lostTimer = null; lost(); }, LOST_AFTER_MS); }
  }

  function connect() {
    reopenTimer = null;
    if (source) { source.close(); }
    lastHeard = Date.now();
    // The page was drawn from the board's data as of an event-log row (data-live-after): the stream starts
    // after that row, so a change committed between the drawing and this connection is announced, not lost.
    var after = Math.max(newestId, parseInt(body.getAttribute("data-live-after") || "0", 10) || 0);
    source = new EventSource("/console/events" + (after > 0 ? "?after=" + after : ""));
    source.addEventListener("open", function () {
      if (lostTimer) { window.clearTimeout(lostTimer); lostTimer = null; }
      lastHeard = Date.now();
      backoff = 1000;
      setLive("open");
      if (wasLost) { wasLost = false; pageRefresh(true); alarmCheck(true); }   // whatever happened meanwhile
    });
    source.addEventListener("change", function (ev) {
      lastHeard = Date.now();
      changed(ev.data);
    });
    source.addEventListener("ping", function () { lastHeard = Date.now(); });
    source.addEventListener("error", function () {
      if (!source || source.readyState === EventSource.OPEN) { return; }
      maybeLost();
      if (source.readyState === EventSource.CLOSED) { reopen(); }   // the browser gave up: start again
    });
  }

  function reopen() {
    if (reopenTimer || leaving) { return; }
    if (source) { source.close(); }
    reopenTimer = window.setTimeout(function () {
      // a closed stream may mean the session ended: then the login page, not endless retries
      get("/console/alarms").then(function (resp) {
        if (resp.status === 401) { loggedOut(); } else { connect(); }
      }, connect);
    }, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }

  // A connection can die without an error (a sleeping laptop, a proxy): silence is a lost server too.
  window.setInterval(function () {
    if (!reopenTimer && Date.now() - lastHeard > STALL_MS) { lost(); reopen(); }
  }, 5000);

  window.addEventListener("pagehide", function () {
    leaving = true;
    if (source) { source.close(); }
  });
  window.addEventListener("pageshow", function (ev) {   // back from the browser's page cache: listen again
    if (ev.persisted) { leaving = false; wasLost = true; connect(); }
  });

  body.dataset.alarm = "silent";
  refreshAlarms().catch(function () { /* the stream's first change tries again */ });
  connect();
}());
