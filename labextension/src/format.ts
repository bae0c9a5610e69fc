/** Small text formatters shared by the views. */

const pad = (n: number) => String(n).padStart(2, '0');

/** A local date's day ("2026-12-06") and time of day ("03:20:23"). */
function dayAndTime(date: Date): [string, string] {
  return [
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  ];
}

/** A run's start time: the time of day for today's runs, else the date too. */
export function formatTime(seconds: number, now: Date = new Date()): string {
  const date = new Date(seconds * 1000);
  const [day, hms] = dayAndTime(date);
  return date.toDateString() === now.toDateString() ? hms : `${day} ${hms}`;
}

/**
 * A moment in full, for a tooltip or a detail: local date and time, the UTC
 * offset and the time zone's name, e.g. "2026-12-06 03:20:23 UTC-03:00 (America/Santiago)".
 */
export function formatFullTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  if (!isFinite(seconds) || isNaN(date.getTime())) {
    return '–';
  }
  const [day, hms] = dayAndTime(date);
  const east = -date.getTimezoneOffset(); // minutes east of UTC at that moment (DST included)
  const offset = `${east < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(east) / 60))}:${pad(Math.abs(east) % 60)}`;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return `${day} ${hms} UTC${offset}${zone ? ` (${zone})` : ''}`;
}

/** A duration in seconds: "850 ms", "12.5 s", "3 min 05 s", "1 h 02 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '–';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${pad(Math.round(seconds % 60))} s`;
  }
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
}

/** A value of a document field, on one line and at most `max` characters. */
export function formatValue(value: unknown, max = 160): string {
  let text: string;
  if (value === null || value === undefined) {
    text = 'null';
  } else if (typeof value === 'string') {
    text = value;
  } else if (typeof value === 'number' || typeof value === 'boolean') {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A number for an axis tick, short. */
export function formatTick(value: number, step: number): string {
  if (value === 0) {
    return '0';
  }
  const magnitude = Math.abs(value);
  if (magnitude < 1e-3) {
    return value.toExponential(1);
  }
  if (Math.abs(step) >= 1e3) {
    // 50000 -> 50k, 1500000 -> 1.5M: short enough for the narrow y axis.
    for (const [scale, suffix] of [
      [1e9, 'G'],
      [1e6, 'M'],
      [1e3, 'k']
    ] as const) {
      if (magnitude >= scale) {
        return `${formatTick(value / scale, step / scale)}${suffix}`;
      }
    }
  }
  // Enough decimals to tell ticks `step` apart (0.25 needs two, 0.5 one).
  let decimals = 0;
  while (
    decimals < 6 &&
    Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6
  ) {
    decimals += 1;
  }
  return value.toFixed(decimals);
}

/** An ISO 8601 timestamp as local date and time. */
export function formatIso(iso: string | null | undefined): string {
  if (!iso) {
    return '–';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  return formatTime(date.getTime() / 1000);
}

export function plural(n: number, word: string): string {
  return `${n.toLocaleString()} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * A window of at most `width` characters of a query around `position`, and the
 * caret's column in it: long queries keep the error in view in a narrow panel.
 */
export function caretWindow(
  query: string,
  position: number,
  width = 26
): { text: string; column: number } {
  const at = Math.max(0, Math.min(position, query.length));
  let start = Math.max(0, at - Math.floor(width * 0.66));
  const end = Math.min(query.length, start + width);
  start = Math.max(0, Math.min(start, end - width));
  // ASCII dots: an ellipsis glyph may come from another font and shift the caret.
  const head = start > 0 ? '...' : '';
  const tail = end < query.length ? '...' : '';
  return { text: head + query.slice(start, end) + tail, column: head.length + at - start };
}

/**
 * A rerun's or record's error as one line: `cell 3: AssertionError: seven events` from the
 * record's error fields (cell_index, ename, evalue), a message as it is, else its JSON.
 */
export function errorText(error: unknown, max = 300): string {
  if (error && typeof error === 'object') {
    const e = error as Record<string, unknown>;
    if (typeof e.message === 'string') {
      return formatValue(e.message, max);
    }
    if (typeof e.ename === 'string') {
      const where = typeof e.cell_index === 'number' ? `cell ${e.cell_index}: ` : '';
      const what = e.evalue ? `${e.ename}: ${String(e.evalue)}` : e.ename;
      return formatValue(`${where}${what}`, max);
    }
  }
  return formatValue(error, max);
}

/** The last part of a relative path (`sample-2/frame_0004.tif` -> `frame_0004.tif`). */
export function baseName(path: string): string {
  const parts = path.split(/[/\\]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/**
 * A file name cut to at most `max` characters in the middle, keeping its end (a frame
 * number and extension tell files apart): `very_long_sample_name_0042.tif` -> `very_lo…_0042.tif`.
 */
export function middleCut(name: string, max = 28): string {
  const chars = Array.from(name); // code points: never cut a surrogate pair in two
  if (chars.length <= max) {
    return name;
  }
  const tail = Math.min(Math.ceil((max - 1) / 2), 14);
  const head = max - 1 - tail;
  return `${chars.slice(0, head).join('')}…${chars.slice(chars.length - tail).join('')}`;
}

/**
 * A watched run's files on one line: `12 files · newest: frame_0004.tif` (the name cut in
 * its middle, `title` the whole relative path for a tooltip); `No files yet` before the first.
 */
export function filesLine(
  files: { count: number; newest: string | null },
  max = 28
): { count: string; name: string | null; title: string | null } {
  const count = files.count > 0 ? plural(files.count, 'file') : 'No files yet';
  if (!files.newest) {
    return { count, name: null, title: null };
  }
  return { count, name: middleCut(baseName(files.newest), max), title: files.newest };
}
