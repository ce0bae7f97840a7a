/* TinyTrail tracker: cookie-less, no dependencies. <script defer data-id="WEBSITE_ID" src="https://HOST/js/tracker.js"></script>
   Options: data-api (collector origin), data-respect-dnt="false", data-allow-localhost. */
(function (w, d) {
  var s = d.currentScript, l = w.location, n = w.navigator;
  if (!s) return;
  var a = function (k) { return s.getAttribute('data-' + k); };
  var id = a('id');
  if (!id) return;
  if (a('respect-dnt') !== 'false' && (n.doNotTrack == '1' || w.doNotTrack == '1')) return;
  if ((/^localhost$|^127\.|^\[?::1\]?$/.test(l.hostname) || l.protocol == 'file:') && a('allow-localhost') == null) return;
  var api = (a('api') || new URL(s.src).origin).replace(/\/$/, '') + '/api/v1/collect';
  var seen = {}, last;

  function send(type, props, beacon) {
    var q = new URLSearchParams(l.search), e = {
      website_id: id, event_type: type, url: l.href, path: l.pathname,
      referrer: d.referrer || null, screen_width: w.screen.width, screen_height: w.screen.height
    };
    ['source', 'medium', 'campaign'].forEach(function (k) { var v = q.get('utm_' + k); if (v) e['utm_' + k] = v; });
    if (props) e.properties = props;
    var b = JSON.stringify(e);
    // text/plain keeps it a simple request: no CORS preflight, and sendBeacon can carry it.
    if (beacon && n.sendBeacon && n.sendBeacon(api, b)) return;
    try { fetch(api, { method: 'POST', body: b, keepalive: true, headers: { 'Content-Type': 'text/plain' } }).catch(function () {}); } catch (x) {}
  }

  function view() {
    if (l.href == last) return;
    last = l.href; seen = {};
    send('page_view');
  }

  ['pushState', 'replaceState'].forEach(function (m) {
    var o = history[m];
    history[m] = function () { var r = o.apply(this, arguments); view(); return r; };
  });
  w.addEventListener('popstate', view);

  w.addEventListener('scroll', function () {
    var h = d.documentElement, max = h.scrollHeight - w.innerHeight;
    var p = max > 0 ? (w.scrollY / max) * 100 : 100;
    [25, 50, 75].forEach(function (t) { if (p >= t && !seen[t]) { seen[t] = 1; send('scroll_' + t); } });
  }, { passive: true });

  d.addEventListener('click', function (ev) {
    var t = ev.target.closest && ev.target.closest('a[href]');
    if (t && /^https?:$/.test(t.protocol) && t.host != l.host) send('outbound_link', { href: t.href }, 1);
  }, true);

  d.addEventListener('visibilitychange', function () { if (d.visibilityState == 'hidden') send('close_tab', null, 1); });

  w.analytics = { track: function (name, props) {
    var p = {}, k; for (k in props || {}) p[k] = props[k]; p.name = name; send('custom', p);
  } };
  view();
})(window, document);
