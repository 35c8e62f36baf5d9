import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LiveState } from "./api";
import { LiveConnection, type LiveSnapshot } from "./live";

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState: 0 | 1 | 2 | 3 = 0;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closed = false;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.closed = true;
  }
  send(state: Partial<LiveState> | object) {
    this.onmessage?.({ data: JSON.stringify(state) } as MessageEvent);
  }
  drop(code = 1006) {
    this.onclose?.({ code } as CloseEvent);
  }
}

function state(inside: number, seq: number): Partial<LiveState> {
  return { type: "live", store_id: 1, inside, visitors_in: inside, visitors_out: 0, seq, cameras_online: 1, cameras_total: 1 };
}

describe("LiveConnection", () => {
  let seen: LiveSnapshot[];
  let conn: LiveConnection;
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    seen = [];
    conn = new LiveConnection({
      url: () => "ws://x/ws/stores/1/live?token=t",
      onChange: (s) => seen.push(s),
      createSocket: (url) => new FakeSocket(url),
      minDelay: 100,
      maxDelay: 400,
    });
  });
  afterEach(() => {
    conn.stop();
    vi.useRealTimers();
  });

  it("is live only after a state arrives, and stale (reconnecting) after the socket drops", () => {
    conn.start();
    expect(conn.current.connection).toBe("connecting");
    FakeSocket.all[0].send(state(3, 10));
    expect(conn.current).toMatchObject({ connection: "live", state: { inside: 3 } });
    FakeSocket.all[0].drop();
    // The number is kept for display but no longer called live.
    expect(conn.current).toMatchObject({ connection: "reconnecting", state: { inside: 3 } });
  });

  it("reconnects by itself with growing, capped delays and resets them once data flows", () => {
    conn.start();
    FakeSocket.all[0].drop();
    vi.advanceTimersByTime(99);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1].drop();
    vi.advanceTimersByTime(199);
    expect(FakeSocket.all).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.all[2].drop();
    vi.advanceTimersByTime(400);
    FakeSocket.all[3].drop();
    vi.advanceTimersByTime(400); // capped at maxDelay
    expect(FakeSocket.all).toHaveLength(5);
    FakeSocket.all[4].send(state(1, 5));
    expect(conn.current.connection).toBe("live");
    FakeSocket.all[4].drop();
    vi.advanceTimersByTime(100); // back to the first delay
    expect(FakeSocket.all).toHaveLength(6);
  });

  it("stops on a refused token and on an unknown store instead of retrying", () => {
    conn.start();
    FakeSocket.all[0].drop(4403);
    expect(conn.current.connection).toBe("denied");
    vi.advanceTimersByTime(10_000);
    expect(FakeSocket.all).toHaveLength(1);
    conn.retryNow();
    FakeSocket.all[1].drop(4404);
    expect(conn.current.connection).toBe("unknown-store");
  });

  it("ignores an older state on the same connection and passes alerts aside", () => {
    const alerts: unknown[] = [];
    conn = new LiveConnection({
      url: () => "u",
      onChange: () => undefined,
      onAlert: (a) => alerts.push(a),
      createSocket: (url) => new FakeSocket(url),
    });
    conn.start();
    const socket = FakeSocket.all[0];
    socket.send(state(5, 20));
    socket.send(state(4, 19));
    expect(conn.current.state?.inside).toBe(5);
    socket.send({ type: "alert", event: "fired", alert: { id: 1, message: "camera offline" } });
    expect(alerts).toHaveLength(1);
    expect(conn.current.state?.inside).toBe(5);
    socket.send(state(6, 21));
    expect(conn.current.state?.inside).toBe(6);
  });

  it("says once per connection, at its first state, that it is connected (to fetch what was missed)", () => {
    let connected = 0;
    conn = new LiveConnection({
      url: () => "u",
      onChange: () => undefined,
      onConnected: () => connected++,
      createSocket: (url) => new FakeSocket(url),
      minDelay: 100,
    });
    conn.start();
    FakeSocket.all[0].send({ type: "alert", event: "fired", alert: { id: 1 } });
    expect(connected).toBe(0); // an alert is not the connection's state
    FakeSocket.all[0].send(state(1, 1));
    FakeSocket.all[0].send(state(2, 2));
    expect(connected).toBe(1);
    FakeSocket.all[0].drop();
    vi.advanceTimersByTime(100);
    expect(connected).toBe(1); // reconnecting, no state yet
    FakeSocket.all[1].send(state(2, 1));
    expect(connected).toBe(2);
  });

  it("marks the shown number not live when the browser goes offline, and reconnects at once when back", () => {
    conn.start();
    FakeSocket.all[0].send(state(2, 1));
    conn.markDown();
    expect(conn.current.connection).toBe("reconnecting");
    expect(FakeSocket.all[0].closed).toBe(true); // an "open" socket over a dead link is not trusted
    FakeSocket.all[0].send(state(9, 2)); // nor anything it still delivers
    expect(conn.current.state?.inside).toBe(2);
    conn.retryNow();
    expect(FakeSocket.all).toHaveLength(2);
    expect(seen.at(-1)?.connection).toBe("reconnecting");
    FakeSocket.all[1].send(state(3, 3));
    expect(conn.current).toMatchObject({ connection: "live", state: { inside: 3 } });
  });
});
