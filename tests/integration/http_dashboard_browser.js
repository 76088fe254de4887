// SPDX-License-Identifier: MIT
// The browser half of test_http_dashboard.sh: drives Debian's headless
// Chromium with playwright-core against a running partreg-http and checks
// the dashboard's DOM. Everything comes from the environment (set by the
// test); prints "ok - ..." lines, and "FAIL: ..." with exit 1 on the first
// failure. Timings are printed as "time: NAME MS".
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const env = (k) => {
  const v = process.env[k];
  if (v === undefined || v === '') throw new Error('missing environment ' + k);
  return v;
};
const { chromium } = require(env('PW_MODULE'));
const BASE = env('DASH_BASE'); // http://127.0.0.1:PORT
const S = env('DASH_SOURCE');
const EVIL = env('DASH_EVIL_SOURCE');
const EVIL_OWNER = env('DASH_EVIL_OWNER');
const TOKEN = env('DASH_TOKEN');
const TARGET = JSON.parse(env('DASH_TARGET')); // {start, end} of the pending partition to lock and unlock
const EXPECT = JSON.parse(env('DASH_EXPECT')); // [{provider, start, end, state}]
const GAP = JSON.parse(env('DASH_GAP')); // {provider, start, end}
const SHOT = env('DASH_SHOT');
const AGENT_PID = Number(env('DASH_AGENT_PID'));
const HTTP_PID = Number(env('DASH_HTTP_PID'));
const HTTP_CMD = JSON.parse(env('DASH_HTTP_CMD')); // argv to start partreg-http again
const HTTP_PIDFILE = env('DASH_HTTP_PIDFILE');
const HTTP_LOG = env('DASH_HTTP_LOG');
const UNLOCK_MAX_MS = Number(process.env.DASH_UNLOCK_MAX_MS || 1000);

let failed = false;
function ok(msg) { console.log('ok - ' + msg); }
function fail(msg) { failed = true; throw new Error(msg); }
function check(cond, msg, got) {
  if (!cond) fail(msg + (got !== undefined ? ' (got ' + JSON.stringify(got) + ')' : ''));
  ok(msg);
}
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return false; } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(cmd, body) {
  const r = await fetch(BASE + '/v1/' + cmd, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + TOKEN },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let j = null;
  try { j = JSON.parse(text); } catch (e) { /* reported below */ }
  if (!r.ok || !j || !j.ok) fail(cmd + ' over HTTP: ' + r.status + ' ' + text);
  return j;
}

// What the page shows for one source: its parts and gaps, by lane.
function readSource(page, source) {
  return page.evaluate((source) => {
    const sec = [...document.querySelectorAll('main section.source')].find((s) => s.dataset.source === source);
    if (!sec) return null;
    const lanes = {};
    for (const lane of sec.querySelectorAll('.lane')) {
      lanes[lane.dataset.provider] = {
        label: lane.querySelector('.lane-label').textContent,
        parts: [...lane.querySelectorAll('.part')].map((e) => ({
          source: e.dataset.source, provider: e.dataset.provider, start: e.dataset.start,
          end: e.dataset.end, state: e.dataset.state, fence: e.dataset.fence, version: e.dataset.version,
        })),
        gaps: [...lane.querySelectorAll('.gap')].map((e) => ({ start: e.dataset.start, end: e.dataset.end })),
      };
    }
    return {
      title: sec.querySelector('h2').textContent,
      owner: sec.querySelector('.owner').dataset.owner,
      ownerText: sec.querySelector('.owner').textContent,
      html: sec.innerHTML,
      elements: [...sec.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
      from: document.querySelector('main').dataset.from,
      to: document.querySelector('main').dataset.to,
      lanes,
    };
  }, source);
}

const stateOf = (page, prov, start) => page.evaluate(([S, prov, start]) => {
  const e = [...document.querySelectorAll('main .part')].find((e) =>
    e.dataset.source === S && e.dataset.provider === prov && e.dataset.start === start);
  return e ? e.dataset.state : null;
}, [S, prov, start]);

async function waitFor(page, what, fn, arg, timeoutMs) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 25 });
  } catch (e) {
    const st = await page.evaluate(() => [document.body.dataset.connection, document.body.dataset.agent]).catch(() => '?');
    fail(what + ' within ' + timeoutMs + ' ms (page: connection/agent ' + st + '; ' + String(e.message).split('\n')[0] + ')');
  }
}

