// A TCP proxy in front of the shared broker, for tests that need the broker to go away and come
// back without stopping it: `cut()` closes the port and every connection through it (a client
// sees "connection refused", as when a broker is down), `restore()` opens it again.

/** A proxy from 127.0.0.1:`port` to `target`. */
export class TcpProxy implements AsyncDisposable {
  #listener: Deno.Listener | undefined;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();

  private constructor(readonly port: number, readonly target: { hostname: string; port: number }) {}

  /** Starts a proxy on a free port to `target` ("host:port"). */
  static start(target: string): TcpProxy {
    const [hostname, port] = target.split(":");
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = new TcpProxy((listener.addr as Deno.NetAddr).port, {
      hostname: hostname!,
      port: Number(port),
    });
    proxy.#serve(listener);
    return proxy;
  }

  #serve(listener: Deno.Listener): void {
    this.#listener = listener;
    this.#track((async () => {
      try {
        for await (const conn of listener) this.#track(this.#pipe(conn));
      } catch { /* closed */ }
    })());
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect(this.target);
      this.#conns.add(server);
      await Promise.race([copy(client, server), copy(server, client)]);
    } catch {
      /* cut, or either side closed */
    } finally {
      for (const c of [client, server]) {
        if (c === undefined) continue;
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* already closed */ }
      }
    }
  }

  /** Closes the port and every connection: the broker looks down. */
  async cut(): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    this.#conns.clear();
    await Promise.allSettled([...this.#tasks]);
  }

  /** Opens the same port again: the broker is back. */
  restore(): void {
    if (this.#listener !== undefined) return;
    this.#serve(Deno.listen({ hostname: "127.0.0.1", port: this.port }));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cut();
  }
}

async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await from.read(buffer);
    if (n === null) return;
    let written = 0;
    while (written < n) written += await to.write(buffer.subarray(written, n));
  }
}
