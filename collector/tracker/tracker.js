/* TinyTrail tracker, the readable source. The collector serves collector/static/tracker.js,
   built from this file by collector/tracker/build.js (terser; a test checks the two agree).
   Snippet, options and rules: docs/COLLECTOR.md. It never throws into the page, and it
   never sends a field the collector must refuse (tinytrail/limits.py): values are cut to
   the caps and control characters removed here, in the browser. */
(function (w, d) {
  try {
    var s = d.currentScript, l = w.location, n = w.navigator, A = w.analytics;
    // window.analytics is TinyTrail's when free or when it holds TinyTrail's stub or tracker;
    // another tool's (Segment's has identify) is left alone: ours is then window.tinytrail.
    var mine = !A || !A.identify, o = w.tinytrail || mine && A || {};
    var expose = function (x) { w.tinytrail = x; if (mine) w.analytics = x; };
    var a = function (k) { return s.getAttribute('data-' + k); };
    if (o.v) return; // a second copy
    var id = s && a('id');
    if (!id) {
      // A copy without data-id (a stray plugin, a typo) is not the tracker: it keeps (or
      // makes) the queue for the real copy, whichever of the two runs first.
      if (!o.q) expose(o = { q: [], track: function () { o.q.push(arguments); } });
      return;
    }
    var t = { v: 1, track: function () {} };
    expose(t);
    if (a('respect-dnt') != 'false' && (n.doNotTrack == '1' || w.doNotTrack == '1' || n.globalPrivacyControl)) return;
    if (!/^https?:$/.test(l.protocol) || /(^|\.)localhost$|^127\.|^\[::1\]$|^0\.0\.0\.0$/.test(l.hostname) && a('allow-localhost') == null) return;
    var api = (a('api') || new URL(s.src).origin).replace(/\/$/, '') + '/api/v1/collect', seen = {}, last;
    // control characters (Unicode Cc): refused in every field but properties values
    var C = /[\0-\x1f\x7f-\x9f]/g;

    // `x` without control characters, cut to `c` code points and `b` UTF-8 bytes
    var clip = function (x, c, b) {
      x = Array.from(x.replace(C, '')).slice(0, c);
      while (new Blob(x).size > b) x.pop();
      return x.join('');
    };
    // a percent-encoded (ASCII) URL or path cut to `c` characters, never inside an escape
    // or a character's UTF-8 escapes (a cut character is dropped whole)
    var cut = function (x, c) {
      return x.length > c ? x.slice(0, c).replace(/(%[c-f].)?(%[89ab].)*(%.?)?$/i, '') : x;
    };
    // properties keys with a control character are dropped; NUL is taken out of strings
    var json = function (x) {
      return JSON.stringify(x, function (k, v) {
        return /[\0-\x1f\x7f-\x9f]/.test(k) ? void 0 : typeof v == 'string' ? v.replace(/\0/g, '') : v;
      });
    };

    // pathname + hash route (#/a, #!/a) without its query; '#/' is '/', '#faq' an anchor.
    // Cut to 1,600 characters: the canonical path's byte cap (percent-decoding never lengthens it).
    var path = function () {
      var h = l.hash.replace(/\?.*/, '');
      return cut(l.pathname + (/^#!?\/./.test(h) ? h : ''), 1600);
    };

    var send = function (type, props, beacon) {
      try {
        var q = new URLSearchParams(l.search), u = l.href, e = {
          website_id: id, event_type: type, path: path(),
          referrer: cut(d.referrer, 2048), screen_width: w.innerWidth, screen_height: w.innerHeight
        };
        ['source', 'medium', 'campaign'].forEach(function (k) {
          var v = q.get('utm_' + k);
          if (v && (v = clip(v, 200, 400))) e['utm_' + k] = v;
        });
        // The collector refuses a URL whose UTM values hold control characters: it goes
        // without its query then (the body carries the UTM values); and one over 2,048
        // characters: it is cut.
        if (/[\0-\x1f\x7f-\x9f]/.test([...q.values()])) u = l.origin + l.pathname;
        e.url = cut(u, 2048);
        if (props) e.properties = props;
        var b = json(e);
        // A string body goes as text/plain (by fetch and sendBeacon alike): a simple request,
        // no preflight.
        if (beacon && n.sendBeacon && n.sendBeacon(api, b)) return;
        fetch(api, { method: 'POST', body: b, keepalive: true }).catch(function () {});
      } catch (x) {}
    };

    var view = function () {
      var p = path();
      if (p == last) return;
      last = p; seen = {};
      send('page_view');
    };

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
      if (k && /^https?:$/.test(k.protocol) && k.host != l.host) send('outbound_link', { href: cut(k.href, 2048) }, 1);
    }, true);

    d.addEventListener('visibilitychange', function () { if (d.visibilityState == 'hidden') send('close_tab', null, 1); });

    // track(name, props): a name that is not a non-empty string within 200 characters and
    // 400 bytes (control characters removed) is ignored; props count only when a plain
    // object, and are left out (the event still sent) when they cannot be serialised or
    // are over 4 KiB of JSON.
    t.track = function (name, props) {
      var m = typeof name == 'string' ? name.replace(C, '') : '', p = { name: m }, x;
      if (!m || m != clip(m, 200, 400)) return console.warn('TinyTrail: bad event name', name);
      try {
        x = Object.assign({}, props && props.constructor == Object ? props : 0, p);
        if (new Blob([json(x)]).size <= 4096) p = x;
      } catch (e) {}
      send('custom', p);
    };
    view();
    (o.q || []).forEach(function (x) { t.track.apply(t, x); });
  } catch (x) {}
})(window, document);
