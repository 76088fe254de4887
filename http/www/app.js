// SPDX-License-Identifier: MIT
// partreg dashboard. State comes only from GET /v1/stream (Server-Sent
// Events: status, summary, partition, snapshot-end); nothing is polled.
// Every name is user text: the DOM is built with textContent and
// setAttribute only, never from HTML strings.
'use strict';

(function () {
  const STATES = ['ready', 'locked', 'pending', 'failed', 'deleted'];
  const DAY = 86400000;
  const PRESETS = { '1d': DAY, '7d': 7 * DAY, '30d': 30 * DAY, '90d': 90 * DAY };

  // ---- time -------------------------------------------------------------
  // Canonical times (2023-01-01T00:00:00.123456Z) to ms; also accepts an
  // offset or none (UTC), as the agent's inputs do.
  const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:\d{2})?$/;
  function parseTime(s) {
    const m = TIME_RE.exec(String(s || ''));
    if (!m) return NaN;
    let t = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0));
    if (m[7]) t += Number(('0.' + m[7])) * 1000;
    if (m[8] && m[8] !== 'Z' && m[8] !== 'z') {
      const sign = m[8][0] === '-' ? 1 : -1;
      t += sign * (+m[8].slice(1, 3) * 60 + +m[8].slice(4, 6)) * 60000;
    }
    return t;
  }
  const pad = (n, w) => String(n).padStart(w || 2, '0');
  function iso(ms) { // 2023-01-01T00:00:00Z (seconds; the inputs' precision)
    const d = new Date(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + 'T' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z';
  }
  function human(ms) { // 2023-01-01 00:00:00 UTC
    return isFinite(ms) ? iso(ms).replace('T', ' ').replace('Z', ' UTC') : '—';
  }
  function humanCanon(s) { // keeps the fraction the agent gave
    return s ? String(s).replace('T', ' ').replace(/Z$/, ' UTC') : '—';
  }
  function duration(ms) {
    if (!isFinite(ms)) return '';
    const neg = ms < 0; ms = Math.abs(ms);
    let out;
    if (ms < 1000) out = Math.round(ms) + ' ms';
    else if (ms < 60000) out = Math.round(ms / 1000) + ' s';
    else if (ms < 3600000) out = Math.round(ms / 60000) + ' min';
    else if (ms < 2 * DAY) { const h = ms / 3600000; out = (h % 1 ? h.toFixed(1) : h) + ' h'; }
    else if (ms < 730 * DAY) { const d = ms / DAY; out = (d % 1 ? d.toFixed(1) : d) + ' days'; }
    else out = (ms / (365.25 * DAY)).toFixed(1) + ' years';
    return neg ? '-' + out : out;
  }
  function ago(ms) {
    const d = Date.now() - ms;
    if (!isFinite(d)) return '';
    return d >= 0 ? duration(d) + ' ago' : 'in ' + duration(-d);
  }
  function toInput(ms) { return iso(ms).slice(0, 19); }
  function fromInput(v) { return v ? parseTime(v.length === 16 ? v + ':00' : v) : NaN; }

  // ---- state ------------------------------------------------------------
  // A store: sources by name (summary), partitions by key, agent status.
  function newStore() { return { summaries: new Map(), parts: new Map(), status: null, statusSeen: 0 }; }
  let store = newStore();
  let snap = null; // the store being filled by a (re)connection's snapshot
  let live = false; // snapshot-end seen on this connection
  const dirty = new Set();
  let allDirty = true;

  const pkey = (p) => [p.source, p.start, p.end, p.provider].join('\u001f');
  const newer = (a, b) => !b || a.epoch > b.epoch || (a.epoch === b.epoch && a.seq >= b.seq);

  function parseData(raw) {
    if (!raw) return null;
    try { const v = JSON.parse(raw); return v && typeof v === 'object' ? v : null; } catch (e) { return null; }
  }

  function onStatus(e) {
    const st = parseData(e.data);
    if (!st) return;
    const s = snap || store;
    s.status = st;
    // Seen live: when it changed. In a snapshot, a status the page already
    // had keeps the time it was seen.
    const old = store.status;
    const same = old && old.status === st.status && old.instance === st.instance;
    s.statusSeen = snap ? (same ? store.statusSeen : 0) : Date.now();
    if (!snap) renderAgent();
  }
  function onSummary(e) {
    const sm = parseData(e.data);
    if (!sm || typeof sm.source !== 'string') return;
    const s = snap || store;
    if (!newer(sm, s.summaries.get(sm.source))) return;
    s.summaries.set(sm.source, sm);
    if (!snap) markDirty(sm.source);
  }
  function onPartition(e) {
    const p = parseData(e.data);
    if (!p || typeof p.source !== 'string' || typeof p.provider !== 'string') return;
    const s = snap || store;
    const k = pkey(p);
    // A partition without a state is a cleared topic: it is gone.
    if (!p.state) { s.parts.delete(k); if (!snap) markDirty(p.source); return; }
    if (!newer(p, s.parts.get(k))) return;
    p._s = parseTime(p.start);
    p._e = parseTime(p.end);
    if (!isFinite(p._s) || !isFinite(p._e)) return;
    s.parts.set(k, p);
    if (!snap) markDirty(p.source);
  }
  function onSnapshotEnd() {
    if (snap) { store = snap; snap = null; }
    live = true;
    setConn('live');
    allDirty = true;
    renderAgent();
    scheduleRender();
  }

  // ---- connection -------------------------------------------------------
  // The page reconnects itself, closing the EventSource at the first error:
  // the browser's own retry waits about 3 s and gives up for good on an
  // error status; this one starts at 0.5 s and backs off to 10 s.
  let es = null;
  let retryMs = 500;
  let retryTimer = 0;
  let downSince = 0;
  function connect() {
    retryTimer = 0;
    if (es) es.close();
    setConn(downSince ? 'disconnected' : 'connecting');
    const me = new EventSource('/v1/stream');
    es = me;
    const mine = (f) => (e) => { if (es === me) f(e); };
    me.addEventListener('open', mine(() => {
      // A (re)connection sends the whole state again: gather it apart and
      // swap it in at snapshot-end, so that what vanished meanwhile goes.
      snap = newStore();
      live = false;
      setConn('syncing');
    }));
    me.addEventListener('status', mine(onStatus));
    me.addEventListener('summary', mine(onSummary));
    me.addEventListener('partition', mine(onPartition));
    me.addEventListener('snapshot-end', mine((e) => { retryMs = 500; onSnapshotEnd(e); }));
    me.addEventListener('error', mine(() => {
      me.close();
      if (!downSince) downSince = Date.now();
      live = false;
      snap = null;
      setConn('disconnected');
      if (!retryTimer) retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    }));
  }

  const $ = (id) => document.getElementById(id);
  function setPill(el, cls, text, title) {
    el.className = 'pill ' + cls;
    el.querySelector('.text').textContent = text;
    if (title) el.title = title; else el.removeAttribute('title');
  }
  function setConn(c) {
    document.body.dataset.connection = c;
    if (c === 'live') downSince = 0;
    const text = {
      connecting: 'Connecting…',
      syncing: 'Loading state…',
      live: 'Live',
      disconnected: 'Disconnected' + (downSince ? ' since ' + human(downSince).slice(11) + ' — reconnecting' : ''),
    }[c];
    setPill($('conn'), 'conn ' + c, text, c === 'live' ? 'Updates arrive as they happen (Server-Sent Events)' :
      c === 'disconnected' ? 'The stream from partreg-http dropped; what is shown may be out of date' : '');
    document.body.classList.toggle('stale', c === 'disconnected');
  }
  function renderAgent() {
    const st = store.status;
    const el = $('agent');
    if (!st) {
      document.body.dataset.agent = 'unknown';
      setPill(el, 'agent unknown', 'Agent: no status', 'No retained agent status on the broker');
      return;
    }
    const online = st.status === 'online';
    document.body.dataset.agent = online ? 'online' : 'offline';
    // A Last Will ("lost") carries the time its connection began: the time
    // it went offline is the time this page saw it, if it did.
    const lost = !online && st.lost === true;
    const at = lost ? store.statusSeen || NaN : parseTime(st.at);
    let text;
    if (lost && !isFinite(at)) {
      text = 'Agent offline: connection lost after ' + humanCanon(st.at).slice(0, 19) + ' UTC';
    } else {
      text = 'Agent ' + (online ? 'online' : 'offline') + ' since ' +
        (lost ? human(at).slice(0, 19) : humanCanon(st.at).slice(0, 19)) + ' UTC';
      if (isFinite(at)) text += ' (' + ago(at) + ')';
      if (lost) text += ', connection lost';
    }
    const title = [
      'agent_id: ' + (st.agent_id || '?'),
      'version: ' + (st.version || '?'),
      'epoch: ' + st.epoch,
      'status at: ' + humanCanon(st.at),
    ];
    if (store.statusSeen) title.push('seen here: ' + human(store.statusSeen));
    setPill(el, 'agent ' + (online ? 'online' : 'offline'), text, title.join('\n'));
    el.dataset.since = st.at || '';
  }

  // ---- window -----------------------------------------------------------
  // The window: a preset (fit = the data present, 1d/7d/30d/90d = up to now)
  // or a fixed from/to; kept in the URL's hash.
  let win = { preset: 'fit', from: NaN, to: NaN };
  function readHash() {
    const h = new URLSearchParams(location.hash.replace(/^#/, ''));
    const f = parseTime(h.get('from')), t = parseTime(h.get('to'));
    if (isFinite(f) && isFinite(t) && t > f) win = { preset: null, from: f, to: t };
    else if (h.get('window') && (h.get('window') === 'fit' || PRESETS[h.get('window')])) win = { preset: h.get('window'), from: NaN, to: NaN };
    else win = { preset: 'fit', from: NaN, to: NaN };
    if (h.has('filter')) $('filter').value = h.get('filter');
  }
  function writeHash() {
    const h = new URLSearchParams();
    if (win.preset) h.set('window', win.preset); else { h.set('from', iso(win.from)); h.set('to', iso(win.to)); }
    const f = $('filter').value.trim();
    if (f) h.set('filter', f);
    history.replaceState(null, '', '#' + h.toString());
  }
  function currentWindow(sources) {
    if (!win.preset) return [win.from, win.to];
    const now = Date.now();
    if (win.preset !== 'fit') return [now - PRESETS[win.preset], now];
    let lo = Infinity, hi = -Infinity;
    for (const s of sources) {
      for (const p of s.parts) {
        if (p._s < lo) lo = p._s;
        if (p._e > hi) hi = p._e;
      }
      const sm = s.summary;
      if (sm) {
        for (const r of sm.ready || []) { lo = Math.min(lo, parseTime(r[0])); hi = Math.max(hi, parseTime(r[1])); }
        for (const b of sm.blocked || []) { lo = Math.min(lo, parseTime(b.start)); hi = Math.max(hi, parseTime(b.end)); }
      }
    }
    if (!isFinite(lo) || !isFinite(hi) || hi <= lo) return [now - 7 * DAY, now];
    return [lo, hi];
  }

  // ---- model for rendering ---------------------------------------------
  function sourcesView() {
    const by = new Map();
    const get = (name) => {
      let s = by.get(name);
      if (!s) { s = { name, summary: null, parts: [] }; by.set(name, s); }
      return s;
    };
    for (const sm of store.summaries.values()) get(sm.source).summary = sm;
    for (const p of store.parts.values()) get(p.source).parts.push(p);
    const f = $('filter').value.trim().toLowerCase();
    let list = [...by.values()];
    if (f) {
      list = list.filter((s) => s.name.toLowerCase().includes(f) ||
        (s.summary && String(s.summary.owner).toLowerCase().includes(f)) ||
        s.parts.some((p) => p.provider.toLowerCase().includes(f)));
    }
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return list;
  }

  // Partitions of one provider in [lo, hi) into rows so that overlapping
  // ones (a day and an hour in it) do not hide each other; the gaps are
  // the parts of the window no live (not deleted) partition covers.
  function laneLayout(parts, lo, hi) {
    const vis = parts.filter((p) => p._e > lo && p._s < hi)
      .sort((a, b) => a._s - b._s || a._e - b._e || (a.state === 'deleted') - (b.state === 'deleted'));
    const rowsEnd = [];
    for (const p of vis) {
      let r = rowsEnd.findIndex((e) => e <= p._s);
      if (r < 0) { r = rowsEnd.length; rowsEnd.push(0); }
      rowsEnd[r] = p._e;
      p._row = r;
    }
    const gaps = [];
    let cur = lo;
    for (const p of vis) {
      if (p.state === 'deleted') continue;
      if (p._s > cur) gaps.push([cur, Math.min(p._s, hi)]);
      if (p._e > cur) cur = p._e;
      if (cur >= hi) break;
    }
    if (cur < hi) gaps.push([cur, hi]);
    return { vis, rows: Math.max(1, rowsEnd.length), gaps };
  }

  // ---- axis -------------------------------------------------------------
  const STEPS = [1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 9e5, 18e5, 36e5, 3 * 36e5, 6 * 36e5, 12 * 36e5,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY];
  const MONTHS = [1, 3, 6, 12, 24, 60, 120];
  function ticks(lo, hi, maxTicks) {
    const span = hi - lo;
    const out = [];
    const step = STEPS.find((s) => span / s <= maxTicks);
    if (step) {
      let t = Math.ceil(lo / step) * step;
      if (step === 7 * DAY || step === 14 * DAY) t = Math.ceil((lo - 4 * DAY) / step) * step + 4 * DAY; // Mondays
      for (; t <= hi; t += step) {
        const d = new Date(t);
        let label;
        if (step >= DAY) label = iso(t).slice(0, 10);
        else if (step >= 6e4) label = (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 || !out.length) ? iso(t).slice(5, 16).replace('T', ' ') : iso(t).slice(11, 16);
        else label = iso(t).slice(11, 19);
        out.push([t, label]);
      }
      return out;
    }
    const months = MONTHS.find((m) => span / (m * 30.4 * DAY) <= maxTicks) || 240;
    const d0 = new Date(lo);
    let y = d0.getUTCFullYear(), m = d0.getUTCMonth();
    m = Math.ceil((y * 12 + m) / months) * months;
    for (;;) {
      const t = Date.UTC(Math.floor(m / 12), m % 12, 1);
      if (t > hi) break;
      if (t >= lo) out.push([t, months >= 12 ? iso(t).slice(0, 4) : iso(t).slice(0, 7)]);
      m += months;
    }
    return out;
  }

  // ---- rendering --------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  const pct = (t, lo, hi) => ((t - lo) / (hi - lo)) * 100;
  const THIN = 0.004; // narrower than this share of the window (a few px): drawn without borders

  function partLabel(p) {
    let s = p.provider + ': ' + p.state + ', ' + human(p._s) + ' to ' + human(p._e);
    if (p.state === 'locked' && p.expires_at) s += ', lease until ' + humanCanon(p.expires_at);
    if (p.state === 'failed' && p.reason) s += ', reason ' + p.reason;
    return s;
  }

  function renderAxis(lo, hi) {
    const axis = el('div', 'axis');
    axis.setAttribute('aria-hidden', 'true');
    const track = el('div', 'axis-track');
    const maxT = window.innerWidth < 640 ? 3 : window.innerWidth < 1000 ? 5 : 8;
    for (const [t, label] of ticks(lo, hi, maxT)) {
      const x = pct(t, lo, hi);
      const tk = el('span', x < 6 ? 'tick at-start' : x > 94 ? 'tick at-end' : 'tick', label);
      tk.style.left = x + '%';
      track.appendChild(tk);
    }
    axis.append(el('div', 'lane-label'), track);
    return axis;
  }

  function renderSource(s, lo, hi) {
    const sec = el('section', 'source');
    sec.dataset.source = s.name;
    const id = 'src-' + Math.random().toString(36).slice(2);
    sec.setAttribute('aria-labelledby', id);
    const head = el('header', 'source-head');
    const h = el('h2', null, s.name);
    h.id = id;
    head.appendChild(h);
    const sm = s.summary;
    const owner = el('span', 'owner', 'owner ' + (sm ? sm.owner : 'unknown'));
    owner.dataset.owner = sm ? sm.owner : '';
    head.appendChild(owner);
    const counts = {};
    for (const p of s.parts) counts[p.state] = (counts[p.state] || 0) + 1;
    const cl = el('span', 'counts');
    for (const st of STATES) {
      if (!counts[st]) continue;
      const c = el('span', 'count', counts[st] + ' ' + st);
      c.dataset.state = st;
      cl.appendChild(c);
    }
    if (!s.parts.length) cl.appendChild(el('span', 'count', 'no partitions'));
    head.appendChild(cl);
    if (sm) {
      const meta = el('span', 'meta', 'seq ' + sm.seq + ' · updated ' + humanCanon(sm.updated_at));
      head.appendChild(meta);
      if (sm.truncated) head.appendChild(el('span', 'warn', 'summary truncated'));
    }
    sec.appendChild(head);

    const tl = el('div', 'timeline');
    tl.appendChild(renderAxis(lo, hi));
    const byProv = new Map();
    for (const p of s.parts) {
      if (!byProv.has(p.provider)) byProv.set(p.provider, []);
      byProv.get(p.provider).push(p);
    }
    const provs = [...byProv.keys()].sort();
    let shown = 0;
    const now = Date.now();
    for (const prov of provs) {
      const { vis, rows, gaps } = laneLayout(byProv.get(prov), lo, hi);
      shown += vis.length;
      const lane = el('div', 'lane');
      lane.dataset.provider = prov;
      const lab = el('div', 'lane-label', prov);
      lab.title = 'provider ' + prov;
      const track = el('div', 'track');
      track.style.setProperty('--rows', rows);
      track.setAttribute('role', 'list');
      track.setAttribute('aria-label', 'Partitions of provider ' + prov + ' in the window');
      for (const [a, b] of gaps) {
        const g = el('div', 'gap');
        g.dataset.source = s.name;
        g.dataset.provider = prov;
        g.dataset.start = iso(a);
        g.dataset.end = iso(b);
        g.style.left = pct(a, lo, hi) + '%';
        g.style.width = pct(b, lo, hi) - pct(a, lo, hi) + '%';
        if ((b - a) / (hi - lo) < THIN) g.classList.add('thin');
        g.setAttribute('role', 'listitem');
        g.setAttribute('aria-label', 'gap: no partition of ' + prov + ' from ' + human(a) + ' to ' + human(b));
        track.appendChild(g);
      }
      for (const p of vis) {
        const d = el('div', 'part');
        d.dataset.source = p.source;
        d.dataset.provider = p.provider;
        d.dataset.start = p.start;
        d.dataset.end = p.end;
        d.dataset.state = p.state;
        d.dataset.version = p.version;
        d.dataset.fence = p.fence;
        d.dataset.key = pkey(p);
        const a = Math.max(p._s, lo), b = Math.min(p._e, hi);
        d.style.left = pct(a, lo, hi) + '%';
        d.style.width = pct(b, lo, hi) - pct(a, lo, hi) + '%';
        d.style.setProperty('--ri', p._row);
        if ((b - a) / (hi - lo) < THIN) d.classList.add('thin');
        if (p._s < lo) d.classList.add('cut-start');
        if (p._e > hi) d.classList.add('cut-end');
        if (p.state === 'locked' && p.expires_at && parseTime(p.expires_at) < now) d.classList.add('expired');
        d.setAttribute('role', 'listitem');
        d.setAttribute('aria-label', partLabel(p));
        track.appendChild(d);
      }
      lane.append(lab, track);
      tl.appendChild(lane);
    }
    if (!provs.length) tl.appendChild(el('p', 'note', 'No partitions yet.'));
    else if (!shown) tl.appendChild(el('p', 'note', 'No partitions in this window.'));
    sec.appendChild(tl);
    if (shown) sec.appendChild(renderTable(s, lo, hi, shown));
    return sec;
  }

  // The same partitions as a table (for keyboards and screen readers, and
  // to copy from), filled when opened; which ones are open is kept.
  const openTables = new Set();
  function renderTable(s, lo, hi, n) {
    const det = el('details', 'list');
    det.appendChild(el('summary', null, 'List the ' + n + ' partition' + (n === 1 ? '' : 's') + ' in the window'));
    const fill = () => {
      if (det.querySelector('table')) return;
      const tb = el('table');
      const hr = el('tr');
      for (const h of ['provider', 'state', 'start', 'end', 'version', 'fence', 'since', 'lease / reason']) {
        const th = el('th', null, h);
        th.scope = 'col';
        hr.appendChild(th);
      }
      tb.appendChild(el('thead')).appendChild(hr);
      const body = tb.appendChild(el('tbody'));
      const rows = s.parts.filter((p) => p._e > lo && p._s < hi)
        .sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : a._s - b._s || a._e - b._e));
      for (const p of rows) {
        const tr = el('tr');
        tr.dataset.state = p.state;
        const extra = p.state === 'locked' && p.expires_at ? 'until ' + humanCanon(p.expires_at) : p.reason || '';
        for (const v of [p.provider, p.state, humanCanon(p.start), humanCanon(p.end), p.version, p.fence, humanCanon(p.since), extra]) {
          tr.appendChild(el('td', null, String(v)));
        }
        body.appendChild(tr);
      }
      det.appendChild(tb);
    };
    det.addEventListener('toggle', () => {
      if (det.open) { openTables.add(s.name); fill(); } else openTables.delete(s.name);
    });
    if (openTables.has(s.name)) { det.open = true; fill(); }
    return det;
  }

  let lastWin = null;
  let renderTimer = 0;
  function markDirty(source) { dirty.add(source); scheduleRender(); }
  function scheduleRender() {
    if (renderTimer) return;
    renderTimer = setTimeout(render, 20);
  }
  function render() {
    renderTimer = 0;
    if (snap) return; // a snapshot is being gathered: render at its end
    const list = sourcesView();
    const [lo, hi] = currentWindow(list);
    if (!lastWin || lastWin[0] !== lo || lastWin[1] !== hi) allDirty = true;
    lastWin = [lo, hi];
    const main = $('sources');
    main.dataset.from = iso(lo);
    main.dataset.to = iso(hi);
    $('window-label').textContent = 'Showing ' + human(lo) + ' to ' + human(hi) + ' (' + duration(hi - lo) + ')' +
      (win.preset === 'fit' ? ', all data' : win.preset ? ', up to now' : '');
    if (document.activeElement !== $('from') && document.activeElement !== $('to')) {
      $('from').value = toInput(lo);
      $('to').value = toInput(hi);
    }
    for (const b of document.querySelectorAll('.presets button')) {
      b.setAttribute('aria-pressed', String(b.dataset.preset === win.preset));
    }
    if (!list.length) {
      main.replaceChildren(el('p', 'empty', live ? ($('filter').value.trim() ? 'No source matches the filter.' : 'No sources registered yet.')
        : 'Waiting for the registry\u2019s state…'));
      dirty.clear(); allDirty = false;
      return;
    }
    const existing = new Map();
    for (const c of main.querySelectorAll(':scope > section.source')) existing.set(c.dataset.source, c);
    const frag = [];
    for (const s of list) {
      const old = existing.get(s.name);
      frag.push(old && !allDirty && !dirty.has(s.name) ? old : renderSource(s, lo, hi));
    }
    main.replaceChildren(...frag);
    dirty.clear();
    allDirty = false;
    main.dataset.rendered = String(Date.now());
  }

  // ---- tooltip ----------------------------------------------------------
  const tip = () => $('tooltip');
  function tipRows(target) {
    const rows = [];
    if (target.classList.contains('gap')) {
      const a = parseTime(target.dataset.start), b = parseTime(target.dataset.end);
      rows.push(['', 'Gap: no partition']);
      rows.push(['source', target.dataset.source], ['provider', target.dataset.provider]);
      rows.push(['from', human(a)], ['to', human(b)], ['length', duration(b - a)]);
      return rows;
    }
    const p = store.parts.get(target.dataset.key);
    if (!p) return null;
    rows.push(['', p.state]);
    rows.push(['source', p.source], ['provider', p.provider]);
    rows.push(['start', humanCanon(p.start)], ['end', humanCanon(p.end)], ['length', duration(p._e - p._s)]);
    rows.push(['version', String(p.version)], ['fence', String(p.fence)]);
    rows.push(['since', humanCanon(p.since) + (p.since ? ' (' + ago(parseTime(p.since)) + ')' : '')]);
    if (p.expires_at) rows.push(['lease', 'expires ' + humanCanon(p.expires_at) + ' (' + ago(parseTime(p.expires_at)) + ')']);
    if (p.reason) rows.push(['reason', p.reason]);
    rows.push(['updated', humanCanon(p.updated_at)], ['seq', p.seq + ' (epoch ' + p.epoch + ')']);
    return rows;
  }
  function showTip(target, x, y) {
    const rows = tipRows(target);
    const t = tip();
    if (!rows) { t.hidden = true; return; }
    const dl = el('dl');
    for (const [k, v] of rows) {
      if (!k) {
        const head = el('p', 'tip-head', v);
        if (!target.classList.contains('gap')) head.dataset.state = v;
        t.replaceChildren(head);
        continue;
      }
      dl.append(el('dt', null, k), el('dd', null, v));
    }
    t.appendChild(dl);
    t.hidden = false;
    const r = t.getBoundingClientRect();
    const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
    let left = x + 14, top = y + 16;
    if (left + r.width > vw - 4) left = Math.max(4, vw - r.width - 4);
    if (top + r.height > vh - 4) top = Math.max(4, y - r.height - 10);
    t.style.left = left + window.scrollX + 'px';
    t.style.top = top + window.scrollY + 'px';
  }
  let tipTarget = null;
  function bindTooltip() {
    const main = $('sources');
    main.addEventListener('pointermove', (e) => {
      const target = e.target.closest('.part, .gap');
      if (!target) { if (tipTarget) { tip().hidden = true; tipTarget = null; } return; }
      tipTarget = target;
      showTip(target, e.clientX, e.clientY);
    });
    main.addEventListener('pointerleave', () => { tip().hidden = true; tipTarget = null; });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape') tip().hidden = true; });
  }

  // ---- controls ---------------------------------------------------------
  function bindControls() {
    $('window-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const f = fromInput($('from').value), t = fromInput($('to').value);
      if (!isFinite(f) || !isFinite(t) || t <= f) {
        $('to').setCustomValidity('"To" must come after "From"');
        $('to').reportValidity();
        return;
      }
      $('to').setCustomValidity('');
      win = { preset: null, from: f, to: t };
      writeHash();
      allDirty = true;
      render();
    });
    $('to').addEventListener('input', () => $('to').setCustomValidity(''));
    for (const b of document.querySelectorAll('.presets button')) {
      b.addEventListener('click', () => {
        win = { preset: b.dataset.preset, from: NaN, to: NaN };
        writeHash();
        allDirty = true;
        render();
      });
    }
    let ft = 0;
    $('filter').addEventListener('input', () => {
      clearTimeout(ft);
      ft = setTimeout(() => { writeHash(); allDirty = true; render(); }, 120);
    });
    window.addEventListener('hashchange', () => { readHash(); allDirty = true; render(); });
    let rt = 0, lastW = window.innerWidth;
    window.addEventListener('resize', () => {
      clearTimeout(rt);
      rt = setTimeout(() => {
        if (Math.abs(window.innerWidth - lastW) > 40) { lastW = window.innerWidth; allDirty = true; render(); }
      }, 150);
    });
    // Relative windows move with the clock, and "since" texts age: a
    // local re-render every minute (no request is made).
    setInterval(() => {
      renderAgent();
      if (win.preset && win.preset !== 'fit') { allDirty = true; render(); }
    }, 60000);
  }

  function start() {
    readHash();
    bindControls();
    bindTooltip();
    setConn('connecting');
    render();
    connect();
  }
  // For tests and the curious: read-only views of what the page holds.
  window.partregDashboard = {
    get connection() { return document.body.dataset.connection; },
    get agent() { return store.status; },
    partitions() { return [...store.parts.values()].map((p) => Object.assign({}, p)); },
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
