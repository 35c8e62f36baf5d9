// The live WebSocket: the store's state at once, then every change; reconnects by itself with backoff.
// "live" only while the socket is open and has delivered a state since it opened: a number kept from an
// earlier connection is shown as stale ("reconnecting"), never as live.
import type { AlertMessage, LiveState } from "./api";

export type Connection = "connecting" | "live" | "reconnecting" | "denied" | "unknown-store";

export interface LiveSnapshot {
  connection: Connection;
  state: LiveState | null;
  /** When the shown state arrived (ms since epoch, client clock). */
  receivedAt: number | null;
}

type SocketLike = Pick<WebSocket, "close" | "readyState"> & {
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
};

export interface LiveOptions {
  url: () => string;
  onChange: (snapshot: LiveSnapshot) => void;
  onAlert?: (message: AlertMessage) => void;
  /** The first state of each connection has arrived: what was pushed while away must be fetched again. */
  onConnected?: () => void;
  createSocket?: (url: string) => SocketLike;
  minDelay?: number;
  maxDelay?: number;
}

export class LiveConnection {
  private socket: SocketLike | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private delay: number;
  private stopped = false;
  private snapshot: LiveSnapshot = { connection: "connecting", state: null, receivedAt: null };

  constructor(private options: LiveOptions) {
    this.delay = options.minDelay ?? 500;
  }

  get current(): LiveSnapshot {
    return this.snapshot;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
  }

  /** Reconnect now (the page came back to the foreground, or the network is back). */
  retryNow(): void {
    if (this.stopped || this.snapshot.connection === "live") return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.delay = this.options.minDelay ?? 500;
    if (!this.socket) this.open();
  }

  /** The network is gone (browser "offline" event): what is on screen is no longer live, and the socket
   * cannot be trusted to notice (a dead TCP link can stay "open" for minutes): drop it and retry. */
  markDown(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close();
    }
    if (this.snapshot.state) this.set({ connection: "reconnecting" });
    this.schedule();
  }

  private set(change: Partial<LiveSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    this.options.onChange(this.snapshot);
  }

  private open(): void {
    const create = this.options.createSocket ?? ((url: string) => new WebSocket(url) as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(this.options.url());
    } catch {
      this.schedule();
      return;
    }
    this.socket = socket;
    let first = true;
    socket.onmessage = (ev: MessageEvent) => {
      if (this.receive(ev.data) && first) {
        first = false;
        this.options.onConnected?.();
      }
    };
    socket.onclose = (ev: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (ev.code === 4401 || ev.code === 4403) {
        this.set({ connection: "denied" });
        return;
      }
      if (ev.code === 4404) {
        this.set({ connection: "unknown-store" });
        return;
      }
      this.set({ connection: this.snapshot.state ? "reconnecting" : "connecting" });
      this.schedule();
    };
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, this.options.maxDelay ?? 8000);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, wait);
  }

  /** Handles one message; true when it was a live state (taken or not). */
  private receive(data: unknown): boolean {
    if (typeof data !== "string") return false;
    let message: { type?: string };
    try {
      message = JSON.parse(data) as { type?: string };
    } catch {
      return false;
    }
    if (message.type === "alert") {
      this.options.onAlert?.(message as AlertMessage);
      return false;
    }
    if (message.type !== undefined && message.type !== "live") return false;
    const state = message as LiveState;
    this.delay = this.options.minDelay ?? 500;
    const previous = this.snapshot.state;
    // A reconnect's first message is a full state: take it even if its seq is not higher (new process).
    if (previous && this.snapshot.connection === "live" && state.seq < previous.seq) return true;
    this.set({ connection: "live", state, receivedAt: Date.now() });
    return true;
  }
}
