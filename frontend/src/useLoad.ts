import { useEffect, useState } from "react";
import { ApiError } from "./api";

export type Loaded<T> =
  | { status: "loading" }
  | { status: "ok"; data: T }
  | { status: "missing" } // the server has no such endpoint (an older server) or nothing there
  | { status: "error"; message: string };

/** Runs ``load`` whenever ``deps`` change; a 404 or 405 is "missing", not an error. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [result, setResult] = useState<Loaded<T>>({ status: "loading" });
  useEffect(() => {
    let alive = true;
    setResult({ status: "loading" });
    load().then(
      (data) => alive && setResult({ status: "ok", data }),
      (err: unknown) => {
        if (!alive) return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 405)) setResult({ status: "missing" });
        else setResult({ status: "error", message: err instanceof Error ? err.message : String(err) });
      },
    );
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return result;
}
