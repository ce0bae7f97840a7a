/* TinyTrail tracker; snippet, options, rules: docs/COLLECTOR.md */
(function (w, d) {
  var s = d.currentScript, l = w.location, n = w.navigator, o = w.analytics || {}, t;
  if (o.v) return; // a second copy
  t = w.analytics = { v: 1, track: function () {} };
  function a(k) { return s.getAttribute('data-' + k); }
  var id = s && a('id');
  if (!id) return;
  if (a('respect-dnt') != 'false' && (n.doNotTrack == '1' || w.doNotTrack == '1' || n.globalPrivacyControl)) return;
  if (!/^https?:$/.test(l.protocol) || /^localhost$|^127\.|^\[?::1\]?$/.test(l.hostname) && a('allow-localhost') == null) return;
  var api = (a('api') || new URL(s.src).origin).replace(/\/$/, '') + '/api/v1/collect', seen = {}, last;

  // pathname + hash route (#/a, #!/a) without its query; '#/' is '/', '#faq' an anchor
  function path() {
    var h = l.hash.replace(/\?.*/, '');
    return l.pathname + (/^#!?\/./.test(h) ? h : '');
  }

  function send(type, props, beacon) {
    var q = new URLSearchParams(l.search), e = {
      website_id: id, event_type: type, url: l.href, path: path(),
      referrer: d.referrer || null, screen_width: w.innerWidth, screen_height: w.innerHeight
    };
    ['source', 'medium', 'campaign'].forEach(function (k) { var v = q.get('utm_' + k); if (v) e['utm_' + k] = v; });
    if (props) e.properties = props;
    var b = JSON.stringify(e);
    // text/plain: a simple request (no preflight) that sendBeacon can carry
    if (beacon && n.sendBeacon && n.sendBeacon(api, b)) return;
    try { fetch(api, { method: 'POST', body: b, keepalive: true, headers: { 'Content-Type': 'text/plain' } }).catch(function () {}); } catch (x) {}
  }

  function view() {
    var p = path();
    if (p == last) return;
    last = p; seen = {};
    send('page_view');
  }

  ['pushState', 'replaceState'].forEach(function (m) {
    var f = history[m];
    history[m] = function () { var r = f.apply(this, arguments); view(); return r; };
  });
  w.addEventListener('popstate', view);
  w.addEventListener('hashchange', view);

  w.addEventListener('scroll', function () {
    var h = d.documentElement, max = h.scrollHeight - w.innerHeight;
    var p = max > 0 ? (w.scrollY / max) * 100 : 100;
    [25, 50, 75].forEach(function (k) { if (p >= k && !seen[k]) { seen[k] = 1; send('scroll_' + k); } });
  }, { passive: true });

  d.addEventListener('click', function (ev) {
    var k = ev.target.closest && ev.target.closest('a[href]');
    if (k && /^https?:$/.test(k.protocol) && k.host != l.host) send('outbound_link', { href: k.href }, 1);
  }, true);

  d.addEventListener('visibilitychange', function () { if (d.visibilityState == 'hidden') send('close_tab', null, 1); });

  t.track = function (name, props) {
    var p = {}, k; for (k in props || {}) p[k] = props[k]; p.name = name; send('custom', p);
  };
  view();
  (o.q || []).forEach(function (x) { t.track.apply(t, x); });
})(window, document);