async function main() {
  const t0 = Date.now();
  const udd = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'chromium-'));
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: process.env.DASH_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 720 },
    timezoneId: 'Europe/Berlin', // the page must show UTC whatever the browser's zone
  });
  const errors = [];
  const outside = [];
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on('pageerror', (e) => errors.push(e.message));
    // (The stream cut and the refused reconnections while partreg-http is
    // away are expected: network errors of /v1/stream only.)
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (/^Failed to load resource: net::ERR_/.test(m.text()) && [BASE + '/v1/stream', ''].includes(m.location().url || '')) return;
      errors.push(m.text() + ' (' + (m.location().url || '') + ')');
    });
    page.on('request', (r) => { if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) outside.push(r.url()); });
    let streams = 0;
    page.on('request', (r) => { if (r.url() === BASE + '/v1/stream') streams++; });
    console.log('time: chromium-start ' + (Date.now() - t0));

    // ---- the initial state, from the stream's snapshot ----
    const t1 = Date.now();
    const resp = await page.goto(BASE + '/');
    check(resp.status() === 200 && /text\/html/.test(resp.headers()['content-type'] || ''),
      'GET / from a browser is the dashboard (text/html)', [resp.status(), resp.headers()['content-type']]);
    await waitFor(page, 'the page is live (snapshot-end seen)', () => document.body.dataset.connection === 'live', null, 10000);
    const want = EXPECT.length;
    await waitFor(page, 'every expected partition shown', ([S, n]) =>
      [...document.querySelectorAll('main .part')].filter((e) => e.dataset.source === S).length >= n, [S, want], 10000);
    console.log('time: page-live ' + (Date.now() - t1));
    ok('the page loaded and went live from GET /v1/stream');

    let src = await readSource(page, S);
    check(src && src.title === S, 'source ' + S + ' has its section', src && src.title);
    check(src.owner === 'data-team' && /data-team/.test(src.ownerText), 'its owner is shown', src.ownerText);
    const provs = [...new Set(EXPECT.map((e) => e.provider))].sort();
    check(JSON.stringify(Object.keys(src.lanes).sort()) === JSON.stringify(provs), 'one lane per provider: ' + provs.join(', '), Object.keys(src.lanes));
    for (const e of EXPECT) {
      const got = src.lanes[e.provider].parts.filter((p) => p.start === e.start && p.end === e.end);
      check(got.length === 1 && got[0].state === e.state && got[0].source === S,
        `${e.provider} ${e.start.slice(0, 10)}..${e.end.slice(0, 10)} shown ${e.state}`, got);
    }
    const nParts = Object.values(src.lanes).reduce((n, l) => n + l.parts.length, 0);
    check(nParts === EXPECT.length, 'no other partition shown', nParts);
    // The default window shows the data present: first start to last end.
    const starts = EXPECT.map((e) => e.start).sort(), ends = EXPECT.map((e) => e.end).sort();
    check(src.from === starts[0] && src.to === ends[ends.length - 1], 'the default window is the data present', [src.from, src.to]);
    // Gaps: the expected one, and in every lane the gaps and the live
    // partitions tile the window exactly (no overlap, nothing missing).
    const g = src.lanes[GAP.provider].gaps;
    check(g.some((x) => x.start === GAP.start && x.end === GAP.end), `the gap ${GAP.start}..${GAP.end} of ${GAP.provider} is shown`, g);
    for (const [prov, lane] of Object.entries(src.lanes)) {
      const segs = lane.parts.filter((p) => p.state !== 'deleted').map((p) => [p.start, p.end])
        .concat(lane.gaps.map((x) => [x.start, x.end])).sort();
      let cur = src.from, tiled = true;
      for (const [a, b] of segs) { if (a !== cur) tiled = false; cur = b; }
      check(tiled && cur === src.to, `lane ${prov}: partitions and gaps tile the window`, segs);
    }
    // The agent's status.
    const agentText = await page.textContent('#agent');
    check(await page.evaluate(() => document.body.dataset.agent) === 'online' && /online since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(agentText),
      'the agent is shown online, with since when (UTC)', agentText);
    // Names are text, never markup.
    const evil = await readSource(page, EVIL);
    check(evil && evil.title === EVIL && evil.owner === EVIL_OWNER && evil.ownerText.includes(EVIL_OWNER),
      'a source and owner named with markup are shown as text', evil && [evil.title, evil.ownerText]);
    check(!evil.elements.includes('img') && !evil.elements.includes('b') && !evil.elements.includes('script'),
      'no element made from user text', evil.elements.filter((t) => ['img', 'b', 'script'].includes(t)));
    // Hover: the failed partition's reason, provider, version, fence, since.
    const failedP = EXPECT.find((e) => e.state === 'failed');
    await page.hover(`main .part[data-provider="${failedP.provider}"][data-start="${failedP.start}"]`);
    let tip = await page.textContent('#tooltip');
    check(await page.isVisible('#tooltip') && /reason/.test(tip) && tip.includes(failedP.reason) && /provider/.test(tip) &&
      /fence/.test(tip) && /version/.test(tip) && /since/.test(tip), 'hover on the failed one: provider, version, fence, since, reason', tip);
    await page.hover(`main .gap[data-provider="${GAP.provider}"][data-start="${GAP.start}"]`);
    tip = await page.textContent('#tooltip');
    check(/gap/i.test(tip) && tip.includes(GAP.start.slice(0, 10)), 'hover on the gap says it is one', tip);
    await page.mouse.move(0, 0);
    // The same as a table, for keyboards and screen readers.
    const sum = page.locator('main section.source', { has: page.locator('h2', { hasText: S }) }).locator('details.list > summary');
    await sum.focus();
    await page.keyboard.press('Enter');
    // (details' toggle event, which fills the table, comes as a task of its own.)
    await waitFor(page, 'the partition table filled', (S) => [...document.querySelectorAll('main section.source')]
      .some((s) => s.dataset.source === S && s.querySelector('details.list[open] tbody tr')), S, 5000);
    const rows = await page.evaluate((S) => {
      const sec = [...document.querySelectorAll('main section.source')].find((s) => s.dataset.source === S);
      return [...sec.querySelectorAll('details.list tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent));
    }, S);
    check(rows.length === EXPECT.length && rows.some((r) => r[1] === 'failed' && r[7] === failedP.reason),
      'the partition table opens from the keyboard: one row each, the failed one with its reason', rows);
    await sum.click();

    // ---- lock: the DOM shows it locked ----
    const lockBody = { source: S, provider: TARGET.provider, start: TARGET.start, end: TARGET.end, ttl_s: 3600 };
    const lk = await post('partition/lock', lockBody);
    const fence = lk.result.fence;
    const tl = Date.now();
    await waitFor(page, 'the locked partition shown locked', ([S, t]) => [...document.querySelectorAll('main .part')].some((e) =>
      e.dataset.source === S && e.dataset.provider === t.provider && e.dataset.start === t.start && e.dataset.state === 'locked'),
    [S, TARGET], 5000);
    console.log('time: lock-reply-to-dom ' + (Date.now() - tl));
    src = await readSource(page, S);
    const lp = src.lanes[TARGET.provider].parts.find((p) => p.start === TARGET.start);
    check(lp.state === 'locked' && Number(lp.fence) === fence, 'lock over HTTP: the DOM shows it locked with fence ' + fence, lp);
    await page.hover(`main .part[data-provider="${TARGET.provider}"][data-start="${TARGET.start}"]`);
    tip = await page.textContent('#tooltip');
    check(/lease/.test(tip) && tip.includes(lk.result.expires_at.slice(0, 19).replace('T', ' ')), 'hover on the locked one: its lease (expires_at)', tip);
    await page.mouse.move(0, 0);
    await page.waitForTimeout(100);
    await page.screenshot({ path: SHOT, fullPage: true });
    ok('screenshot ' + SHOT);

    // ---- unlock: ready in the DOM within UNLOCK_MAX_MS of the reply ----
    // The page notes when the element turns ready (a MutationObserver, in
    // the page's clock, which is this machine's clock too).
    await page.evaluate(([S, t]) => {
      window.__readyAt = 0;
      const seen = () => [...document.querySelectorAll('main .part')].some((e) =>
        e.dataset.source === S && e.dataset.provider === t.provider && e.dataset.start === t.start && e.dataset.state === 'ready');
      const mo = new MutationObserver(() => { if (!window.__readyAt && seen()) { window.__readyAt = Date.now(); mo.disconnect(); } });
      mo.observe(document.querySelector('main'), { subtree: true, childList: true, attributes: true });
    }, [S, TARGET]);
    const sent = Date.now();
    const un = await post('partition/unlock', { source: S, provider: TARGET.provider, start: TARGET.start, end: TARGET.end, fence });
    const replied = Date.now();
    check(un.result.state === 'ready', 'unlock over HTTP: replied ready', un.result.state);
    let readyAt = 0;
    for (let i = 0; i < 50 && !readyAt; i++) { readyAt = await page.evaluate(() => window.__readyAt); if (!readyAt) await sleep(100); }
    if (!readyAt) fail('the unlocked partition never turned ready in the DOM (waited 5 s)');
    const lat = readyAt - replied;
    console.log(`time: unlock-reply-to-dom ${lat} (request sent to DOM ${readyAt - sent}, request to reply ${replied - sent})`);
    check(lat <= UNLOCK_MAX_MS, `the DOM showed it ready ${lat} ms after the unlock reply (at most ${UNLOCK_MAX_MS})`, lat);
    check(await stateOf(page, TARGET.provider, TARGET.start) === 'ready', 'and it stays ready');
    check(streams === 1, 'one stream request so far: live updates, no polling', streams);

    // ---- the agent crashes: the page shows it offline, its connection lost ----
    // (its Last Will's at is when that connection began: the page says
    // since when it saw it go)
    const ta = Date.now();
    process.kill(AGENT_PID, 'SIGKILL');
    await waitFor(page, 'the agent shown offline', () => document.body.dataset.agent === 'offline', null, 10000);
    const offText = await page.textContent('#agent');
    console.log('time: agent-kill-to-dom ' + (Date.now() - ta));
    check(/offline since .* UTC \(.*\), connection lost/.test(offText), 'agent killed: the page says offline since …, connection lost', offText);

    // ---- partreg-http goes away: the page says disconnected ----
    const th = Date.now();
    process.kill(HTTP_PID, 'SIGTERM');
    await waitFor(page, 'the page shown disconnected', () => document.body.dataset.connection === 'disconnected', null, 10000);
    console.log('time: http-stop-to-dom ' + (Date.now() - th));
    const connText = await page.textContent('#conn');
    check(/disconnected/i.test(connText), 'stream dropped: the page says disconnected', connText);
    check(await stateOf(page, TARGET.provider, TARGET.start) === 'ready', 'what it knew stays on the page meanwhile');
    for (let i = 0; i < 50 && alive(HTTP_PID); i++) await sleep(100);
    if (alive(HTTP_PID)) { console.log('note: partreg-http still running 5 s after SIGTERM; killed'); process.kill(HTTP_PID, 'SIGKILL'); }
    await sleep(500);
    check(await page.evaluate(() => document.body.dataset.connection) === 'disconnected', 'still disconnected while the daemon is away');

    // ---- it comes back: the page reconnects by itself ----
    const tr = Date.now();
    const log = fs.openSync(HTTP_LOG, 'a');
    const child = spawn(HTTP_CMD[0], HTTP_CMD.slice(1), { stdio: ['ignore', log, log], detached: true });
    fs.writeFileSync(HTTP_PIDFILE, String(child.pid));
    child.unref();
    await waitFor(page, 'the page live again after partreg-http restarted', () => document.body.dataset.connection === 'live', null, 20000);
    console.log('time: http-restart-to-live ' + (Date.now() - tr));
    ok('partreg-http restarted: the page reconnected and is live');
    await waitFor(page, 'the state back after the reconnection', ([S, t]) => document.body.dataset.agent === 'offline' &&
      [...document.querySelectorAll('main .part')].some((e) => e.dataset.source === S && e.dataset.start === t.start && e.dataset.state === 'ready'),
    [S, TARGET], 5000);
    ok('after the reconnection: the agent offline, the partition ready');
    const offAgain = await page.textContent('#agent');
    const since = (t) => (t.match(/offline since (.*? UTC)/) || [])[1];
    check(since(offAgain) !== undefined && since(offAgain) === since(offText) && /connection lost/.test(offAgain),
      'and still offline since the time it saw the agent go, its connection lost', [offText, offAgain]);

    check(errors.length === 0, 'no script error in the page', errors);
    check(outside.length === 0, 'no request outside partreg-http', outside);
  } finally {
    await ctx.close();
    fs.rmSync(udd, { recursive: true, force: true });
  }
  console.log('time: browser-total ' + (Date.now() - t0));
}

main().then(() => process.exit(0), (e) => {
  console.error('FAIL: ' + (failed ? e.message : (e.stack || e)));
  process.exit(1);
});
