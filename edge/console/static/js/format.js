// Numbers with their units and times in the viewer's zone (UTC on hover): one place for every page.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimals = (n) => new Intl.NumberFormat(undefined, { maximumFractionDigits: n, minimumFractionDigits: 0 });
const money = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" });
const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const localTime = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export const DASH = "—";

const plural = (value, word) => (value === 1 ? word : `${word}s`);

function significant(value) {
  const size = Math.abs(value);
  if (size >= 100) return integer.format(value);
  if (size >= 10) return decimals(1).format(value);
  if (size >= 1) return decimals(2).format(value);
  return decimals(3).format(value);
}

// A value in one of the API's units (`%`, `MiB`, `req`, `ms`, `instances`), scaled where that reads better.
export function withUnit(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  switch (unit) {
    case "%":
      return `${significant(value)} %`;
    case "MiB":
      return value >= 1024 ? `${significant(value / 1024)} GiB` : `${significant(value)} MiB`;
    case "ms":
      return value >= 1000 ? `${significant(value / 1000)} s` : `${significant(value)} ms`;
    case "req":
      return `${integer.format(value)} req`;
    case "instances":
      // An average can be fractional (1.9 instances over the period); a count is whole.
      return `${Number.isInteger(value) ? integer.format(value) : significant(value)} ${plural(value, "instance")}`;
    default:
      return `${significant(value)} ${unit}`;
  }
}

export const count = (value) => (value === null || value === undefined ? DASH : integer.format(value));
export const dollars = (value) => (value === null || value === undefined ? DASH : money.format(value));

// Seconds as the two largest units: "3 d 4 h", "12 min 5 s".
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  const parts = [
    ["d", Math.floor(seconds / 86400)],
    ["h", Math.floor(seconds / 3600) % 24],
    ["min", Math.floor(seconds / 60) % 60],
    ["s", Math.floor(seconds) % 60],
  ];
  const first = parts.findIndex(([, n]) => n > 0);
  if (first < 0) return "0 s";
  return parts
    .slice(first, first + 2)
    .filter(([, n]) => n > 0)
    .map(([u, n]) => `${n} ${u}`)
    .join(" ");
}

// A <time> element: the viewer's local time, the UTC instant in its title (shown on hover and read out).
export function time(iso, { clock = false } = {}) {
  const el = document.createElement("time");
  if (!iso) {
    el.textContent = DASH;
    return el;
  }
  const date = new Date(iso);
  el.dateTime = iso;
  // The clock alone only for today's times (log lines); anything older also needs its date.
  const today = new Date().toDateString() === date.toDateString();
  el.textContent = clock && today ? localTime.format(date) : local.format(date);
  el.title = utc(iso);
  return el;
}

// An RFC 3339 instant as the UTC text shown on hover: "2026-12-03 09:15:00 UTC".
export function utc(iso) {
  return `${iso.replace("T", " ").replace("Z", "")} UTC`;
}

export function since(iso) {
  if (!iso) return DASH;
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return seconds < 60 ? "just now" : `${duration(seconds).split(" ").slice(0, 2).join(" ")} ago`;
}
