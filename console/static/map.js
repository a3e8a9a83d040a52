// The console's map (see console/map_pages.py): Leaflet, served by Jiaoying, drawing the region's own
// boundaries, the active warnings by level, each village's call-and-answer state in a run, the hazard sites
// and the measures. Every element <div data-map data-run="…"> becomes a map: the full page (data-full, with
// a side panel for the clicked village) or a smaller panel on another page (a click opens the full map).
//
// Live updates: on the DOM event "jiaoying:change" (sent by live.js for every server event) each map
// fetches its changing layers again, at most once a second; the boundaries are drawn once. The map's
// container carries data-live="self": the page must not be replaced around it.
// No inline script or style: Leaflet styles its elements through the DOM, colours come from map.css.
(function () {
  "use strict";

  var BASE = "/console/map";
  var DEBOUNCE_MS = 1000;
  var FALLBACK_MS = 60000;  // refresh anyway when no event came for this long (a stream that dropped)
  var LABEL_ZOOM = 13;       // village names are written from this zoom on
  var maps = [];

  function msg(el, key) { return el.getAttribute("data-msg-" + key) || ""; }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      var type = r.headers.get("content-type") || "";
      if (!r.ok || type.indexOf("json") < 0) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  // Tooltip content as DOM nodes (never HTML strings): names come from data files and feeds.
  function lines(rows) {
    var box = document.createElement("div");
    rows.forEach(function (row, i) {
      if (!row) { return; }
      var el = document.createElement(i === 0 ? "strong" : "span");
      el.textContent = row;
      box.appendChild(el);
    });
    return box;
  }

  function label(text, cls) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function setClass(layer, cls, on) {
    var el = layer.getElement && layer.getElement();
    if (el) { el.classList[on ? "add" : "remove"](cls); }
  }

  var STATE_CLASSES = ["state-answered", "state-waiting", "state-escalated", "state-unanswered", "state-overdue"];

  function clock() {
    try {
      return new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit",
        second: "2-digit", hour12: false}).format(new Date());
    } catch (e) { return new Date().toTimeString().slice(0, 8); }
  }

  function MapView(el) {
    this.el = el;
    this.full = el.hasAttribute("data-full");
    this.run = el.getAttribute("data-run") || "auto";
    this.villages = {};       // code → Leaflet layer
    this.villageNames = {};   // code → name, town
    this.states = {};
    this.selected = null;
    this.timer = null;
    this.busy = false;
    this.again = false;
    this.lastRefresh = 0;
    this.status = el.querySelector("[data-map-status]");
    var id = el.id;
    function part(name) { return id ? document.querySelector("[data-map-" + name + "=\"" + id + "\"]") : null; }
    this.panel = part("village");
    this.runLine = part("run");
    this.updated = part("updated");
    this.warningList = part("warnings");
    this.warningEmpty = part("warnings-empty");
    this.start();
  }

  MapView.prototype.say = function (key) {
    if (!this.status) { return; }
    this.status.textContent = key ? msg(this.el, key) : "";
    this.status.hidden = !key;
  };

  MapView.prototype.start = function () {
    var self = this;
    // A panel sits inside a page that scrolls: the wheel and (on a touch screen) one finger scroll the page,
    // not the map; its + and - buttons still zoom, and the full map is one click away.
    var map = L.map(this.el, {zoomSnap: 0.25, zoomDelta: 0.5, minZoom: 7, worldCopyJump: false,
      scrollWheelZoom: this.full, dragging: this.full || !L.Browser.mobile, tap: false});
    this.map = map;
    map.attributionControl.setPrefix("Leaflet");
    var tiles = this.el.getAttribute("data-tile-url");
    if (tiles) {
      L.tileLayer(tiles, {maxZoom: parseInt(this.el.getAttribute("data-tile-max-zoom"), 10) || 18,
        attribution: this.el.getAttribute("data-tile-attribution") || ""}).addTo(map);
    }
    [["context", 330], ["outlines", 410], ["warnings", 420]].forEach(function (p) {
      var pane = map.createPane(p[0]);
      pane.style.zIndex = String(p[1]);
      pane.classList.add("map-pane-" + p[0]);
    });
    this.contextLayer = L.layerGroup().addTo(map);
    this.outlineLayer = L.layerGroup().addTo(map);
    this.villageLayer = L.layerGroup().addTo(map);
    this.warningLayer = L.layerGroup().addTo(map);
    this.siteLayer = L.layerGroup().addTo(map);
    this.measureLayer = L.layerGroup().addTo(map);
    this.townLabels = L.layerGroup().addTo(map);
    this.villageLabels = L.layerGroup();
    map.on("zoomend", function () { self.labels(); });
    this.say("loading");
    getJSON(BASE + "/layers/areas.json").then(function (data) {
      self.drawAreas(data);
      if (self.selected) { self.highlight(self.selected); }
      self.say("");
      return self.refresh();
    }).catch(function () { self.say("failed"); });
    if (this.full) { this.wirePanel(); }
  };

  MapView.prototype.drawAreas = function (data) {
    var self = this;
    var b = data.bounds;
    if (b) { this.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: [6, 6]}); }
    else { this.map.setView([35.5, 112.85], 11); }
    data.features.forEach(function (f) {
      var p = f.properties;
      if (p.level === "context") {
        L.geoJSON(f, {pane: "context", interactive: false, className: "area-context", weight: 1,
          fillOpacity: 0.4}).addTo(self.contextLayer);
        if (p.label) {
          self.townLabels.addLayer(L.tooltip({permanent: true, direction: "center", interactive: false,
            className: "map-label map-label-context"}).setLatLng(p.label).setContent(label(p.name, "")));
        }
      } else if (p.level === "district" || p.level === "township") {
        L.geoJSON(f, {pane: "outlines", interactive: false, fill: false,
          className: "area-" + p.level + (p.approximate ? " area-approximate" : ""),
          weight: p.level === "district" ? 3 : 2, dashArray: p.approximate && p.level !== "district" ? "6 4" : null
        }).addTo(self.outlineLayer);
        if (p.level === "township" && p.label) {
          self.townLabels.addLayer(L.tooltip({permanent: true, direction: "center", interactive: false,
            className: "map-label map-label-town"}).setLatLng(p.label).setContent(label(p.name, "")));
        }
      } else if (p.level === "village") {
        self.addVillage(f);
      }
    });
    this.labels();
  };

  MapView.prototype.addVillage = function (f) {
    var self = this;
    var p = f.properties;
    var layer = L.geoJSON(f, {
      className: "village v-" + p.code + (p.approximate ? " village-approximate" : " village-surveyed"),
      weight: 1, fillOpacity: 0.05, dashArray: p.approximate ? "4 3" : null
    });
    layer.on("click", function () { self.pick(p.code, false); });
    layer.bindTooltip(function () { return self.villageTip(p.code); }, {sticky: true, className: "map-tip"});
    layer.addTo(this.villageLayer);
    this.villages[p.code] = layer;
    this.villageNames[p.code] = p;
    if (p.label) {
      this.villageLabels.addLayer(L.tooltip({permanent: true, direction: "center", interactive: false,
        className: "map-label map-label-village"}).setLatLng(p.label).setContent(label(p.name, "")));
    }
  };

  MapView.prototype.villageTip = function (code) {
    var p = this.villageNames[code] || {};
    var s = this.states[code];
    var state = s ? s.text : (this.runShown ? msg(this.el, "none") : "");
    return lines([p.name, p.town ? p.town + " · " + code : code, state]);
  };

  MapView.prototype.labels = function () {
    var near = this.full && this.map.getZoom() >= LABEL_ZOOM;
    if (near && !this.map.hasLayer(this.villageLabels)) { this.villageLabels.addTo(this.map); }
    if (!near && this.map.hasLayer(this.villageLabels)) { this.map.removeLayer(this.villageLabels); }
  };

  MapView.prototype.schedule = function () {
    var self = this;
    if (this.timer) { window.clearTimeout(this.timer); }
    this.timer = window.setTimeout(function () { self.timer = null; self.refresh(); }, DEBOUNCE_MS);
  };

  MapView.prototype.refresh = function () {
    var self = this;
    if (this.busy) { this.again = true; return Promise.resolve(); }
    this.busy = true;
    var run = encodeURIComponent(this.run);
    return Promise.all([
      getJSON(BASE + "/layers/warnings.json"),
      getJSON(BASE + "/layers/callouts.json?run=" + run),
      getJSON(BASE + "/layers/sites.json"),
      getJSON(BASE + "/layers/measures.json?run=" + run)
    ]).then(function (got) {
      self.drawWarnings(got[0]);
      self.drawStates(got[1]);
      self.drawSites(got[2]);
      self.drawMeasures(got[3]);
      self.lastRefresh = Date.now();
      self.say("");
      if (self.updated) { self.updated.textContent = msg(self.el, "updated") + " " + clock(); }
      self.el.setAttribute("data-loaded", String(self.lastRefresh));
      if (self.full && self.selected) { return self.loadVillage(self.selected, false, false); }
      return null;
    }).catch(function () { self.say("failed"); }).then(function () {
      self.busy = false;
      if (self.again) { self.again = false; self.schedule(); }
    });
  };

  MapView.prototype.drawWarnings = function (data) {
    var group = this.warningLayer;
    group.clearLayers();
    data.features.forEach(function (f) {
      var p = f.properties;
      var cls = "warning-area warning-" + p.level + " warning-shape-" + p.shape;
      var opts = {pane: "warnings", interactive: false, className: cls, weight: 4, fillOpacity: 0.12};
      if (p.shape === "circle") {
        var c = f.geometry.coordinates;
        group.addLayer(L.circle([c[1], c[0]], L.extend({radius: p.radius_m}, opts)));
      } else if (p.shape === "point") {
        var pt = f.geometry.coordinates;
        group.addLayer(L.circleMarker([pt[1], pt[0]], L.extend({radius: 10}, opts)));
      } else {
        group.addLayer(L.geoJSON(f, opts));
      }
    });
    if (this.warningList) { this.listWarnings(data.warnings || []); }
  };

  MapView.prototype.listWarnings = function (items) {
    var el = this.el;
    var list = this.warningList;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (w) {
      var li = document.createElement("li");
      li.className = "warning-item warning-" + w.level;
      var a = document.createElement("a");
      a.href = w.url;
      a.appendChild(label(w.level_text, "badge level-" + w.level));
      a.appendChild(document.createTextNode(" " + w.headline));
      li.appendChild(a);
      var bits = [w.hazard_text];
      if (w.drill) { bits.push(msg(el, "drill")); }
      if (w.expires) { bits.push(msg(el, "expires") + " " + w.expires); }
      if (!w.drawn) { bits.push(msg(el, "not-drawn")); }
      li.appendChild(label(bits.join(" · "), "detail"));
      list.appendChild(li);
    });
    if (this.warningEmpty) { this.warningEmpty.hidden = items.length > 0; }
  };

  MapView.prototype.drawStates = function (data) {
    var self = this;
    this.states = data.villages || {};
    this.runShown = !!data.run;
    Object.keys(this.villages).forEach(function (code) {
      var s = self.states[code];
      self.villages[code].eachLayer(function (path) {
        STATE_CLASSES.forEach(function (c) { setClass(path, c, false); });
        if (s) {
          setClass(path, "state-" + s.state, true);
          if (s.overdue) { setClass(path, "state-overdue", true); }
        }
      });
    });
    this.showRun(data.run, data.counts || {});
  };

  MapView.prototype.showRun = function (run, counts) {
    var line = this.runLine;
    if (line) {
      var some = line.querySelector("[data-run-some]");
      var none = line.querySelector("[data-run-none]");
      if (some && none) {
        some.hidden = !run;
        none.hidden = !!run;
        if (run) {
          var link = line.querySelector("[data-run-link]");
          var badge = line.querySelector("[data-run-badge]");
          var text = line.querySelector("[data-run-text]");
          link.href = run.url;
          badge.className = "badge level-" + run.level;
          badge.textContent = run.level_text;
          var bits = [run.number, run.hazard_text];
          if (run.drill) { bits.push(msg(this.el, "drill")); }
          bits.push(run.state_text);
          text.textContent = bits.join(" · ");
        }
      }
    }
    var root = this.el.closest(".map-page, .map-panel-box") || document;
    Object.keys(counts).forEach(function (state) {
      var el = root.querySelector("[data-count=\"" + state + "\"]");
      if (el) { el.textContent = String(counts[state]); }
    });
    this.currentRun = run;
  };

  MapView.prototype.drawSites = function (data) {
    var self = this;
    var group = this.siteLayer;
    group.clearLayers();
    data.features.forEach(function (f) {
      var p = f.properties;
      if (f.geometry.type !== "Point") {
        group.addLayer(L.geoJSON(f, {pane: "outlines", interactive: false, className: "site-area risk-" + p.risk,
          weight: 2, fillOpacity: 0.15}));
      }
      var icon = L.divIcon({className: "site-icon risk-" + p.risk, html: "▲", iconSize: [22, 22]});
      var marker = L.marker(p.point, {icon: icon, keyboard: true, title: p.name, alt: p.name});
      marker.bindTooltip(lines([p.name, p.kind_text + " · " + p.risk_text,
        p.residents ? msg(self.el, "residents") + " " + p.residents : ""]), {className: "map-tip"});
      if (p.area_code) { marker.on("click", function () { self.pick(p.area_code, false); }); }
      group.addLayer(marker);
    });
  };

  MapView.prototype.drawMeasures = function (data) {
    var self = this;
    var group = this.measureLayer;
    group.clearLayers();
    (data.places || []).forEach(function (place) {
      var state = place.overdue ? "measure-overdue" : (place.open ? "measure-open" : "measure-done");
      var icon = L.divIcon({className: "measure-icon " + state, html: "⚑", iconSize: [22, 22],
        iconAnchor: [11, 34]});
      var marker = L.marker(place.point, {icon: icon, keyboard: true, title: place.name, alt: place.name});
      var rows = [place.name];
      place.measures.forEach(function (m) {
        rows.push(m.label + (m.covers || "") + " · " + m.state_text + (m.overdue && m.open ? " · " + msg(self.el, "overdue") : "") +
          (m.unit ? " · " + msg(self.el, "unit") + " " + m.unit : ""));
      });
      marker.bindTooltip(lines(rows), {className: "map-tip"});
      group.addLayer(marker);
    });
  };

  // --- the clicked village -----------------------------------------------------------------------------

  MapView.prototype.pick = function (code, zoom) {
    if (!this.full) {
      window.location.href = BASE + "?run=" + encodeURIComponent(this.run) + "&village=" + encodeURIComponent(code);
      return;
    }
    this.loadVillage(code, zoom, true);
  };

  MapView.prototype.highlight = function (code) {
    var self = this;
    Object.keys(this.villages).forEach(function (c) {
      self.villages[c].eachLayer(function (path) { setClass(path, "selected", c === code); });
    });
    if (code && this.villages[code]) { this.villages[code].bringToFront(); }
  };

  MapView.prototype.loadVillage = function (code, zoom, focus) {
    var self = this;
    var panel = this.panel;
    if (!panel) { return Promise.resolve(); }
    var run = this.run;
    this.selected = code;
    this.highlight(code);
    if (zoom && this.villages[code]) { this.map.fitBounds(this.villages[code].getBounds(), {maxZoom: 14}); }
    var url = BASE + "/villages/" + encodeURIComponent(code) + "?run=" + encodeURIComponent(run);
    return fetch(url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (html) {
      if (self.selected !== code) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      var card = doc.querySelector("[data-testid=village-card]");
      if (!card) { throw new Error("no card"); }
      panel.replaceChildren(document.importNode(card, true));
      if (focus) {
        var title = panel.querySelector("#village-title");
        if (title) { title.focus({preventScroll: true}); }
        if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
          panel.scrollIntoView({block: "start"});
        }
        var query = "?run=" + encodeURIComponent(run) + "&village=" + encodeURIComponent(code);
        window.history.replaceState(null, "", BASE + query);
      }
    }).catch(function () {
      if (self.selected !== code) { return; }
      var p = document.createElement("p");
      p.className = "alert";
      p.setAttribute("role", "alert");
      p.textContent = msg(self.el, "unknown") + code;
      panel.replaceChildren(p);
    });
  };

  MapView.prototype.closeVillage = function () {
    this.selected = null;
    this.highlight(null);
    var hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = this.panel.getAttribute("data-hint") || "";
    this.panel.replaceChildren(hint);
    window.history.replaceState(null, "", BASE + "?run=" + encodeURIComponent(this.run));
    this.el.focus({preventScroll: true});
  };

  MapView.prototype.wirePanel = function () {
    var self = this;
    var id = this.el.id;
    if (this.panel) {
      var card = this.panel.querySelector("[data-testid=village-card]");
      if (card) {
        this.selected = card.getAttribute("data-code");
      }
      this.panel.addEventListener("click", function (ev) {
        var t = ev.target;
        if (t && t.closest && t.closest("[data-map-close]")) { ev.preventDefault(); self.closeVillage(); }
      });
    }
    var find = document.querySelector("[data-map-find=\"" + id + "\"]");
    if (find) {
      find.addEventListener("submit", function (ev) {
        var select = find.querySelector("select[name=village]");
        if (!select || !select.value) { return; }
        ev.preventDefault();
        self.loadVillage(select.value, true, true);
      });
    }
    var again = document.querySelector("[data-map-refresh=\"" + id + "\"]");
    if (again) { again.addEventListener("click", function () { self.refresh(); }); }
  };

  // A panel further down a page (the board's side column) is drawn when it comes near the screen, so the
  // board itself shows at once; the full map page draws at once.
  var lazy = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) { return; }
      lazy.unobserve(entry.target);
      start(entry.target);
    });
  }, {rootMargin: "300px 0px"}) : null;

  function start(el) {
    if (el.jiaoyingMap || !document.body.contains(el)) { return; }
    el.jiaoyingMap = new MapView(el);
    maps.push(el.jiaoyingMap);
  }

  function init(root) {
    if (!window.L) {
      Array.prototype.forEach.call((root || document).querySelectorAll("[data-map] [data-map-status]"),
        function (s) { s.textContent = msg(s.parentNode, "failed"); });
      return;
    }
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-map]"), function (el) {
      if (el.jiaoyingMap || el.jiaoyingWaiting) { return; }
      if (lazy && !el.hasAttribute("data-full")) {
        el.jiaoyingWaiting = true;
        lazy.observe(el);
        return;
      }
      start(el);
    });
  }

  document.addEventListener("jiaoying:change", function () {
    maps.forEach(function (m) { if (document.body.contains(m.el)) { m.schedule(); } });
  });
  window.setInterval(function () {
    if (document.visibilityState !== "visible") { return; }
    maps.forEach(function (m) { if (Date.now() - m.lastRefresh > FALLBACK_MS) { m.schedule(); } });
  }, FALLBACK_MS / 4);

  // A page script that replaces part of the page (live.js re-renders <main>) may put a new, bare map
  // element in; it becomes a map too, and the maps no longer on the page are let go.
  if (window.MutationObserver) {
    var queued = false;
    new MutationObserver(function () {
      if (queued) { return; }
      queued = true;
      window.setTimeout(function () {
        queued = false;
        maps = maps.filter(function (m) {
          if (document.body.contains(m.el)) { return true; }
          m.map.remove();
          return false;
        });
        init(document);
      }, 0);
    }).observe(document.body, {childList: true, subtree: true});
  }

  window.JiaoyingMap = {init: init, refresh: function () { maps.forEach(function (m) { m.schedule(); }); }};
  init(document);
}());
