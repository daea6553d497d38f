// Minimal flag parser: `--name value`, `--name=value`, boolean `--name`. Unknown flags fail.
export interface Parsed { positional: string[]; flags: Map<string, string | true> }

export function parse_args(argv: string[], booleans: readonly string[], known: readonly string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.includes(name) && !booleans.includes(name)) throw new Error(`unknown flag --${name}`);
    if (booleans.includes(name)) {
      flags.set(name, true);
    } else if (eq !== -1) {
      flags.set(name, arg.slice(eq + 1));
    } else {
      const value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  return { positional, flags };
}

export function flag(parsed: Parsed, name: string, env_name: string | undefined, fallback: string): string;
export function flag(parsed: Parsed, name: string, env_name: string | undefined, fallback: undefined): string | undefined;
export function flag(parsed: Parsed, name: string, env_name: string | undefined, fallback: string | undefined): string | undefined {
  const value = parsed.flags.get(name);
  if (typeof value === 'string') return value;
  const from_env = env_name === undefined ? undefined : process.env[env_name];
  if (from_env !== undefined && from_env !== '') return from_env;
  return fallback;
}

export function int_flag(text: string | undefined, name: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) throw new Error(`--${name} must be an integer ${min}..${max}`);
  return Number(text);
}
