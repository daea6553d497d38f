// Durations as operators write them on the command line ("90s", "30m", "1h", "2d").

/** Parses "1h", "30m", "90s", "2d" or a number of seconds. */
export function parse_duration_seconds(text: string): number {
  const match = /^([0-9]{1,9})([smhd]?)$/.exec(text);
  if (match === null) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90s, 30m, 1h, 2d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
