// How times, durations and sizes read on every page.

/**
 * A timestamp (ISO string or epoch milliseconds) in the browser's local time as
 * "2026-03-04 15:20:09", which reads the same in every locale and keeps table columns narrow;
 * "" when absent.
 */
export function when(value) {
  const date = toDate(value);
  if (!date) return "";
  const two = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} `
    + `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** A Date from an ISO string or epoch milliseconds; null when absent or unreadable. */
export function toDate(value) {
  if (value === undefined || value === null || value === "") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Seconds as "1h 02m", "3m 05s" or "4.2s". */
export function duration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m ${String(s).padStart(2, "0")}s`;
}

/** The seconds between two timestamps, the second defaulting to now (a job still running). */
export function between(start, stop) {
  const begun = toDate(start);
  if (!begun) return null;
  const ended = toDate(stop) || new Date();
  return Math.max(0, (ended.getTime() - begun.getTime()) / 1000);
}

/** Bytes in binary units: "512 B", "1.5 KiB", "3.2 GiB". */
export function bytes(count) {
  if (count === undefined || count === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(count);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The short form of an id for tables; the full id stays in the link and its title. */
export function shortId(id) {
  return id && id.length > 12 ? id.slice(0, 8) : id || "";
}
