// Numbers as a trader reads them: money to 2 decimals with thousands separators,
// percents to 2 decimals, prices exactly as sent (the API's decimal strings).
"use strict";
window.fmt = (() => {
  const money2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
  return {
    money(v) { const n = num(v); return n === null || !isFinite(n) ? "–" : money2.format(n); },
    pct(v) { const n = num(v); return n === null || !isFinite(n) ? "–" : money2.format(n) + "%"; },
    price(v) { return v === null || v === undefined ? "–" : String(v); },
    qty(v) { return v === null || v === undefined ? "–" : String(v); },
    time(v) { return v ? String(v).replace("T", " ").replace(/(\.\d+)?Z$/, "") : "–"; },
    sign(v) { const n = num(v); return n === null ? "" : n > 0 ? "up" : n < 0 ? "down" : ""; },
  };
})();
