// HOST:PORT as --grpc and --http take it: a name, an IPv4 address or a [bracketed] IPv6
// address, then a port 0..65535. The edge and the HTTP endpoint take host and port apart;
// the node splits its addresses with this, and the CLI above it can too.

export function split_addr(addr: string, flag: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):([0-9]{1,5})$/.exec(addr);
  if (match === null || Number(match[2]) > 65535) {
    throw new Error(`${flag} must be HOST:PORT, got ${addr}`);
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}
