// A small remote control for Debian's headless Chromium, driven by the Python tests:
// one JSON command per line on stdin, one JSON answer per line on stdout.
// Uses playwright-core from tests/browser (installed by infra/bootstrap.sh).
//   {"op": "open", "width": 1440, "height": 900, "scheme"?: "dark", "init"?: js,
//    "clock"?: true}  a fresh context and page; with "clock", Playwright's fake clock
//       runs the page's time (at the real pace until `advance` moves it on) and the
//       page logs each fetch with the page's own time in window.__ttFetches
//   {"op": "advance", "until"?: page ms, "ms"?: ms, "step"?: ms}  moves the page's
//       clock on to `until` (or by `ms`), `step` ms at a time, firing due timers; after
//       each step the page's requests are answered before the next (real fetches)
//   {"op": "reset"} closes the context and empties the log (one driver, many tests)
//   {"op": "goto", "url": ...} {"op": "click", "sel": ...} {"op": "fill", "sel", "value"}
//   {"op": "select", "sel", "value"} {"op": "check", "sel", "on"} {"op": "press", "key"}
//   {"op": "wait", "sel", "state"?} {"op": "waitFn", "expr"} {"op": "eval", "expr"}
//   {"op": "screenshot", "path", "full"?} {"op": "download", "sel"} {"op": "log"}
//   {"op": "viewport", "width", "height"} {"op": "hidden", "on"} {"op": "sleep", "ms"}
// The page gets window.alert/confirm/prompt hooks that only count calls
// (window.__ttAlerts), so a test can prove that no injected script ran.
const path = require('path');
const fs = require('fs');
const readline = require('readline');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(__dirname, '..', 'browser')] }));

const HOOKS = `
  window.__ttAlerts = [];
  for (const name of ['alert', 'confirm', 'prompt']) {
    window[name] = (...args) => { window.__ttAlerts.push([name, String(args[0])]); return null; };
  }
  window.__ttCsp = [];
  document.addEventListener('securitypolicyviolation',
    (e) => window.__ttCsp.push(e.violatedDirective + ' ' + e.blockedURI));
  window.__ttHidden = false;
  Object.defineProperty(document, 'visibilityState', { get: () => (window.__ttHidden ? 'hidden' : 'visible') });
  Object.defineProperty(document, 'hidden', { get: () => window.__ttHidden });
`;

// Each fetch the page makes, stamped with the page's clock (the fake one under "clock").
const FETCH_LOG = `
  window.__ttFetches = [];
  const ttFetch = window.fetch;
  window.fetch = function (input, init) {
    window.__ttFetches.push({ t: Date.now(), url: new URL(input && input.url ? input.url : input, location.href).href });
    return ttFetch.call(this, input, init);
  };
`;

let browser;
let context;
let page;
const log = { console: [], errors: [], requests: [], responses: [] };
const inFlight = new Set();
const t0 = Date.now();

async function reset() {
  if (context) await context.close();
  context = undefined;
  page = undefined;
  inFlight.clear();
  log.console = []; log.errors = []; log.requests = []; log.responses = [];
  return true;
}

async function open(cmd) {
  if (context) await context.close();
  inFlight.clear();
  context = await browser.newContext({
    viewport: { width: cmd.width || 1440, height: cmd.height || 900 },
    colorScheme: cmd.scheme || 'light', acceptDownloads: true,
  });
  if (cmd.clock) {
    await context.clock.install();
    await context.addInitScript(FETCH_LOG);
  }
  await context.addInitScript(HOOKS);
  if (cmd.init) await context.addInitScript(cmd.init);
  page = await context.newPage();
  page.on('request', (r) => inFlight.add(r));
  page.on('requestfinished', (r) => inFlight.delete(r));
  page.on('requestfailed', (r) => inFlight.delete(r));
  page.on('console', (m) => {
    log.console.push({ type: m.type(), text: m.text() });
    if (m.type() === 'error') log.errors.push(m.text());
  });
  page.on('pageerror', (e) => log.errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.url().includes('/api/')) log.requests.push({ t: Date.now() - t0, method: r.method(), url: r.url() });
  });
  page.on('response', (r) => {
    if (r.url().includes('/api/')) {
      log.responses.push({ t: Date.now() - t0, status: r.status(), url: r.url(), retryAfter: r.headers()['retry-after'] || null });
    }
  });
  page.on('requestfailed', (r) => {
    const f = r.failure();
    if (f && !/ERR_ABORTED/.test(f.errorText)) log.errors.push(`requestfailed: ${r.url()} ${f.errorText}`);
  });
  return { ok: true };
}

// The page's clock on to `until`, a step at a time: a step fires the timers due in it
// (a realtime poll's fetch is real), then a short real pause and every request of the
// page answered, so that no answer arrives after the next tick has already asked again.
async function advance(c) {
  const now = () => page.evaluate(() => Date.now());
  const until = c.until ?? (await now()) + c.ms;
  for (let t = await now(); t < until; t = await now()) {
    await page.clock.runFor(Math.min(c.step || 250, until - t));
    await new Promise((r) => setTimeout(r, 10));
    const deadline = Date.now() + 15000;
    while (inFlight.size) {
      if (Date.now() > deadline) throw new Error(`requests unanswered: ${[...inFlight].map((r) => r.url())}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return now();
}

const ops = {
  open,
  reset,
  advance,
  goto: async (c) => { await page.goto(c.url, { waitUntil: 'load' }); return page.url(); },
  url: async () => page.url(),
  click: async (c) => { await page.click(c.sel, { timeout: c.timeout || 15000 }); return true; },
  fill: async (c) => { await page.fill(c.sel, c.value, { timeout: 15000 }); return true; },
  select: async (c) => { await page.selectOption(c.sel, c.value, { timeout: 15000 }); return true; },
  check: async (c) => { await page.setChecked(c.sel, c.on, { timeout: 15000 }); return true; },
  press: async (c) => { await page.keyboard.press(c.key); return true; },
  wait: async (c) => { await page.waitForSelector(c.sel, { state: c.state || 'visible', timeout: c.timeout || 20000 }); return true; },
  // Polled from here: Playwright's waitForFunction evaluates strings with `new Function`
  // in the page, which the dashboard's CSP (no 'unsafe-eval') rightly refuses.
  waitFn: async (c) => {
    const deadline = Date.now() + (c.timeout || 20000);
    for (;;) {
      if (await page.evaluate(c.expr)) return true;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${c.expr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  eval: async (c) => page.evaluate(c.expr),
  screenshot: async (c) => { await page.screenshot({ path: c.path, fullPage: !!c.full }); return c.path; },
  viewport: async (c) => { await page.setViewportSize({ width: c.width, height: c.height }); return true; },
  hidden: async (c) => page.evaluate((on) => { window.__ttHidden = on; document.dispatchEvent(new Event('visibilitychange')); }, c.on),
  sleep: async (c) => { await page.waitForTimeout(c.ms); return true; },
  log: async () => log,
  clearLog: async () => { log.console = []; log.errors = []; log.requests = []; log.responses = []; return true; },
  now: async () => Date.now() - t0,
  download: async (c) => {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), page.click(c.sel)]);
    const file = await dl.path();
    return { name: dl.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
  },
};

async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    let answer;
    try {
      if (cmd.op === 'quit') break;
      answer = { ok: true, value: await ops[cmd.op](cmd) };
    } catch (e) {
      answer = { ok: false, error: String(e && e.stack ? e.stack : e) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
  await browser.close();
  // stdin stays open after "quit" (the Python side keeps the pipe until the process
  // ends), and an open stdin keeps node's event loop alive: end the process here.
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
