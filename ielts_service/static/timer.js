// Countdowns for Part 2, on the wall clock so a busy tab does not slow them down.

const DEFAULTS = { prep: 60, talk: 120 };

/** Preparation and talk times in seconds; `?prep=2&talk=3` in the page's URL overrides them. */
export function durations(search = window.location.search) {
  const params = new URLSearchParams(search);
  const result = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS)) {
    const value = Number(params.get(name));
    if (Number.isInteger(value) && value >= 1 && value <= 600) result[name] = value;
  }
  return result;
}

/** "1:05" */
export function clock(seconds) {
  const s = Math.max(0, seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * Count down `seconds`: `onTick(remaining)` on each whole second (first call at once),
 * `onDone()` at zero. Returns a function that stops it without calling `onDone`.
 */
export function countdown(seconds, onTick, onDone) {
  const end = Date.now() + seconds * 1000;
  let shown = null;
  let timer = null;
  const step = () => {
    const remaining = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    if (remaining !== shown) {
      shown = remaining;
      onTick(remaining);
    }
    if (remaining === 0) {
      clearInterval(timer);
      onDone();
    }
  };
  timer = setInterval(step, 200);
  step();
  return () => clearInterval(timer);
}
