// The dashboard: figures from /api/v1, kept live by /api/v1/stream (Server-Sent Events
// read with fetch, so a bearer token can be sent), without reloading the page.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const API = "/api/v1";
  const PAGE = 20;
  const state = { account: null, token: sessionStorage.getItem("tradelog-token"),
    period: "all", cum: null, tradePage: 0, filters: {}, lastSeq: 0, chart: null,
    busy: false, again: false, heavyAt: 0, stream: null };

  function showError(text) { const el = $("error"); el.textContent = text || ""; el.hidden = !text; }

  async function get(path, params) {
    const url = new URL(API + path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    const res = await fetch(url, { headers });
    const body = await res.json();
    if (res.status === 401) { $("auth").hidden = false; throw new Error(body.error.message); }
    if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
    return body;
  }

  function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
  function fill(tableId, rows, render) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); tr.append(...render(r)); return tr; }));
    if (!rows.length) { const tr = document.createElement("tr"); const td = cell("none", "muted"); td.colSpan = $(tableId).querySelectorAll("th").length; tr.append(td); body.append(tr); }
  }
  function setMoney(id, value) { const el = $(id); el.textContent = fmt.money(value); el.className = el.className.replace(/\b(up|down)\b/g, "").trim() + " " + fmt.sign(value); }

  async function loadAccounts() {
    let rows = [];
    try { rows = (await get("/accounts")).rows; } catch (err) { showError(err.message); }
    const select = $("account");
    const wanted = new URLSearchParams(location.hash.slice(1)).get("account");
    select.replaceChildren(...rows.map((r) => { const o = document.createElement("option"); o.value = r.account; o.textContent = r.name ? `${r.account} (${r.name})` : r.account; return o; }));
    state.account = rows.some((r) => r.account === wanted) ? wanted : rows.length ? rows[0].account : null;
    if (state.account) select.value = state.account;
  }

  async function light() {
    const a = state.account;
    const [bal, pos, sig, jour] = await Promise.all([
      get("/balance", { account: a }), get("/views/positions", { account: a }),
      get("/views/signals", { account: a, order: "desc", limit: 15 }),
      get("/views/journal", { account: a, order: "desc", limit: 15 })]);
    const b = bal.balance || {};
    setMoney("balance", b.balance); setMoney("equity", b.equity); setMoney("cash", b.cash);
    setMoney("realized", b.realized_pnl); setMoney("unrealized", b.unrealized_pnl);
    $("open-count").textContent = b.open_positions ?? "0";
    $("seq").textContent = "as of seq " + bal.as_of_seq;
    fill("positions", pos.rows, (r) => [cell(r.symbol), cell(r.side), cell(fmt.qty(r.quantity), "n"),
      cell(fmt.price(r.avg_price), "n"), cell(fmt.price(r.mark_price), "n"),
      cell(fmt.money(r.unrealized_pnl), "n " + fmt.sign(r.unrealized_pnl)),
      cell(fmt.money(r.realized_pnl), "n " + fmt.sign(r.realized_pnl)), cell(fmt.time(r.opened_at))]);
    fill("signals", sig.rows, (r) => [cell(fmt.time(r.created_at)), cell(r.symbol), cell(r.side),
      cell(r.status), cell(fmt.price(r.entry_price), "n"), cell(r.strategy || "–")]);
    fill("journal", jour.rows, (r) => [cell(fmt.time(r.time)), cell(r.symbol || "–"), cell(r.text, "text")]);
    await trades();
  }

  async function trades() {
    const t = await get("/trades", { account: state.account, order: "desc", limit: PAGE,
      offset: state.tradePage * PAGE, ...state.filters });
    const s = t.summary;
    $("trade-summary").textContent = `${s.round_trips} round trips · ${s.wins} wins · ${s.losses} losses · win rate ${fmt.pct(s.win_rate_pct)} · net ${fmt.money(s.net_pnl)} · fees ${fmt.money(s.fees)}`;
    fill("trades", t.rows, (r) => [cell(fmt.time(r.closed_at)), cell(r.symbol), cell(r.side),
      cell(fmt.qty(r.quantity), "n"), cell(fmt.price(r.entry_price), "n"), cell(fmt.price(r.exit_price), "n"),
      cell(fmt.money(r.net_pnl), "n " + fmt.sign(r.net_pnl)), cell(fmt.pct(r.return_pct), "n"),
      cell(r.exit_reason || "–"), cell(r.strategy || "–")]);
    const pages = Math.max(1, Math.ceil(t.total / PAGE));
    $("page").textContent = `page ${state.tradePage + 1} of ${pages}`;
    $("prev").disabled = state.tradePage === 0; $("next").disabled = state.tradePage + 1 >= pages;
  }

  async function heavy() {
    const a = state.account;
    const [cum, loss, cal, curve] = await Promise.all([get("/cumulative-pnl", { account: a }),
      get("/daily-loss", { account: a }), get("/pnl-calendar", { account: a }), get("/equity-curve", { account: a })]);
    state.cum = cum; showCum();
    $("today").textContent = cum.today; $("tz").textContent = cum.timezone;
    $("loss-pct").textContent = loss.used_pct === null ? "no limit" : fmt.pct(loss.used_pct);
    $("loss-used").textContent = fmt.money(loss.loss_used); $("loss-limit").textContent = fmt.money(loss.limit);
    const used = Math.min(100, Number(loss.used_pct || 0));
    $("loss-bar").style.width = used + "%";
    $("loss-bar").style.background = used >= 80 ? "var(--down)" : used >= 50 ? "#f0b35a" : "var(--up)";
    $("loss-blocked").hidden = !loss.blocked;
    calendar(cal); chart(curve.points);
  }

  function showCum() { if (state.cum) setMoney("cum-value", state.cum[state.period]); }

  function calendar(cal) {
    const byMonth = new Map();
    for (const d of cal.days) { const m = d.date.slice(0, 7); if (!byMonth.has(m)) byMonth.set(m, []); byMonth.get(m).push(d); }
    const months = [...byMonth.keys()].sort().slice(-12);
    const most = Math.max(1, ...cal.days.map((d) => Math.abs(Number(d.realized_pnl))));
    $("calendar").replaceChildren(...months.map((m) => {
      const box = document.createElement("div"); box.className = "month";
      const h = document.createElement("h3"); h.textContent = m; box.append(h);
      const grid = document.createElement("div"); grid.className = "grid";
      const first = new Date(m + "-01T00:00:00Z"); const lead = (first.getUTCDay() + 6) % 7;
      for (let i = 0; i < lead; i++) grid.append(document.createElement("span"));
      const days = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
      const found = new Map(byMonth.get(m).map((d) => [d.date, d]));
      let total = 0;
      for (let day = 1; day <= days; day++) {
        const key = `${m}-${String(day).padStart(2, "0")}`; const d = found.get(key);
        const el = document.createElement("span"); el.className = "day";
        if (d) { const v = Number(d.realized_pnl); total += v; const a = 0.25 + 0.75 * Math.min(1, Math.abs(v) / most);
          el.style.background = v > 0 ? `rgba(47,182,124,${a})` : v < 0 ? `rgba(229,83,75,${a})` : "var(--line)";
          el.title = `${key}: ${fmt.money(d.realized_pnl)} (${d.round_trips} round trips)`; }
        else el.title = key;
        grid.append(el);
      }
      const t = document.createElement("div"); t.className = "total " + fmt.sign(total); t.textContent = fmt.money(total);
      box.append(grid, t); return box;
    }));
    if (!months.length) $("calendar").textContent = "no realized P&L yet";
  }

  function chart(points) {
    const xs = points.map((p) => Date.parse(p.time) / 1000);
    const data = [xs, points.map((p) => (p.equity === null ? null : Number(p.equity))),
      points.map((p) => (p.drawdown_pct === null ? null : -Number(p.drawdown_pct)))];
    const box = $("chart");
    if (state.chart) { state.chart.setData(data); return; }
    if (!points.length) { box.textContent = "no equity samples yet"; return; }
    box.textContent = "";
    const opts = { width: Math.max(320, box.clientWidth - 10), height: 320,
      // Equity in the upper part, the drawdown (from 0 down) in the lower part.
      scales: { x: { time: true },
        eq: { range: (u, lo, hi) => { const span = Math.max(hi - lo, Math.abs(hi) * 0.001, 1); return [lo - span * 0.75, hi + span * 0.05]; } },
        dd: { range: (u, lo) => { const low = Math.min(lo === null ? -1 : lo, -1); return [low, -low * 1.6]; } } },
      axes: [{ stroke: "#8a96a3", grid: { stroke: "#2a323c" } },
        { scale: "eq", stroke: "#8a96a3", grid: { stroke: "#2a323c" }, size: 80, values: (u, v) => v.map((x) => fmt.money(x)) },
        { scale: "dd", side: 1, stroke: "#8a96a3", grid: { show: false }, size: 70, values: (u, v) => v.map((x) => (x > 0 ? "" : fmt.pct(x))) }],
      series: [{}, { label: "equity", scale: "eq", stroke: "#4c9aff", width: 1.5, value: (u, v) => fmt.money(v) },
        { label: "drawdown", scale: "dd", stroke: "#e5534b", fill: "rgba(229,83,75,0.2)", fillTo: () => 0, value: (u, v) => fmt.pct(v) }] };
    state.chart = new uPlot(opts, data, box);
  }

  async function refresh(all) {
    if (!state.account) return;
    if (state.busy) { state.again = state.again || all || "light"; return; }
    state.busy = true;
    try {
      const now = Date.now();
      const jobs = [light()];
      clearTimeout(state.heavyTimer);
      if (all === true || now - state.heavyAt > 3000) { state.heavyAt = now; jobs.push(heavy()); }
      else state.heavyTimer = setTimeout(() => refresh(true), 3000 - (now - state.heavyAt));
      await Promise.all(jobs);
      showError("");
    } catch (err) { showError(err.message); } finally {
      state.busy = false;
      if (state.again) { const next = state.again === true; state.again = false; setTimeout(() => refresh(next), 200); }
    }
  }

  async function stream() {
    const mine = {}; state.stream = mine;
    let last = null;
    while (state.stream === mine) {
      const live = $("live");
      try {
        const url = `${API}/stream?account=${encodeURIComponent(state.account)}`;
        const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
        if (last !== null) headers["Last-Event-ID"] = String(last);
        mine.abort = new AbortController();
        const res = await fetch(url, { headers, signal: mine.abort.signal });
        if (!res.ok) throw new Error("stream: HTTP " + res.status);
        live.textContent = "live"; live.className = "live on";
        const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
        for (;;) {
          const { value, done } = await reader.read(); if (done) break;
          buf += dec.decode(value, { stream: true }); let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            const ev = { event: "message", id: null };
            for (const line of block.split("\n")) { const i = line.indexOf(":"); if (i <= 0) continue;
              const k = line.slice(0, i); const v = line.slice(i + 1).trimStart(); if (k === "event") ev.event = v; else if (k === "id") ev.id = v; }
            if (ev.id !== null) last = Number(ev.id);
            if (ev.event === "views") refresh(false);
          }
        }
      } catch (err) { if (state.stream !== mine) return; }
      live.textContent = "reconnecting"; live.className = "live off";
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  function select(account) {
    state.account = account; state.tradePage = 0; location.hash = "account=" + encodeURIComponent(account);
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    if (state.stream && state.stream.abort) state.stream.abort.abort();
    state.stream = null; refresh(true); stream();
  }

  $("account").addEventListener("change", (e) => select(e.target.value));
  $("cum-tabs").addEventListener("click", (e) => { const p = e.target.dataset && e.target.dataset.period; if (!p) return;
    state.period = p; for (const b of $("cum-tabs").children) b.classList.toggle("on", b === e.target); showCum(); });
  $("trade-filters").addEventListener("submit", (e) => { e.preventDefault();
    state.filters = Object.fromEntries([...new FormData(e.target)].filter(([, v]) => v));
    state.tradePage = 0; trades().catch((err) => showError(err.message)); });
  $("prev").addEventListener("click", () => { state.tradePage = Math.max(0, state.tradePage - 1); trades().catch((err) => showError(err.message)); });
  $("next").addEventListener("click", () => { state.tradePage += 1; trades().catch((err) => showError(err.message)); });
  $("auth").addEventListener("submit", (e) => { e.preventDefault(); state.token = $("token").value.trim(); sessionStorage.setItem("tradelog-token", state.token); $("auth").hidden = true; start(); });

  async function start() { await loadAccounts(); if (state.account) select(state.account); else showError(state.token || $("auth").hidden ? "no account has events yet" : "enter a token"); }
  start();
})();
